package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd"
)

// demoListen is where the demo serves when --listen is not given.
const demoListen = "127.0.0.1:8080"

// newDemoCmd returns `herd demo`: a cluster of Go workers serving HTTP,
// started through the library exactly as a user's program would be.
func newDemoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo [flags]",
		Short: "Run a demo cluster of Go workers serving HTTP",
		Long: `Run a demo cluster: this executable becomes the primary and its workers
are this executable again, serving HTTP through the herd library.

Each worker answers / with its slot, pid and generation. /slow?ms=N answers
after N milliseconds, and /crash makes the worker exit with status 1 after
answering, so you can watch it being respawned.

Without --listen the demo serves on ` + demoListen + `. Try, in another terminal:

  curl http://` + demoListen + `/
  kill -USR2 <primary pid>      # rolling restart, no request fails
  kill -TTIN <primary pid>      # one more worker`,
		Args: noArgs,
	}
	flags := addClusterFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		defer flags.ctl.closeLog()
		cfg, err := flags.config(cmd)
		if err != nil {
			return err
		}
		if len(cfg.Command) > 0 {
			return &usageError{errors.New("demo runs its own Go workers: a config file's command: does not apply")}
		}
		if len(cfg.Listen) == 0 {
			cfg.Listen = []string{demoListen}
		}
		if cfg.Name == "" {
			cfg.Name = "herd-demo"
		}
		if !cmd.Flags().Changed("workers") && os.Getenv("HERD_WORKERS") == "" {
			cfg.Workers = max(cfg.Workers, 2) // a cluster of one shows little
			if cfg.MaxWorkers != 0 {
				cfg.MaxWorkers = max(cfg.MaxWorkers, cfg.Workers)
			}
		}
		cfg.Ready = herd.ReadyNotify
		return herd.Run(context.Background(), cfg, demoWork)
	}
	return cmd
}

// demoWork is the demo worker: a small HTTP server.
func demoWork(ctx context.Context, w *herd.Worker) error {
	started := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, "hello from worker %d of %d (pid %d, generation %d, up %s)\n",
			w.ID(), w.Count(), os.Getpid(), w.Generation(), time.Since(started).Round(time.Millisecond))
	})
	mux.HandleFunc("/slow", func(rw http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
		}
		fmt.Fprintf(rw, "worker %d slept %dms\n", w.ID(), ms)
	})
	mux.HandleFunc("/crash", func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, "worker %d crashing\n", w.ID())
		rw.(http.Flusher).Flush()
		go func() { time.Sleep(10 * time.Millisecond); os.Exit(1) }()
	})
	l, err := w.Listener("")
	if err != nil {
		return err
	}
	fmt.Printf("worker %d (pid %d) serving on http://%s\n", w.ID(), os.Getpid(), l.Addr())
	return w.ServeHTTP(ctx, mux)
}
