package compat

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
)

// appSwitch names the Go app this test binary runs as, instead of the
// tests: the go-systemd server of the suite.
const appSwitch = "COMPAT_GOAPP"

// runGoApp runs the Go app name and returns its exit status: "plain"
// serves with http.Serve and has no stop of its own; "graceful" stops
// accepting on SIGTERM, answers with "Connection: close" for a second,
// then shuts down.
func runGoApp(name string) int {
	ls, err := activation.Listeners() // checks LISTEN_PID, takes fds 3…
	if err != nil || len(ls) == 0 {
		fmt.Fprintln(os.Stderr, "no socket passed:", err)
		return 1
	}
	var stopping atomic.Bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stopping.Load() {
			w.Header().Set("Connection", "close") // the server closes after this answer
		}
		fmt.Fprintln(w, "ok")
	})
	if name == "plain" {
		_ = http.Serve(ls[0], h)
		return 1
	}
	srv := &http.Server{Handler: h}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		stopping.Store(true)
		_ = ls[0].Close() // stop accepting: herd keeps the socket and its queue
		time.Sleep(time.Second)
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
	err = srv.Serve(ls[0]) // returns once the listener is closed
	if !stopping.Load() {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	<-done
	return 0
}
