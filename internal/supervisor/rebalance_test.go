package supervisor

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// viewLauncher is a fakeLauncher that records the cluster index each
// worker is launched with, as the real launcher's environment asks the
// pool for it.
type viewLauncher struct {
	*fakeLauncher
	pool *Pool

	mu    sync.Mutex
	index map[int]int // pid → index
}

func (l *viewLauncher) Launch(slot, gen, count int) (Process, error) {
	index, _, _ := l.pool.LaunchView(slot)
	proc, err := l.fakeLauncher.Launch(slot, gen, count)
	if err == nil {
		l.mu.Lock()
		l.index[proc.Pid()] = index
		l.mu.Unlock()
	}
	return proc, err
}

// indexOf returns the index pid was launched with.
func (l *viewLauncher) indexOf(pid int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.index[pid]
}

// startFollowing is start with a viewLauncher and Follow set to follow.
func startFollowing(t *testing.T, follow Follow, edit func(*Config)) (*harness, *viewLauncher) {
	t.Helper()
	cfg := testConfig()
	cfg.Follow = follow
	if edit != nil {
		edit(&cfg)
	}
	h := &harness{t: t, clock: newFakeClock(), rec: newRecorder(), runc: make(chan error, 1)}
	vl := &viewLauncher{fakeLauncher: newFakeLauncher(cfg.StopSignal), index: map[int]int{}}
	h.l = vl.fakeLauncher
	cfg.Emit = h.rec.emit
	h.cfg = cfg
	h.p = newPool(cfg, vl, h.clock)
	vl.pool = h.p
	h.clock.settle = h.settle
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.runc <- h.p.Run(ctx) }()
	t.Cleanup(func() {
		if !h.ran {
			h.p.Shutdown(true)
			select {
			case err := <-h.runc:
				h.ran, h.runErr = true, err
			case <-time.After(waitLimit):
				t.Errorf("Run did not return after Shutdown(true); events:%s", h.rec.dump())
			}
		}
		cancel()
		goleak.VerifyNone(t)
	})
	h.settle()
	return h, vl
}

// view sets the cluster view and waits until the pool has taken it.
func (h *harness) view(index, threads, total int, epoch int64) {
	h.t.Helper()
	h.p.SetClusterView(ClusterView{Index: index, Threads: threads, Total: total, Epoch: epoch})
	h.settle()
}

// checkUnique fails if, in the pool's events, a worker started with an
// index another worker held: from its start until its exit was handled.
func checkUnique(t *testing.T, h *harness, vl *viewLauncher) {
	t.Helper()
	held := map[int]int{} // index → pid
	for _, e := range h.rec.all(func(Event) bool { return true }) {
		switch e.Type {
		case EventStarted:
			i := vl.indexOf(e.PID)
			if other, ok := held[i]; ok && i >= 0 {
				t.Errorf("pid %d started with index %d while pid %d held it; events:%s", e.PID, i, other, h.rec.dump())
			}
			if i >= 0 {
				held[i] = e.PID
			}
		case EventExited:
			for i, pid := range held {
				if pid == e.PID {
					delete(held, i)
				}
			}
		}
	}
}

// indices returns each slot's cluster index, from Stats.
func (h *harness) indices() string {
	h.t.Helper()
	var s string
	for _, ws := range h.stats().Slots {
		s += fmt.Sprintf("%d ", ws.ClusterIndex)
	}
	return s
}

// converged waits until no rollout runs and the slots hold want.
func (h *harness) converged(want string) {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		h.settle()
		st := h.stats()
		if got := h.indices(); !st.RestartInProgress && got == want {
			return
		}
		for _, ws := range st.Slots { // make whatever started ready
			if ws.PID != 0 && !ws.Ready {
				h.p.Notify(ws.PID, true, false, "")
			}
		}
		for _, p := range h.l.procs {
			if !p.isExited() {
				h.p.Notify(p.pid, true, false, "")
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("indices %q; want %q; events:%s", h.indices(), want, h.rec.dump())
		}
	}
}

