package ipc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// frames concatenates frames of bodies.
func frames(bodies ...string) []byte {
	var b []byte
	for _, body := range bodies {
		b = append(b, frame(body)...)
	}
	return b
}

// subscribes returns n subscribe frames to distinct topics of size bytes.
func subscribes(n, size int) []string {
	out := make([]string, n)
	for i := range out {
		topic := fmt.Sprintf("%0*d", size, i)
		out[i] = `{"t":"subscribe","topic":"` + topic + `"}`
	}
	return out
}

// TestConnLimits checks that a worker over a limit gets a protocol error
// and its channel closed, and that the handler never sees the frame.
func TestConnLimits(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name   string
		bodies []string
		want   string
	}{
		{"long topic", []string{`{"t":"subscribe","topic":"` + long(MaxName+1) + `"}`}, `"topic" of 1025 bytes`},
		{"many topics", subscribes(MaxTopics+1, 8), "more than 256 subscriptions"},
		{"topic bytes", subscribes(MaxTopicBytes/MaxName+1, MaxName), "more than 65536 bytes of topics"},
		{"long type", []string{`{"t":"delegate","id":1,"type":"` + long(MaxName+1) + `"}`}, `"type" of 1025 bytes`},
		{"long notify type", []string{`{"t":"notify","type":"` + long(MaxName+1) + `"}`}, `"type" of 1025 bytes`},
		{"long reason", []string{`{"t":"recycle","reason":"` + long(MaxText+1) + `"}`}, `"reason" of 4097 bytes`},
		{"long error", []string{`{"t":"prepared","epoch":1,"error":"` + long(MaxText+1) + `"}`}, `"error" of 4097 bytes`},
		{"long kind", []string{`{"t":"` + long(MaxName+1) + `"}`}, `"t" of 1025 bytes`},
		{"many gauges", []string{heartbeatWithGauges(MaxGauges+1, 4)}, "more than 1024 gauges"},
		{"long gauge name", []string{heartbeatWithGauges(1, MaxName+1)}, "gauge name of 1025 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler()
			conn, w := serve(t, h, ConnOptions{Logger: discardLogger()})
			input := append(append([]byte{}, rawHello...), frames(tt.bodies...)...)
			go func() { _, _ = w.Write(input) }() // the primary may close before reading it all
			ms := readAll(t, w)
			waitDone(t, conn.Done())
			if err := conn.Err(); !errors.Is(err, ErrLimit) || !errors.Is(err, ErrProtocol) {
				t.Errorf("Err() = %v; want ErrLimit and ErrProtocol", err)
			}
			last := ms[len(ms)-1]
			if last.T != MsgError || last.Code != CodeProtocol || !strings.Contains(last.Error, tt.want) {
				t.Errorf("last frame %+v; want a protocol_error saying %q", last, tt.want)
			}
			if n := h.calls.Load(); n != 0 {
				t.Errorf("handler called %d times; want 0", n)
			}
		})
	}
	t.Run("long lang", func(t *testing.T) {
		conn, w := serve(t, newTestHandler(), ConnOptions{Logger: discardLogger()})
		go func() { _, _ = w.Write(frame(`{"t":"hello","v":1,"lang":"` + long(MaxName+1) + `"}`)) }()
		readAll(t, w)
		waitDone(t, conn.Done())
		if _, ok := conn.Hello(); ok || !errors.Is(conn.Err(), ErrLimit) {
			t.Errorf("hello with a long lang: accepted %v, Err %v; want refused with ErrLimit", ok, conn.Err())
		}
	})
}

// heartbeatWithGauges returns a heartbeat with n gauges named by size
// bytes each.
func heartbeatWithGauges(n, size int) string {
	var b strings.Builder
	b.WriteString(`{"t":"heartbeat","gauges":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"%0*d":1`, size, i)
	}
	b.WriteString("}}")
	return b.String()
}

