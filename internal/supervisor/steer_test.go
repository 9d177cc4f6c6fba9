package supervisor

import (
	"context"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// steerLauncher is a fakeLauncher whose slots have sockets of their own:
// it records what Steer is told and reports the queues a test sets.
type steerLauncher struct {
	*fakeLauncher
	mu     sync.Mutex
	steers [][]bool
	queued map[int]int
}

func (l *steerLauncher) Steer(serving []bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.steers = append(l.steers, slices.Clone(serving))
	return nil
}

func (l *steerLauncher) Queued(slot int) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.queued[slot], true
}

func (l *steerLauncher) setQueued(slot, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queued[slot] = n
}

// lastSteer returns what Steer was last told.
func (l *steerLauncher) lastSteer() []bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.steers) == 0 {
		return nil
	}
	return l.steers[len(l.steers)-1]
}

// startSteering is start with a steerLauncher and 3 workers.
func startSteering(t *testing.T) (*harness, *steerLauncher) {
	t.Helper()
	cfg := testConfig()
	cfg.Workers = 3
	h := &harness{t: t, clock: newFakeClock(), rec: newRecorder(), runc: make(chan error, 1)}
	h.l = newFakeLauncher(cfg.StopSignal)
	sl := &steerLauncher{fakeLauncher: h.l, queued: map[int]int{}}
	cfg.Emit = h.rec.emit
	h.cfg = cfg
	h.p = newPool(cfg, sl, h.clock)
	h.clock.settle = h.settle
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.runc <- h.p.Run(ctx) }()
	t.Cleanup(func() {
		h.p.Shutdown(true)
		select {
		case <-h.runc:
		case <-time.After(waitLimit):
			t.Errorf("Run did not return after Shutdown(true)")
		}
		cancel()
		goleak.VerifyNone(t)
	})
	h.settle()
	return h, sl
}

func wantSteer(t *testing.T, l *steerLauncher, want ...bool) {
	t.Helper()
	if got := l.lastSteer(); !slices.Equal(got, want) {
		t.Errorf("serving slots %v; want %v (all told: %v)", got, want, l.steers)
	}
}

func TestSteerFollowsReadiness(t *testing.T) {
	h, l := startSteering(t)
	wantSteer(t, l, true, true, true) // none ready: every slot
	h.ready(h.proc(0, 1))
	wantSteer(t, l, true, false, false)
	h.ready(h.proc(1, 1))
	h.ready(h.proc(2, 1))
	wantSteer(t, l, true, true, true)
	h.exit(h.proc(1, 1), Exit{Code: 1}) // a crash: away until the respawn is ready
	wantSteer(t, l, true, false, true)
	h.advance(h.cfg.RespawnDelay)
	h.ready(h.proc(1, 2))
	wantSteer(t, l, true, true, true)
}

func TestScaleDownDrains(t *testing.T) {
	t.Run("stops once the queue is empty", func(t *testing.T) {
		h, l := startSteering(t)
		h.readyAll()
		l.setQueued(2, 5)
		if err := h.p.Scale(h.ctx(), 2); err != nil {
			t.Fatal(err)
		}
		h.settle()
		wantSteer(t, l, true, true, false)
		w := h.proc(2, 1)
		h.advance(50 * time.Millisecond)
		if s := w.getSignals(); len(s) != 0 {
			t.Fatalf("worker signalled %v with 5 connections queued; want it to accept them first", s)
		}
		l.setQueued(2, 0)
		h.advance(drainPoll)
		h.advance(drainPoll)
		if s := w.getSignals(); !slices.Equal(s, []syscall.Signal{h.cfg.StopSignal}) {
			t.Errorf("worker got %v once drained; want the stop signal", s)
		}
		h.exit(w, Exit{Code: 0})
		if st := h.stats(); len(st.Slots) != 2 {
			t.Errorf("%d slots after the scale-down; want 2", len(st.Slots))
		}
	})
	t.Run("a worker that does not accept stops after maxDrain", func(t *testing.T) {
		h, l := startSteering(t)
		h.readyAll()
		l.setQueued(2, 3)
		if err := h.p.Scale(h.ctx(), 2); err != nil {
			t.Fatal(err)
		}
		w := h.proc(2, 1)
		h.advance(maxDrain - drainPoll)
		if len(w.getSignals()) != 0 {
			t.Fatal("stopped before maxDrain")
		}
		h.advance(2 * drainPoll)
		if len(w.getSignals()) != 1 {
			t.Errorf("not stopped after maxDrain: signals %v", w.getSignals())
		}
	})
	t.Run("scaled back while draining, the worker stays", func(t *testing.T) {
		h, l := startSteering(t)
		h.readyAll()
		l.setQueued(2, 1)
		if err := h.p.Scale(h.ctx(), 2); err != nil {
			t.Fatal(err)
		}
		if err := h.p.Scale(h.ctx(), 3); err != nil {
			t.Fatal(err)
		}
		l.setQueued(2, 0)
		h.advance(maxDrain)
		w := h.proc(2, 1)
		if len(w.getSignals()) != 0 || h.slotStats(2).PID != w.pid {
			t.Errorf("the worker of a slot scaled back was stopped (%v)", w.getSignals())
		}
		wantSteer(t, l, true, true, true)
		if n := h.l.launched(2); n != 1 {
			t.Errorf("slot 2 launched %d times; want 1", n)
		}
	})
}
