package herd

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// How ServeHTTP drains: keep-alive connections are asked to close with their
// next response for up to drainIdle, then the server shuts down, waiting at
// most drainTimeout for requests in flight (the primary's ShutdownTimeout
// still bounds the whole).
const (
	drainIdle    = time.Second
	drainTimeout = 60 * time.Second
)

// ServeHTTP serves h on every stream listener of the worker, says Ready, and
// when ctx is done stops without failing a request: it stops accepting (the
// sockets stay open in the primary, so queued connections go to other
// workers), answers the requests still arriving on open keep-alive
// connections with "Connection: close", and returns once they are done.
func (w *Worker) ServeHTTP(ctx context.Context, h http.Handler) error {
	return w.Serve(ctx, &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second})
}

// Serve is ServeHTTP with a server of your own (timeouts, TLS config, error
// log); its Handler, ConnState and BaseContext are wrapped.
func (w *Worker) Serve(ctx context.Context, srv *http.Server) error {
	lns, err := w.Listeners()
	if err != nil {
		return err
	}
	if len(lns) == 0 {
		return errors.New("herd: no stream listener to serve HTTP on")
	}
	d := &drainer{h: srv.Handler, idle: make(chan struct{}, 1)}
	if d.h == nil {
		d.h = http.DefaultServeMux
	}
	d.h = w.CountRequests(d.h)
	srv.Handler = d
	prevState := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		d.track(s)
		if prevState != nil {
			prevState(c, s)
		}
	}
	errc := make(chan error, len(lns))
	for _, l := range lns {
		go func() { errc <- srv.Serve(l) }()
	}
	if err := w.Ready(); err != nil {
		srv.Close()
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		srv.Close()
		return err
	}
	d.draining.Store(true)
	for _, l := range lns {
		l.Close()
	}
	d.waitIdle(drainIdle)
	sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	// Shutdown closes the listeners it still tracks; those were closed
	// above, and whether a Serve goroutine has let go of its listener yet
	// is a race, so "already closed" is not an error here.
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// drainer counts open connections and, once draining, asks every client to
// close its connection after the response.
type drainer struct {
	h        http.Handler
	draining atomic.Bool
	mu       sync.Mutex
	open     int
	idle     chan struct{}
}

func (d *drainer) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if d.draining.Load() {
		rw.Header().Set("Connection", "close")
	}
	d.h.ServeHTTP(rw, r)
}

func (d *drainer) track(s http.ConnState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch s {
	case http.StateNew:
		d.open++
	case http.StateClosed, http.StateHijacked:
		d.open--
		if d.open == 0 {
			select {
			case d.idle <- struct{}{}:
			default:
			}
		}
	}
}

// waitIdle waits until no connection is open, or for at most max.
func (d *drainer) waitIdle(max time.Duration) {
	t := time.NewTimer(max)
	defer t.Stop()
	for {
		d.mu.Lock()
		n := d.open
		d.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-d.idle:
		case <-t.C:
			return
		}
	}
}