// TestTopicsWithinLimits checks that subscriptions are a set, and that an
// unsubscribe makes room for another topic.
func TestTopicsWithinLimits(t *testing.T) {
	conn, w := serve(t, newTestHandler(), ConnOptions{Logger: discardLogger()})
	bodies := subscribes(MaxTopics, 8)
	bodies = append(bodies, bodies...) // again: the same set
	bodies = append(bodies, `{"t":"unsubscribe","topic":"00000000"}`, `{"t":"subscribe","topic":"another"}`)
	if _, err := w.Write(append(append([]byte{}, rawHello...), frames(bodies...)...)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !conn.Subscribed("another") {
		if conn.Err() != nil || time.Now().After(deadline) {
			t.Fatalf("not subscribed to another topic: %v", conn.Err())
		}
		time.Sleep(time.Millisecond)
	}
	if conn.Subscribed("00000000") || !conn.Subscribed("00000255") {
		t.Error("subscriptions are not what was asked")
	}
}

// TestInFlightBytes checks that the payloads of requests being handled
// are bounded: past MaxInFlightBytes the worker's frames wait unread.
func TestInFlightBytes(t *testing.T) {
	h := newTestHandler()
	_, cl := connect(t, h, ConnOptions{MaxInFlightBytes: 2 << 20})
	payload := json.RawMessage(`"` + strings.Repeat("p", 900<<10) + `"`)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := cl.Delegate(ctxT(t), "stall", payload)
			errs <- err
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests reached the handler; want 2", h.calls.Load())
		}
		time.Sleep(time.Millisecond)
	}
	// The third waits, unread, and every later frame behind it.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := cl.Stats(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stats behind the held requests: %v; want it to wait", err)
	}
	if n := h.calls.Load(); n != 2 {
		t.Errorf("%d requests reached the handler with 1.8 MB in flight; want 2", n)
	}
	close(h.release)
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("Delegate: %v", err)
		}
	}
}

// TestFrameReaderKeepsLittle checks that a large frame does not leave its
// buffer behind.
func TestFrameReaderKeepsLittle(t *testing.T) {
	body := `{"t":"notify","payload":"` + strings.Repeat("x", MaxFrame-40) + `"}`
	fr := newFrameReader(bytes.NewReader(frames(body, `{"t":"x","payload":"`+strings.Repeat("y", 100<<10)+`"}`)))
	for range 2 {
		if _, err := fr.next(); err != nil {
			t.Fatal(err)
		}
		if cap(fr.scratch) > maxScratch {
			t.Errorf("reader keeps %d bytes; want at most %d", cap(fr.scratch), maxScratch)
		}
	}
}

// TestClientLimits checks that a Go client refuses or shortens what the
// primary would refuse, instead of losing its channel.
func TestClientLimits(t *testing.T) {
	h := newTestHandler()
	conn, cl := connect(t, h, ConnOptions{})
	if _, _, err := cl.Subscribe(strings.Repeat("t", MaxName+1)); !errors.Is(err, ErrLimit) {
		t.Errorf("Subscribe(long topic) = %v; want ErrLimit", err)
	}
	for i := range MaxTopics {
		if _, _, err := cl.Subscribe(fmt.Sprint("topic", i)); err != nil {
			t.Fatalf("Subscribe %d: %v", i, err)
		}
	}
	if _, _, err := cl.Subscribe("one too many"); !errors.Is(err, ErrLimit) {
		t.Errorf("Subscribe past MaxTopics = %v; want ErrLimit", err)
	}
	if _, err := cl.Delegate(ctxT(t), strings.Repeat("d", MaxName+1), nil); !errors.Is(err, ErrLimit) {
		t.Errorf("Delegate(long type) = %v; want ErrLimit", err)
	}
	if err := cl.Notify(strings.Repeat("n", MaxName+1), nil); !errors.Is(err, ErrLimit) {
		t.Errorf("Notify(long type) = %v; want ErrLimit", err)
	}
	for i := range MaxGauges + 10 {
		cl.SetGauge(fmt.Sprint("g", i), 1)
	}
	cl.SetGauge(strings.Repeat("g", MaxName+1), 1)
	cl.sendHeartbeat()
	if err := cl.Recycle("é" + strings.Repeat("r", 2*MaxText)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.notified:
	case <-time.After(10 * time.Second):
		t.Fatalf("recycle not received; channel: %v", conn.Err())
	}
	h.mu.Lock()
	reason := h.recycles[0]
	h.mu.Unlock()
	if len(reason) > MaxText || !strings.HasPrefix(reason, "é") {
		t.Errorf("recycle reason of %d bytes; want it shortened to %d", len(reason), MaxText)
	}
	if err := conn.Err(); err != nil {
		t.Errorf("the channel ended: %v", err)
	}
}
