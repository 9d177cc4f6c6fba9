package control_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/control/controltest"
	"github.com/herd-cluster/herd/internal/logs"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// newSink returns a logs.Sink closed when the test ends.
func newSink(t *testing.T) *logs.Sink {
	t.Helper()
	sink := logs.New(logs.Config{})
	t.Cleanup(func() { sink.Close() })
	return sink
}

// capture feeds text to the sink as output of slot and waits for it.
func capture(t *testing.T, sink *logs.Sink, slot int, stream logs.Stream, text string) {
	t.Helper()
	select {
	case <-sink.Capture(slot, 1000+slot, stream, strings.NewReader(text)):
	case <-time.After(5 * time.Second):
		t.Fatal("capture did not finish")
	}
}

// open starts a streaming GET and returns its body, closed when the test
// ends.
func open(t *testing.T, s *served, path string) io.ReadCloser {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://herd"+path, nil)
	resp, err := s.hc.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d", path, resp.StatusCode)
	}
	return resp.Body
}

// sseReader reads server-sent events.
type sseReader struct {
	t  *testing.T
	sc *bufio.Scanner
}

// next returns the next event, skipping comments; it fails the test at
// the end of the stream.
func (r *sseReader) next() (string, control.Event) {
	r.t.Helper()
	var typ string
	for r.sc.Scan() {
		line := r.sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			typ = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			var e control.Event
			if err := json.Unmarshal([]byte(line[len("data: "):]), &e); err != nil {
				r.t.Fatalf("bad event data %q: %v", line, err)
			}
			return typ, e
		}
	}
	r.t.Fatalf("event stream ended: %v", r.sc.Err())
	return "", control.Event{}
}

func TestEvents(t *testing.T) {
	fake := controltest.New(2, 1, 4)
	s := serve(t, control.Config{Name: "e"}, fake)
	body := open(t, s, "/events")
	r := &sseReader{t: t, sc: bufio.NewScanner(body)}
	if !r.sc.Scan() || r.sc.Text() != ": subscribed" {
		t.Fatalf("first line %q; want the subscribed comment", r.sc.Text())
	}
	fake.Emit(supervisor.Event{Type: supervisor.EventExited, Slot: 1, PID: 1001, Gen: 2, Status: -1,
		Signal: "killed", Crash: true, Reason: "crash", Err: errTest("boom")})
	fake.Emit(supervisor.Event{Type: supervisor.EventScaled, Slot: -1, Workers: 3, Delay: 1500 * time.Millisecond})
	typ, e := r.next()
	if typ != "exited" || e.Type != "exited" || e.Slot != 1 || e.PID != 1001 || e.Gen != 2 || e.Status != -1 ||
		e.Signal != "killed" || !e.Crash || e.Reason != "crash" || e.Err != "boom" || e.Time.IsZero() {
		t.Errorf("event %q %+v", typ, e)
	}
	if typ, e = r.next(); typ != "scaled" || e.Workers != 3 || e.Slot != -1 || e.Delay != 1.5 {
		t.Errorf("event %q %+v", typ, e)
	}
}

// TestEventsSlowClient checks that a client that does not read makes the
// cluster drop events for it, never block, and is told how many.
func TestEventsSlowClient(t *testing.T) {
	fake := controltest.New(1, 1, 4)
	fake.Buffer = 4
	s := serve(t, control.Config{Name: "e"}, fake)
	body := open(t, s, "/events")
	r := &sseReader{t: t, sc: bufio.NewScanner(body)}
	r.sc.Scan() // subscribed
	// The handler may be blocked writing; Emit must return regardless.
	for i := range 20000 {
		fake.Emit(supervisor.Event{Type: supervisor.EventStatus, Slot: 0, Reason: strings.Repeat("x", 200), Workers: i})
	}
	// The last event may be dropped too: send it until it arrives.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			fake.Emit(supervisor.Event{Type: supervisor.EventScaled, Slot: -1, Workers: -1})
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	var dropped uint64
	for {
		typ, e := r.next()
		if typ == control.EventDropped {
			dropped += e.Dropped
		}
		if typ == "scaled" {
			break
		}
	}
	if dropped == 0 {
		t.Error("no dropped notice although events were dropped")
	}
}

func TestEventsEndWithServer(t *testing.T) {
	fake := controltest.New(1, 1, 1)
	s := serve(t, control.Config{Name: "e"}, fake)
	// The dashboard's history holds one subscription of its own.
	waitUntil(t, "the history to subscribe", func() bool { return fake.Subscribers() == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		got <- s.client.Events(ctx, func() { close(ready) }, func(control.Event) error { return nil })
	}()
	<-ready
	if fake.Subscribers() != 2 {
		t.Errorf("subscribers %d; want 2", fake.Subscribers())
	}
	cancel()
	if err := <-got; err != context.Canceled {
		t.Errorf("Events after cancel = %v", err)
	}
	waitUntil(t, "the subscription to end", func() bool { return fake.Subscribers() == 1 })
}

// readLines decodes n JSON lines of a /logs stream.
func readLines(t *testing.T, dec *json.Decoder, n int) []control.LogLine {
	t.Helper()
	var out []control.LogLine
	for range n {
		var l control.LogLine
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("after %d lines: %v", len(out), err)
		}
		out = append(out, l)
	}
	return out
}

