package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/herd-cluster/herd"
)

// serveExtra holds the "herdbench serve" flags of the measurements that
// need herd.Config fields the CLI may not have (watchdog, memory limit) or
// Go work of their own (leak, delegate).
type serveExtra struct {
	name, control string
	watchdog      time.Duration
	memLimitMiB   uint64
	memCheck      time.Duration

	leak int // leak: bytes kept per request

	respawnDelay time.Duration // herd: Config.RespawnDelay (0: herd's default)
	maxCrashes   int           // herd: Config.MaxCrashes (0: herd's default)

	delegDur     time.Duration // delegate: length of the measured loop
	delegCallers int           // delegate: goroutines per worker calling Delegate
	delegOut     string        // delegate: directory for each worker's latencies
}

func addServeExtraFlags(fs *flag.FlagSet) *serveExtra {
	x := &serveExtra{}
	fs.StringVar(&x.name, "name", "", "herd: cluster name (default herdbench or herdbench-MODE)")
	fs.StringVar(&x.control, "control", "", "herd: control socket path (default: no control API)")
	fs.DurationVar(&x.watchdog, "watchdog", 0, "herd: Config.Watchdog (0: herd's default heartbeat)")
	fs.Uint64Var(&x.memLimitMiB, "memory-limit-mib", 0, "herd: Config.MemoryLimit in MiB (0: none)")
	fs.DurationVar(&x.memCheck, "memory-check", 0, "herd: Config.MemoryCheckInterval (0: herd's default)")
	fs.IntVar(&x.leak, "leak", 16<<10, "leak: bytes each request leaks")
	fs.DurationVar(&x.respawnDelay, "respawn-delay", 0, "herd: Config.RespawnDelay (0: herd's default)")
	fs.IntVar(&x.maxCrashes, "max-crashes", 0, "herd: Config.MaxCrashes (0: herd's default)")
	fs.DurationVar(&x.delegDur, "deleg-dur", 5*time.Second, "delegate: length of each worker's loop")
	fs.IntVar(&x.delegCallers, "deleg-callers", 1, "delegate: goroutines per worker")
	fs.StringVar(&x.delegOut, "deleg-out", "", "delegate: directory for the latency files")
	return x
}

// apply sets the fields of cfg that x carries.
func (x *serveExtra) apply(cfg herd.Config) herd.Config {
	if x.name != "" {
		cfg.Name = x.name
	}
	// No control API unless asked: clusters of the same name started side
	// by side (throughput) would otherwise share its default socket.
	cfg.Control = "-"
	if x.control != "" {
		cfg.Control = x.control
	}
	cfg.Watchdog = x.watchdog
	cfg.MemoryLimit = x.memLimitMiB << 20
	cfg.MemoryCheckInterval = x.memCheck
	cfg.RespawnDelay = x.respawnDelay
	cfg.MaxCrashes = x.maxCrashes
	return cfg
}

// serveLeak runs a cluster whose workers keep x.leak bytes (every page
// written, so it counts in RSS) for every request they answer.
func serveLeak(ctx context.Context, cfg herd.Config, x *serveExtra) error {
	return herd.Run(ctx, cfg, func(ctx context.Context, w *herd.Worker) error {
		var mu sync.Mutex
		var kept [][]byte
		body := []byte(fmt.Sprintf("leaky slot %d\n", w.ID()))
		return w.ServeHTTP(ctx, http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
			b := make([]byte, x.leak)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			mu.Lock()
			kept = append(kept, b)
			mu.Unlock()
			rw.Header().Set("Content-Type", "text/plain")
			_, _ = rw.Write(body)
		}))
	})
}

// delegResult is what one worker of -mode delegate writes to
// DIR/slot-N.json after its loop.
type delegResult struct {
	Slot    int     `json:"slot"`
	Callers int     `json:"callers"`
	Elapsed int64   `json:"elapsed_ns"`
	Errors  int     `json:"errors"`
	FirstEr string  `json:"first_error,omitempty"`
	Lat     []int64 `json:"lat_ns"`
}

// serveDelegate runs a cluster whose primary echoes "echo" delegations and
// whose workers, once all of them are ready (a "barrier" delegation the
// primary answers when every worker has asked), call Delegate("echo") in a
// loop for x.delegDur, write their latencies and report "done". The
// primary logs "delegate start" and "delegate worker done" lines.
func serveDelegate(ctx context.Context, cfg herd.Config, x *serveExtra) error {
	c, err := herd.New(cfg, func(ctx context.Context, w *herd.Worker) error {
		return delegateWork(ctx, w, x)
	})
	if err != nil {
		return err
	}
	if herd.IsPrimary() {
		var mu sync.Mutex
		arrived, gate := 0, make(chan struct{})
		c.Handle("echo", func(_ context.Context, r herd.Request) (any, error) { return r.Payload, nil })
		c.Handle("barrier", func(ctx context.Context, r herd.Request) (any, error) {
			mu.Lock()
			arrived++
			if arrived == cfg.Workers {
				close(gate)
				cfg.Logger.Info("delegate start", "workers", cfg.Workers)
			}
			mu.Unlock()
			select {
			case <-gate:
				return nil, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
		c.Handle("done", func(_ context.Context, r herd.Request) (any, error) {
			cfg.Logger.Info("delegate worker done", "slot", r.Slot)
			return nil, nil
		})
	}
	return c.Run(ctx)
}

func delegateWork(ctx context.Context, w *herd.Worker, x *serveExtra) error {
	if err := w.Ready(); err != nil {
		return err
	}
	bctx, cancel := context.WithTimeout(ctx, time.Minute)
	_, err := w.Delegate(bctx, "barrier", nil)
	cancel()
	if err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	payload := json.RawMessage(`{"key":"session:1234","op":"get"}`)
	res := delegResult{Slot: w.ID(), Callers: x.delegCallers}
	lats := make([][]int64, x.delegCallers)
	errs := make([]int, x.delegCallers)
	var firstErr sync.Once
	start := time.Now()
	end := start.Add(x.delegDur)
	var wg sync.WaitGroup
	for g := range x.delegCallers {
		wg.Go(func() {
			ds := make([]int64, 0, 1<<16)
			for ctx.Err() == nil {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				if _, err := w.Delegate(ctx, "echo", payload); err != nil {
					errs[g]++
					firstErr.Do(func() { res.FirstEr = err.Error() })
					continue
				}
				ds = append(ds, int64(time.Since(t0)))
			}
			lats[g] = ds
		})
	}
	wg.Wait()
	res.Elapsed = int64(time.Since(start))
	for g := range lats {
		res.Lat = append(res.Lat, lats[g]...)
		res.Errors += errs[g]
	}
	if x.delegOut != "" {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		path := filepath.Join(x.delegOut, fmt.Sprintf("slot-%d.json", w.ID()))
		if err := os.WriteFile(path+".tmp", b, 0o644); err != nil {
			return err
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return err
		}
	}
	if _, err := w.Delegate(ctx, "done", nil); err != nil {
		return fmt.Errorf("done: %w", err)
	}
	<-ctx.Done()
	return nil
}
