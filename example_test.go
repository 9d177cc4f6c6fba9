package herd_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/herd-cluster/herd"
)

// A Go program becomes its own primary and its own workers with one call:
// the primary binds :8080 once and starts four copies of this program, each
// serving HTTP from the shared socket.
func Example() {
	err := herd.Run(context.Background(), herd.Config{
		Workers: 4,
		Listen:  []string{":8080"},
	}, func(ctx context.Context, w *herd.Worker) error {
		return w.ServeHTTP(ctx, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(rw, "hello from worker %d\n", w.ID())
		}))
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Clustering a program in any language: each worker runs the command with
// its sockets passed as fds 3.. (LISTEN_FDS), and is ready once it sends
// READY=1 to NOTIFY_SOCKET.
func Example_command() {
	if err := herd.Run(context.Background(), herd.Config{
		Workers: herd.PhysicalCPUs(),
		Listen:  []string{"http=:8080", "admin=unix:/run/app/admin.sock,mode=0660"},
		Ready:   herd.ReadyNotify,
		Command: []string{"./server", "--config", "prod.yaml"},
	}, nil); err != nil {
		log.Fatal(err)
	}
}

// A worker with several sockets takes each by the name given in Listen, and
// says it is ready once it has loaded what it needs: a rolling restart stops
// the old worker of a slot only then.
func ExampleWorker_Listener() {
	work := func(ctx context.Context, w *herd.Worker) error {
		api, err := w.Listener("api")
		if err != nil {
			return err
		}
		metrics, err := w.Listener("metrics")
		if err != nil {
			return err
		}
		go http.Serve(metrics, http.DefaultServeMux)
		srv := &http.Server{Handler: http.NotFoundHandler()}
		go srv.Serve(api)
		if err := w.Ready(); err != nil {
			return err
		}
		<-ctx.Done() // the primary asked this worker to stop
		return srv.Shutdown(context.Background())
	}
	_ = herd.Run(context.Background(), herd.Config{Listen: []string{"api=:8080", "metrics=127.0.0.1:9100"}}, work)
}

// In the primary, a Cluster reports its state, rolls its workers over,
// scales them and signals them.
func ExampleCluster_Restart() {
	c, err := herd.New(herd.Config{Workers: 2, Listen: []string{":8080"}}, serve)
	if err != nil {
		log.Fatal(err)
	}
	if herd.IsPrimary() {
		go func() {
			time.Sleep(time.Minute)
			ctx := context.Background()
			if err := c.Restart(ctx); err != nil { // zero-downtime rollout
				log.Printf("rollout failed, old workers still serve: %v", err)
			}
			_ = c.Scale(ctx, 4)
			_ = c.Signal(ctx, syscall.SIGUSR1, -1) // e.g. reopen log files
			st, _ := c.Stats(ctx)
			for _, w := range st.Slots {
				fmt.Println(w.Slot, w.PID, w.Status, w.Uptime)
			}
		}()
	}
	if err := c.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// OnEvent sees every lifecycle event in order, on a goroutine of its own.
func ExampleConfig_onEvent() {
	cfg := herd.Config{
		Listen: []string{":8080"},
		OnEvent: func(e herd.Event) {
			switch e.Type {
			case herd.EventExited:
				if e.Crash {
					log.Printf("worker %d (pid %d) crashed: status %d %s", e.Slot, e.PID, e.Status, e.Signal)
				}
			case herd.EventDisabled:
				log.Printf("slot %d disabled: %s", e.Slot, e.Reason)
			case herd.EventRolloutFailed:
				log.Printf("rollout failed: %v", e.Err)
			}
		},
	}
	_ = herd.Run(context.Background(), cfg, serve)
}

// During development, run the work in this process, with no primary.
func ExampleConfig_singleProcess() {
	_ = herd.Run(context.Background(), herd.Config{
		SingleProcess: os.Getenv("APP_ENV") == "dev",
		Listen:        []string{"127.0.0.1:8080"},
	}, serve)
}

// CPUs counts the CPUs this process may use, cgroup quota included.
func ExampleCPUs() {
	fmt.Println(herd.CPUs() >= 1, herd.PhysicalCPUs() <= herd.CPUs())
	// Output: true true
}

func serve(ctx context.Context, w *herd.Worker) error {
	return w.ServeHTTP(ctx, http.NotFoundHandler())
}
