package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/herd-cluster/herd"
)

// serveMain is "herdbench serve": the same hello handler served either by
// a herd cluster of Go workers (-mode herd) or by one plain net/http
// process (-mode plain); or a herd cluster whose workers leak memory per
// request (-mode leak) or delegate to the primary in a loop (-mode
// delegate), both in serve_extra.go. It runs until SIGTERM or SIGINT.
func serveMain(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	mode := fs.String("mode", "herd", "herd or plain")
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on")
	workers := fs.Int("workers", 2, "herd: workers")
	balance := fs.String("balance", "shared", "herd: shared or reuseport")
	pidDir := fs.String("pid-dir", "", "herd: pid directory")
	x := addServeExtraFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	switch *mode {
	case "plain":
		return servePlain(ctx, *listen)
	case "herd":
		cfg := herd.Config{
			Name:         "herdbench",
			Workers:      *workers,
			Listen:       []string{*listen},
			Balance:      herd.Balance(*balance),
			PIDDir:       *pidDir,
			StartupDelay: -1,
			LogFormat:    "json",
			Logger:       slog.New(slog.NewJSONHandler(os.Stderr, nil)),
		}
		return herd.Run(ctx, x.apply(cfg), func(ctx context.Context, w *herd.Worker) error {
			return w.ServeHTTP(ctx, hello(w.ID()))
		})
	case "leak", "delegate":
		cfg := herd.Config{
			Name:         "herdbench-" + *mode,
			Workers:      *workers,
			Listen:       []string{*listen},
			PIDDir:       *pidDir,
			StartupDelay: -1,
			LogFormat:    "json",
			Logger:       slog.New(slog.NewJSONHandler(os.Stderr, nil)),
		}
		if *mode == "leak" {
			return serveLeak(ctx, x.apply(cfg), x)
		}
		cfg.Listen = nil // the workers only talk to the primary
		return serveDelegate(ctx, x.apply(cfg), x)
	}
	return fmt.Errorf("-mode %q is none of herd, plain, leak, delegate", *mode)
}

// hello is the handler every server variant runs: it names the slot that
// answered, so the load generator can count connections per worker.
func hello(slot int) http.Handler {
	body := []byte(fmt.Sprintf("hello from slot %d\n", slot))
	return http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain")
		_, _ = rw.Write(body)
	})
}

// servePlain serves hello on one listener in this process, with the server
// settings herd's ServeHTTP uses, and says "ready" on stderr.
func servePlain(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: hello(0), ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	fmt.Fprintf(os.Stderr, "{\"msg\":\"plain ready\",\"addr\":%q}\n", l.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
