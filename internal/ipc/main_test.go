package ipc

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// withVersion makes a client announce protocol version v.
func withVersion(v int) ClientOption {
	return func(o *clientOptions) { o.version = v }
}

// testHandler is a Handler whose delegated types are: "echo" (returns the
// payload), "fail" (an error), "panic", "block" (waits for ctx), "stall"
// (waits for release, ignoring ctx), "big" (a 256 KiB reply); anything else
// has no handler.
type testHandler struct {
	calls   atomic.Int64 // Handler calls of any kind
	release chan struct{}

	mu       sync.Mutex
	notifies []string
	recycles []string
	notified chan struct{} // receives after each Notify or Recycle
}

func newTestHandler() *testHandler {
	return &testHandler{release: make(chan struct{}), notified: make(chan struct{}, 100)}
}

func (h *testHandler) Delegate(ctx context.Context, slot int, typ string, payload json.RawMessage) (json.RawMessage, error) {
	h.calls.Add(1)
	switch typ {
	case "echo":
		return payload, nil
	case "fail":
		return nil, errors.New("database is down")
	case "panic":
		panic("boom")
	case "block":
		<-ctx.Done()
		return nil, ctx.Err()
	case "stall":
		<-h.release
		return json.RawMessage(`"late"`), nil
	case "big":
		return json.RawMessage(`"` + bigString + `"`), nil
	}
	return nil, ErrNoHandler
}

func (h *testHandler) Notify(slot int, typ string, payload json.RawMessage) {
	h.calls.Add(1)
	h.mu.Lock()
	h.notifies = append(h.notifies, typ+" "+string(payload))
	h.mu.Unlock()
	select {
	case h.notified <- struct{}{}:
	default:
	}
}

func (h *testHandler) Stats(ctx context.Context) (json.RawMessage, error) {
	h.calls.Add(1)
	return json.RawMessage(`{"workers":2}`), nil
}

func (h *testHandler) Status(ctx context.Context, slot int) (json.RawMessage, error) {
	h.calls.Add(1)
	return json.Marshal(map[string]any{"slot": slot, "status": "ACTIVE"})
}

func (h *testHandler) ECV() (bool, bool, string) {
	h.calls.Add(1)
	return true, false, `monitor "/" failed`
}

func (h *testHandler) Recycle(slot int, reason string) {
	h.calls.Add(1)
	h.mu.Lock()
	h.recycles = append(h.recycles, reason)
	h.mu.Unlock()
	select {
	case h.notified <- struct{}{}:
	default:
	}
}

// bigString is a 256 KiB string for payloads that fill socket buffers.
var bigString = strings.Repeat("x", 256<<10)

// testLogger logs to the test at debug level.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// serve starts a Conn on a new pair and returns it with the worker's end.
func serve(t testing.TB, h Handler, opts ConnOptions) (*Conn, *os.File) {
	t.Helper()
	p, w, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	c := Serve(p, 0, 0, h, opts)
	t.Cleanup(func() {
		_ = w.Close()
		_ = c.Close()
		waitDone(t, c.Done())
	})
	return c, w
}

// connect returns a Conn serving a connected Client.
func connect(t testing.TB, h Handler, opts ConnOptions) (*Conn, *Client) {
	t.Helper()
	conn, w := serve(t, h, opts)
	cl, err := NewClient(ctxT(t), w, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cl.Close()
		waitDone(t, cl.Done())
	})
	return conn, cl
}

// ctxT returns a context ending 10 seconds from now or with the test.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitDone waits up to 10 seconds for done.
func waitDone(t testing.TB, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("not done after 10s")
	}
}

// discardLogger drops everything.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