func texts(lines []control.LogLine) string {
	var b []string
	for _, l := range lines {
		b = append(b, l.Text)
	}
	return strings.Join(b, ",")
}

func TestLogs(t *testing.T) {
	sink := newSink(t)
	fake := controltest.New(2, 1, 4)
	s := serve(t, control.Config{Name: "l", Logs: sink}, fake)
	capture(t, sink, 0, logs.Stdout, "a0\nb0\n")
	capture(t, sink, 1, logs.Stderr, "a1\n")
	capture(t, sink, 0, logs.Stdout, "c0\n")

	for _, tt := range []struct{ path, want string }{
		{"/logs", "a0,b0,a1,c0"},
		{"/logs?lines=2", "a1,c0"},
		{"/logs?slot=0", "a0,b0,c0"},
		{"/logs?slot=1&lines=100", "a1"},
		{"/logs?slot=0&lines=1", "c0"},
		{"/logs?lines=0", ""},
	} {
		a := s.do(t, "GET", tt.path, "")
		if a.code != 200 || a.header.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("GET %s = %d %q", tt.path, a.code, a.header.Get("Content-Type"))
		}
		dec := json.NewDecoder(strings.NewReader(a.body))
		lines := readLines(t, dec, strings.Count(a.body, "\n"))
		if got := texts(lines); got != tt.want {
			t.Errorf("GET %s = %q; want %q", tt.path, got, tt.want)
		}
	}
	a := s.do(t, "GET", "/logs?slot=1", "")
	l := decode[control.LogLine](t, a)
	if l.Slot != 1 || l.PID != 1001 || l.Stream != "stderr" || l.Time.IsZero() {
		t.Errorf("line %+v", l)
	}
}

func TestLogsFollow(t *testing.T) {
	sink := newSink(t)
	fake := controltest.New(2, 1, 4)
	s := serve(t, control.Config{Name: "l", Logs: sink}, fake)
	capture(t, sink, 0, logs.Stdout, "old\n")
	dec := json.NewDecoder(open(t, s, "/logs?follow=1&slot=0"))
	if got := texts(readLines(t, dec, 1)); got != "old" {
		t.Fatalf("tail %q", got)
	}
	capture(t, sink, 1, logs.Stdout, "other slot\n")
	capture(t, sink, 0, logs.Stdout, "new1\nnew2\n")
	if got := texts(readLines(t, dec, 2)); got != "new1,new2" {
		t.Errorf("followed %q; want new1,new2", got)
	}

	all := json.NewDecoder(open(t, s, "/logs?follow=1&lines=0"))
	capture(t, sink, 1, logs.Stderr, "x1\n")
	capture(t, sink, 0, logs.Stdout, "x0\n")
	if got := texts(readLines(t, all, 2)); got != "x1,x0" {
		t.Errorf("all slots followed %q; want x1,x0", got)
	}
}

// TestLogsFollowSlowClient checks a follow client that does not read
// loses lines, is told so, and never holds up capture.
func TestLogsFollowSlowClient(t *testing.T) {
	sink := newSink(t)
	fake := controltest.New(1, 1, 4)
	s := serve(t, control.Config{Name: "l", Logs: sink}, fake)
	dec := json.NewDecoder(open(t, s, "/logs?follow=1&lines=0"))
	line := strings.Repeat("y", 500) + "\n"
	capture(t, sink, 0, logs.Stdout, strings.Repeat(line, 20000))
	// The last line may be dropped too: send it until it arrives.
	stop := make(chan struct{})
	stopped := make(chan struct{})
	defer func() { close(stop); <-stopped }()
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			<-sink.Capture(0, 1000, logs.Stdout, strings.NewReader("last\n"))
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	var dropped uint64
	for {
		var l control.LogLine
		if err := dec.Decode(&l); err != nil {
			t.Fatal(err)
		}
		if l.Stream == "herd" {
			dropped += l.Dropped
		}
		if l.Text == "last" {
			break
		}
	}
	if dropped == 0 {
		t.Error("no dropped notice although lines were dropped")
	}
}

func TestLogsOff(t *testing.T) {
	s := serve(t, control.Config{Name: "l"}, controltest.New(1, 1, 1))
	if a := s.do(t, "GET", "/logs", ""); a.code != 404 {
		t.Errorf("GET /logs without Logs = %d %s", a.code, a.body)
	}
}