// TestRebalanceStopFirst moves two command workers through views with
// FollowStopFirst: workers that lose their index are stopped at once and
// their slots start anew only once they are reaped; a change of total
// alone replaces them one at a time, stopping each first; no worker ever
// starts with an index another holds.
func TestRebalanceStopFirst(t *testing.T) {
	h, vl := startFollowing(t, FollowStopFirst, nil)
	h.readyAll()
	h.l.setExitOnStop(true)
	h.view(0, 2, 2, 10)
	h.converged("0 1 ")

	h.l.setExitOnStop(false)
	h.view(2, 2, 4, 20)
	for i := range 2 {
		old := h.l.find(i, 2)
		if got := old.getSignals(); len(got) != 1 || got[0] != syscall.SIGTERM {
			t.Fatalf("slot %d's worker losing its index got %v; want SIGTERM at once", i, got)
		}
		if h.l.find(i, 3) != nil {
			t.Fatalf("slot %d started anew before its worker exited", i)
		}
	}
	h.exit(h.l.find(0, 2), Exit{})
	h.exit(h.l.find(1, 2), Exit{})
	h.converged("2 3 ")

	h.view(2, 2, 5, 30) // the total alone: one slot at a time, old worker first
	first := h.l.find(0, 3)
	if got := first.getSignals(); len(got) != 1 {
		t.Fatalf("slot 0 got %v; want the stop signal first", got)
	}
	if got := h.l.find(1, 3).getSignals(); len(got) != 0 {
		t.Fatalf("slot 1 got %v while slot 0 is replaced; want nothing yet", got)
	}
	h.exit(first, Exit{})
	h.ready(h.proc(0, 4))
	h.exit(h.l.find(1, 3), Exit{})
	h.converged("2 3 ")
	if ws := h.slotStats(0); ws.Gen != 4 {
		t.Errorf("slot 0 at gen %d; want 4", ws.Gen)
	}
	checkUnique(t, h, vl)
}

// TestRebalanceDuringRollout sets two views while a rolling restart runs:
// neither is dropped, and once the rollout ends every worker is on the
// latest.
func TestRebalanceDuringRollout(t *testing.T) {
	for _, follow := range []Follow{FollowSurge, FollowStopFirst} {
		t.Run(fmt.Sprint(follow), func(t *testing.T) {
			h, vl := startFollowing(t, follow, func(c *Config) { c.Workers = 3 })
			h.readyAll()
			h.l.setExitOnStop(true)
			h.view(0, 3, 3, 10)
			h.converged("0 1 2 ")
			c := h.restart(-1)
			h.view(3, 3, 6, 20)
			h.view(1, 3, 4, 30)
			h.converged("1 2 3 ")
			if err := h.result(c, "Restart"); err != nil && follow == FollowSurge {
				t.Errorf("Restart = %v; want nil", err)
			}
			h.view(0, 3, 3, 40) // during the rebalance of another view
			h.view(2, 3, 5, 50)
			h.converged("2 3 4 ")
			if follow == FollowStopFirst {
				checkUnique(t, h, vl)
			}
		})
	}
}

// TestRestartKeepsIndicesUnique runs a rolling restart with
// FollowStopFirst: a replacement starts beside the worker holding its
// slot's index, so it starts with none, and takes the index once the
// old worker is gone.
func TestRestartKeepsIndicesUnique(t *testing.T) {
	h, vl := startFollowing(t, FollowStopFirst, nil)
	h.readyAll()
	h.l.setExitOnStop(true)
	h.view(4, 2, 6, 10)
	h.converged("4 5 ")
	c := h.restart(-1)
	if i := vl.indexOf(h.l.find(0, 3).pid); i != -1 {
		t.Errorf("the replacement of slot 0 started with index %d beside its holder; want -1", i)
	}
	h.converged("4 5 ")
	if err := h.result(c, "Restart"); err != nil {
		t.Errorf("Restart = %v", err)
	}
	checkUnique(t, h, vl)
}

// TestRelease checks that Release stops the workers whose index a planned
// view takes away, kills them after the grace, returns only once they are
// reaped, and that their slots start again with no index until the next
// view.
func TestRelease(t *testing.T) {
	h, vl := startFollowing(t, FollowStopFirst, nil)
	h.readyAll()
	h.l.setExitOnStop(true)
	h.view(0, 2, 2, 10)
	h.converged("0 1 ")
	h.l.setExitOnStop(false)
	done := make(chan error, 1)
	go func() { done <- h.p.Release(h.ctx(), ClusterView{Index: 0, Threads: 1, Total: 2}, 3*time.Second) }()
	keep, lose := h.l.find(0, 2), h.l.find(1, 2)
	deadline := time.Now().Add(waitLimit)
	for len(lose.getSignals()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the worker losing index 1 was not stopped; events:%s", h.rec.dump())
		}
		h.settle()
	}
	if got := keep.getSignals(); len(got) != 0 {
		t.Errorf("the worker keeping index 0 got %v", got)
	}
	h.notReturned(done, "Release")
	h.advance(3 * time.Second)
	if lose.getKills() != 1 {
		t.Errorf("the worker still running after the grace was killed %d times; want 1", lose.getKills())
	}
	if err := h.result(done, "Release"); err != nil {
		t.Errorf("Release = %v", err)
	}
	if i := vl.indexOf(h.proc(1, 3).pid); i != -1 {
		t.Errorf("slot 1 started again with index %d before the next view; want -1", i)
	}
	h.view(0, 1, 2, 20)
	h.converged("0 -1 ")
	checkUnique(t, h, vl)
}
