package membership_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

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

// fencedPut writes value under key for a worker holding an index in a
// view of the given epoch, unless a view with a higher epoch already
// wrote there: then it reports false and writes nothing. The epoch is
// kept beside the value, zero-padded so that etcd's byte-wise comparison
// orders it as a number (stored < epoch+1 is stored <= epoch); a nested
// transaction covers the first write, when there is no epoch to compare
// yet.
func fencedPut(ctx context.Context, cli *clientv3.Client, key string, epoch int64, value string) (bool, error) {
	fence, e, next := key+"/epoch", fmt.Sprintf("%020d", epoch), fmt.Sprintf("%020d", epoch+1)
	puts := []clientv3.Op{clientv3.OpPut(fence, e), clientv3.OpPut(key, value)}
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(fence), ">", 0)).
		Then(clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.Value(fence), "<", next)}, puts, nil)).
		Else(puts...).
		Commit()
	if err != nil {
		return false, err
	}
	return !resp.Succeeded || resp.Responses[0].GetResponseTxn().Succeeded, nil
}

// Writes to a shared store fenced with the epoch, here etcd itself: each
// instance writes the result of its index with the epoch of the view it
// holds the index in, and the store refuses a write from an older view.
// So an instance that was paused past its lease, and wakes up still
// believing it holds the index, cannot overwrite what the index's new
// holder wrote.
func Example_fencedWrite() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:2379"}})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	var current atomic.Pointer[membership.View]
	s, err := membership.New("mycluster", membership.WithClient(cli),
		membership.WithOnRebalance(func(v membership.View) { current.Store(&v) }))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Join(ctx); err != nil {
		log.Fatal(err)
	}
	defer s.Leave(ctx)
	// ... later, in the work done under the index:
	if v := current.Load(); v != nil && v.Index >= 0 {
		ok, err := fencedPut(ctx, cli, fmt.Sprintf("/mycluster/results/%d", v.Index), v.Epoch, "done")
		switch {
		case err != nil:
			log.Print(err)
		case !ok:
			log.Printf("index %d moved on past epoch %d: stop working under it", v.Index, v.Epoch)
		}
	}
}
