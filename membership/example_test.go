package membership_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/herd-cluster/herd/membership"
)

// A static instance: its base and the total are configured alike on every
// instance, and nothing is coordinated.
func ExampleNew_static() {
	s, err := membership.New("mycluster", membership.WithStatic(2, 7), membership.WithInstanceID("node2"),
		membership.WithOnRebalance(func(v membership.View) {
			fmt.Printf("index %d, %d threads, total %d, epoch %d\n", v.Index, v.Threads, v.Total, v.Epoch)
		}))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Join(ctx); err != nil {
		log.Fatal(err)
	}
	s.Leave(ctx)
	// Output:
	// index 2, 1 threads, total 7, epoch 0
	// index -1, 1 threads, total 0, epoch 0
}

// A dynamic instance with four threads in an etcd cluster: it quiesces its
// workers before it acknowledges a rebalance that moves them, and fences
// its writes with the epoch.
func ExampleNew_etcd() {
	s, err := membership.New("mycluster",
		membership.WithEndpoints("127.0.0.1:2379"),
		membership.WithEnv("dev"),
		membership.WithThreads(4),
		membership.WithTTL(10*time.Second),
		membership.WithOnPrepare(func(ctx context.Context, planned membership.View) {
			// Stop the workers' work under their current indices; return
			// once none is in use, before ctx is done.
		}),
		membership.WithOnRebalance(func(v membership.View) {
			// Threads 0..3 now work as indices v.Index..v.Index+3 of
			// v.Total, writing with v.Epoch; Index -1 means stop.
		}))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := s.Join(ctx); err != nil {
		log.Fatal(err)
	}
	<-ctx.Done()
	leave, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Leave(leave)
}
