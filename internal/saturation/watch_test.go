package saturation

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herd-cluster/herd/internal/sockets"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeSource serves readings set by the test: depth and limit by slot.
type fakeSource struct {
	mu    sync.Mutex
	reuse bool
	depth []int
	limit int
}

func (f *fakeSource) set(depth ...int) {
	f.mu.Lock()
	f.depth = depth
	f.mu.Unlock()
}

func (f *fakeSource) Queues(dst []sockets.ListenerQueue, _ bool) []sockets.ListenerQueue {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := sockets.ListenerQueue{Name: "web"}
	for i, d := range f.depth {
		slot := -1
		if f.reuse {
			slot = i
		}
		q.Sockets = append(q.Sockets, sockets.SocketQueue{Slot: slot, Depth: d, Limit: f.limit})
	}
	return append(dst, q)
}

// run feeds readings to a watcher at 250ms steps and returns the alerts
// as strings, one per step that raised any ("" for none).
func run(w *Watcher, src *fakeSource, readings ...[]int) []string {
	var got []string
	var cur []string
	w.cfg.Alert = func(a Alert) {
		where := ""
		if a.Slots != nil {
			where = slotList(a.Slots)
		}
		cur = append(cur, kindName[a.Kind]+":"+where)
	}
	now := time.Unix(1000, 0)
	for _, r := range readings {
		src.set(r...)
		cur = nil
		w.Step(now)
		got = append(got, strings.Join(cur, ","))
		now = now.Add(250 * time.Millisecond)
	}
	return got
}

var kindName = map[Kind]string{Stuck: "stuck", High: "high", Cleared: "cleared"}

func TestStuck(t *testing.T) {
	tests := []struct {
		name     string
		readings [][]int
		want     string // alerts by step, joined with |
	}{
		{"empty", [][]int{{0}, {0}, {0}}, "||"},
		{"stays queued 2s", [][]int{{1}, {1}, {2}, {2}, {2}, {3}, {3}, {3}, {3}, {3}, {0}},
			"||||||||stuck:||cleared:"},
		{"goes down now and then", [][]int{{3}, {3}, {3}, {3}, {3}, {2}, {3}, {3}, {3}, {3}, {3}, {3}},
			"|||||||||||"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := &fakeSource{limit: 100}
			// Shared sockets name no slot.
			got := strings.Join(run(New(src, Config{}), src, tc.readings...), "|")
			if got != tc.want {
				t.Errorf("alerts %q; want %q", got, tc.want)
			}
		})
	}
}

// TestStuckSlot checks that one stuck reuseport slot is seen, though the
// listener as a whole keeps accepting.
func TestStuckSlot(t *testing.T) {
	src := &fakeSource{limit: 100, reuse: true}
	var readings [][]int
	for i := range 12 {
		readings = append(readings, []int{i % 2, 4, 1 - i%2})
	}
	readings = append(readings, []int{0, 0, 0})
	got := strings.Join(run(New(src, Config{}), src, readings...), "|")
	if want := "||||||||stuck:slot 1||||cleared:"; got != want {
		t.Errorf("alerts %q; want %q", got, want)
	}
}

func TestHigh(t *testing.T) {
	src := &fakeSource{limit: 10}
	got := strings.Join(run(New(src, Config{}), src, []int{7}, []int{8}, []int{6}, []int{8}, []int{3}, []int{9}), "|")
	// 8 of 10 is high; it clears below 4, and goes high again after.
	if want := "|high:|||cleared:|high:"; got != want {
		t.Errorf("alerts %q; want %q", got, want)
	}
}

func TestSustained(t *testing.T) {
	src := &fakeSource{limit: 100}
	var got []bool
	w := New(src, Config{ScaleQueue: 2, Sustained: func(on bool) { got = append(got, on) }})
	// Accepted from (it goes down), then stuck from the 5th reading on:
	// a stuck queue is not a reason to scale.
	run(w, src, []int{3}, []int{2}, []int{4}, []int{1}, []int{5}, []int{5}, []int{5}, []int{5}, []int{5}, []int{5}, []int{5}, []int{5}, []int{5})
	// On at 3, off at 1, on at 5, and off once stuck.
	if fmt.Sprint(got) != "[true false true false]" {
		t.Errorf("Sustained calls %v; want [true false true false]", got)
	}
}

// TestRealSocket watches a real listening socket whose server stops
// accepting.
func TestRealSocket(t *testing.T) {
	specs, err := sockets.ParseAll([]string{"web=127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	set, err := sockets.Bind(specs, sockets.BalanceShared, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	alerts := make(chan Alert, 8)
	w := New(set, Config{Interval: 20 * time.Millisecond, IdleInterval: 20 * time.Millisecond,
		StuckAfter: 200 * time.Millisecond, Alert: func(a Alert) { alerts <- a }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	addr := set.Addrs()[0][len("web=tcp://"):]
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	select {
	case a := <-alerts:
		if a.Kind != Stuck || a.Depth != 3 || a.Slots != nil {
			t.Fatalf("alert %+v; want stuck with 3 connections", a)
		}
		if !strings.Contains(a.String(), "listener web: 3 connections wait and none was accepted") {
			t.Errorf("alert says %q", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no alert for a queue nobody accepts from")
	}
	if ls := w.Listeners(); len(ls) != 1 || !ls[0].Stuck || ls[0].Depth != 3 {
		t.Errorf("Listeners() = %+v; want web stuck with 3", ls)
	}
	files, _ := set.Files(0)
	l, err := net.FileListener(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 3 {
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	select {
	case a := <-alerts:
		if a.Kind != Cleared {
			t.Fatalf("alert %+v; want cleared", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no cleared alert once the queue was accepted")
	}
}
