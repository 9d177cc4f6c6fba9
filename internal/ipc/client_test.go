package ipc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestDelegate(t *testing.T) {
	_, cl := connect(t, newTestHandler(), ConnOptions{})
	got, err := cl.Delegate(ctxT(t), "echo", map[string]int{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `{"n":1}` {
		t.Errorf("got %s; want {\"n\":1}", got)
	}
	got, err = cl.Delegate(ctxT(t), "echo", nil)
	if err != nil || got != nil {
		t.Errorf("without payload: got %s, %v; want nil, nil", got, err)
	}
}

func TestDelegateConcurrent(t *testing.T) {
	_, cl := connect(t, newTestHandler(), ConnOptions{})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 100 {
		wg.Go(func() {
			for i := range 100 {
				want := fmt.Sprintf(`"%d/%d"`, g, i)
				got, err := cl.Delegate(context.Background(), "echo", json.RawMessage(want))
				if err != nil || string(got) != want {
					errs <- fmt.Errorf("got %s, %v; want %s", got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestDelegateErrors(t *testing.T) {
	h := newTestHandler()
	_, cl := connect(t, h, ConnOptions{})
	t.Run("no-handler", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		start := time.Now()
		_, err := cl.Delegate(ctx, "nobody", nil)
		if !errors.Is(err, ErrNoHandler) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v; want ErrNoHandler", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("handler-error", func(t *testing.T) {
		_, err := cl.Delegate(ctxT(t), "fail", nil)
		var re *RemoteError
		if !errors.As(err, &re) || re.Code != CodeHandlerError || re.Message != "database is down" {
			t.Errorf("got %v; want a handler_error with the handler's message", err)
		}
	})
	t.Run("handler-panic", func(t *testing.T) {
		_, err := cl.Delegate(ctxT(t), "panic", nil)
		var re *RemoteError
		if !errors.As(err, &re) || re.Code != CodeHandlerError || re.Message != "handler panicked: boom" {
			t.Errorf("got %v; want a handler_error about the panic", err)
		}
	})
	t.Run("ctx-timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if _, err := cl.Delegate(ctx, "block", nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v; want context.DeadlineExceeded", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := cl.Delegate(ctx, "echo", nil); !errors.Is(err, context.Canceled) {
			t.Errorf("got %v; want context.Canceled", err)
		}
	})
	t.Run("bad-payload", func(t *testing.T) {
		if _, err := cl.Delegate(ctxT(t), "echo", func() {}); err == nil {
			t.Error("got nil; want an error")
		}
	})
	if _, err := cl.Delegate(ctxT(t), "echo", 1); err != nil {
		t.Errorf("after the errors: %v", err)
	}
}

// TestPrimaryTimeout: the primary answers timeout at the deadline it was
// given, even when the handler ignores its context.
func TestPrimaryTimeout(t *testing.T) {
	h := newTestHandler()
	defer close(h.release)
	_, w := serve(t, h, ConnOptions{})
	in := append(append([]byte{}, rawHello...), frame(`{"t":"delegate","id":3,"type":"stall","timeout_ms":20}`)...)
	if _, err := w.Write(in); err != nil {
		t.Fatal(err)
	}
	fr := newFrameReader(w)
	if _, err := fr.next(); err != nil {
		t.Fatal(err)
	}
	m, err := fr.next()
	if err != nil || m.T != MsgReply || m.ID != 3 || m.Code != CodeTimeout {
		t.Errorf("got %+v, %v; want a timeout reply to id 3", m, err)
	}
}

func TestNotifyAndRecycle(t *testing.T) {
	h := newTestHandler()
	_, cl := connect(t, h, ConnOptions{})
	for i := range 3 {
		if err := cl.Notify("log", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.Recycle("leak"); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		<-h.notified
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if want := []string{"log 0", "log 1", "log 2"}; !reflect.DeepEqual(h.notifies, want) {
		t.Errorf("notifies: got %q; want %q", h.notifies, want)
	}
	if want := []string{"leak"}; !reflect.DeepEqual(h.recycles, want) {
		t.Errorf("recycles: got %q; want %q", h.recycles, want)
	}
}

// barrier returns once the primary has handled everything cl sent before.
func barrier(t *testing.T, cl *Client) {
	t.Helper()
	if _, err := cl.Delegate(ctxT(t), "echo", nil); err != nil {
		t.Fatal(err)
	}
}

func TestPublish(t *testing.T) {
	h := newTestHandler()
	connA, a := connect(t, h, ConnOptions{})
	connB, b := connect(t, h, ConnOptions{})
	news, cancel, _ := a.Subscribe("news")
	news2, cancel2, _ := a.Subscribe("news")
	all, cancelAll, _ := b.Subscribe("")
	defer cancelAll()
	barrier(t, a)
	if !connA.Publish("news", json.RawMessage(`1`)) {
		t.Error("Publish to a subscriber: false")
	}
	if connB.Publish("news", json.RawMessage(`1`)) {
		t.Error("Publish to a worker not subscribed: true")
	}
	for _, ch := range []<-chan Message{news, news2} {
		if m := <-ch; m.Topic != "news" || string(m.Payload) != "1" {
			t.Errorf("got %+v; want news 1", m)
		}
	}
	if !connA.Publish("", json.RawMessage(`2`)) || !connB.Publish("", json.RawMessage(`2`)) {
		t.Error("broadcast: false")
	}
	if m := <-all; m.Topic != "" || string(m.Payload) != "2" {
		t.Errorf("got %+v; want broadcast 2", m)
	}
	cancel()
	barrier(t, a)
	if !connA.Subscribed("news") {
		t.Error("unsubscribed while a subscriber is left")
	}
	cancel2()
	cancel2()
	barrier(t, a)
	if connA.Publish("news", json.RawMessage(`3`)) {
		t.Error("Publish after unsubscribe: true")
	}
	if _, ok := <-news; ok {
		t.Error("channel open after cancel")
	}
}

func TestHeartbeat(t *testing.T) {
	beats := make(chan map[string]float64, 100)
	var requests sync.Map
	opts := ConnOptions{Heartbeat: 5 * time.Millisecond, OnHeartbeat: func(n uint64, g map[string]float64) {
		requests.Store(n, true)
		select {
		case beats <- g:
		default:
		}
	}}
	conn, cl := connect(t, newTestHandler(), opts)
	cl.AddRequests(2)
	cl.AddRequests(3)
	cl.SetGauge("queue", 1.5)
	cl.SetGauge("nan", nan())
	timeout := time.After(10 * time.Second)
	for {
		var g map[string]float64
		select {
		case g = <-beats:
		case <-timeout:
			t.Fatal("no heartbeat with requests 5 after 10s")
		}
		if _, ok := requests.Load(uint64(5)); ok && g["queue"] == 1.5 {
			break
		}
	}
	if conn.Requests() < 5 || conn.LastHeartbeat().IsZero() {
		t.Errorf("Requests() = %d, LastHeartbeat() = %v; want 5 and a time", conn.Requests(), conn.LastHeartbeat())
	}
}

func nan() float64 { var z float64; return z / z }

func TestQueries(t *testing.T) {
	_, cl := connect(t, newTestHandler(), ConnOptions{})
	stats, err := cl.Stats(ctxT(t))
	if err != nil || string(stats) != `{"workers":2}` {
		t.Errorf("Stats: got %s, %v", stats, err)
	}
	status, err := cl.Status(ctxT(t))
	if err != nil || string(status) != `{"slot":0,"status":"ACTIVE"}` {
		t.Errorf("Status: got %s, %v", status, err)
	}
	enabled, healthy, reason, err := cl.ECV(ctxT(t))
	if err != nil || !enabled || healthy || reason != `monitor "/" failed` {
		t.Errorf("ECV: got %v, %v, %q, %v", enabled, healthy, reason, err)
	}
}

func TestMembership(t *testing.T) {
	conn, cl := connect(t, newTestHandler(), ConnOptions{})
	if err := conn.Rebalance(4, 8, 100); err != nil {
		t.Fatal(err)
	}
	views := make(chan [3]int, 10)
	cl.OnRebalance(func(i, n, e int) { views <- [3]int{i, n, e} }) // may come after the rebalance
	if v := <-views; v != [3]int{4, 8, 100} {
		t.Errorf("view: got %v; want [4 8 100]", v)
	}
	prepared := make(chan [3]int, 2)
	cl.OnPrepare(func(ctx context.Context, i, n, e int) error {
		prepared <- [3]int{i, n, e}
		if e == 102 {
			return errors.New("busy")
		}
		return nil
	})
	if err := conn.Prepare(ctxT(t), -1, 9, 101); err != nil {
		t.Errorf("Prepare: %v", err)
	}
	if v := <-prepared; v != [3]int{-1, 9, 101} {
		t.Errorf("OnPrepare got %v; want [-1 9 101]", v)
	}
	var re *RemoteError
	if err := conn.Prepare(ctxT(t), 0, 9, 102); !errors.As(err, &re) || re.Message != "busy" {
		t.Errorf("Prepare: got %v; want the worker's error", err)
	}
}

func TestDial(t *testing.T) {
	t.Setenv(EnvFD, "")
	if _, err := Dial(ctxT(t)); !errors.Is(err, ErrNoIPC) {
		t.Errorf("without %s: got %v; want ErrNoIPC", EnvFD, err)
	}
	t.Setenv(EnvFD, "nope")
	if _, err := Dial(ctxT(t)); err == nil {
		t.Error("with a bad fd number: got nil error")
	}
	conn, w := serve(t, newTestHandler(), ConnOptions{})
	fd, err := syscall.Dup(int(w.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	t.Setenv(EnvFD, strconv.Itoa(fd))
	t.Setenv("HERD_WORKER_ID", "0")
	cl, err := Dial(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Close(); waitDone(t, cl.Done()) }()
	if _, ok := os.LookupEnv(EnvFD); ok {
		t.Errorf("%s still set after Dial", EnvFD)
	}
	if _, err := Dial(ctxT(t)); !errors.Is(err, ErrNoIPC) {
		t.Errorf("second Dial: got %v; want ErrNoIPC", err)
	}
	if _, err := cl.Delegate(ctxT(t), "echo", 1); err != nil {
		t.Error(err)
	}
	waitHello(t, conn)
}

func TestUntilAligned(t *testing.T) {
	base := time.Unix(1000, 0) // a multiple of every interval below
	for _, tc := range []struct {
		at, d, want time.Duration
	}{
		{0, 5 * time.Second, 5 * time.Second},
		{time.Second, 5 * time.Second, 4 * time.Second},
		{2400 * time.Millisecond, 5 * time.Second, 2600 * time.Millisecond},
		{2600 * time.Millisecond, 5 * time.Second, 7400 * time.Millisecond}, // not under half an interval
		{4999 * time.Millisecond, 5 * time.Second, 5001 * time.Millisecond},
		{300 * time.Millisecond, time.Second, 700 * time.Millisecond},
	} {
		if got := untilAligned(base.Add(tc.at), tc.d); got != tc.want {
			t.Errorf("untilAligned(+%s, %s) = %s; want %s", tc.at, tc.d, got, tc.want)
		}
	}
}
