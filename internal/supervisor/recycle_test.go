package supervisor

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRecycle(t *testing.T) {
	t.Run("max-requests with jitter, new worker ready first", func(t *testing.T) {
		h := start(t, func(c *Config) {
			c.Workers = 1
			c.MaxRequests, c.MaxRequestsJitter = 100, 10
			c.Rand = func(n int64) int64 { return 7 } // limit 107
		})
		old := h.proc(0, 1)
		h.ready(old)
		h.p.Beat(old.pid, 106, true)
		h.settle()
		if n := h.rec.count(is(EventRecycle)); n != 0 {
			t.Fatalf("%d recycles at 106 requests; want none below the limit of 107", n)
		}
		h.p.Beat(old.pid, 107, true)
		h.settle()
		e := h.rec.waitFor(t, "recycle", is(EventRecycle))
		if !strings.Contains(e.Reason, "107 requests") {
			t.Errorf("recycle reason %q; want the request count", e.Reason)
		}
		repl := h.proc(0, 2)
		if got := old.getSignals(); len(got) != 0 {
			t.Fatalf("old worker got %v before its replacement was ready; want nothing", got)
		}
		h.ready(repl)
		if got := old.getSignals(); len(got) != 1 || got[0] != syscall.SIGTERM {
			t.Errorf("old worker got %v once the replacement was ready; want [SIGTERM]", got)
		}
		h.exit(old, Exit{})
		if st := h.stats(); st.Restarts["recycle"] != 1 || st.TotalCrashes != 0 || st.Slots[0].PID != repl.pid {
			t.Errorf("stats restarts=%v crashes=%d pid=%d; want one recycle, no crash, pid %d", st.Restarts, st.TotalCrashes, st.Slots[0].PID, repl.pid)
		}
	})
	t.Run("one at a time", func(t *testing.T) {
		h := start(t, func(c *Config) { c.StartupDelay = 0; c.MemoryLimit = 1000 })
		h.readyAll()
		a, b := h.proc(0, 1), h.proc(1, 1)
		h.p.ReportUsage(map[int]Usage{a.pid: {RSS: 2000}, b.pid: {RSS: 3000}})
		h.settle()
		if n := h.l.launched(0) + h.l.launched(1); n != 3 {
			t.Fatalf("%d launches after both passed the limit; want 3: one recycle at a time", n)
		}
		first := h.rec.all(is(EventStarted))[2]
		h.ready(h.proc(first.Slot, 2))
		if n := h.l.launched(0) + h.l.launched(1); n != 4 {
			t.Errorf("%d launches after the first recycle; want 4: the second follows", n)
		}
	})
	t.Run("max-age with jitter", func(t *testing.T) {
		h := start(t, func(c *Config) {
			c.Workers = 1
			c.MaxAge, c.MaxAgeJitter = time.Hour, 10*time.Minute
			c.Rand = func(n int64) int64 { return 0 } // the shortest: 50m
		})
		h.ready(h.proc(0, 1))
		h.advance(50*time.Minute - ns)
		if n := h.rec.count(is(EventRecycle)); n != 0 {
			t.Fatalf("recycled before its max age")
		}
		h.advance(ns)
		h.rec.waitFor(t, "recycle", is(EventRecycle))
		if n := h.l.launched(0); n != 2 {
			t.Errorf("%d launches; want the replacement", n)
		}
	})
	t.Run("a failed replacement leaves the old worker serving", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 1; c.MemoryLimit = 1000 })
		old := h.proc(0, 1)
		h.ready(old)
		h.p.ReportUsage(map[int]Usage{old.pid: {RSS: 2000}})
		h.settle()
		h.crash(h.proc(0, 2))
		if got := old.getSignals(); len(got) != 0 {
			t.Errorf("old worker got %v; want nothing, it keeps serving", got)
		}
		if st := h.slotStats(0); st.PID != old.pid || st.Status != StatusActive {
			t.Errorf("slot 0: pid %d %s; want the old pid %d ACTIVE", st.PID, st.Status, old.pid)
		}
		h.p.ReportUsage(map[int]Usage{old.pid: {RSS: 2000}})
		h.settle()
		if n := h.l.launched(0); n != 2 {
			t.Errorf("%d launches right after a failed recycle; want no retry within the crash window", n)
		}
	})
	t.Run("a rollout drops queued recycles", func(t *testing.T) {
		h := start(t, func(c *Config) { c.StartupDelay = 0; c.MemoryLimit = 1000 })
		h.readyAll()
		// Slot 0 first: within one report the order is a map's.
		h.p.ReportUsage(map[int]Usage{h.proc(0, 1).pid: {RSS: 2000}})
		h.p.ReportUsage(map[int]Usage{h.proc(1, 1).pid: {RSS: 2000}})
		h.settle()
		done := h.restart(-1)
		h.ready(h.proc(0, 3)) // gen 2 was the recycle, superseded by the rollout
		h.ready(h.proc(1, 2))
		if err := h.result(done, "rollout"); err != nil {
			t.Fatalf("rollout: %v", err)
		}
		h.settle()
		if n := h.rec.count(func(e Event) bool { return e.Type == EventStarted && e.Reason == "recycle" }); n != 1 {
			t.Errorf("%d recycles started; want only the one running before the rollout", n)
		}
	})
}

func TestHung(t *testing.T) {
	t.Run("replaced, then killed once the replacement is ready", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 1; c.Heartbeat = time.Second })
		old := h.proc(0, 1)
		h.ready(old)
		h.advance(time.Second)
		h.p.Beat(old.pid, 0, false)
		h.advance(2 * time.Second)
		if n := h.rec.count(is(EventHung)); n != 0 {
			t.Fatalf("hung after 2 intervals of silence; want only after more than 2")
		}
		h.advance(time.Second)
		e := h.rec.waitFor(t, "hung", is(EventHung))
		if e.PID != old.pid {
			t.Fatalf("hung pid %d; want %d", e.PID, old.pid)
		}
		repl := h.proc(0, 2)
		if old.getKills() != 0 {
			t.Fatalf("hung worker killed before its replacement was ready")
		}
		h.ready(repl)
		if old.getKills() != 1 {
			t.Errorf("hung worker killed %d times once the replacement was ready; want 1", old.getKills())
		}
		h.settle()
		st := h.stats()
		if st.Restarts["hung"] != 1 || st.TotalCrashes != 0 || st.Slots[0].PID != repl.pid {
			t.Errorf("stats restarts=%v crashes=%d pid=%d; want one hung restart, no crash, pid %d", st.Restarts, st.TotalCrashes, st.Slots[0].PID, repl.pid)
		}
	})
	t.Run("killed after a grace when the replacement is slow", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 1; c.Heartbeat = time.Second })
		old := h.proc(0, 1)
		h.ready(old)
		h.advance(2500*time.Millisecond + hungConfirm(time.Second))
		h.rec.waitFor(t, "hung", is(EventHung))
		h.advance(2 * time.Second)
		if old.getKills() != 1 {
			t.Errorf("hung worker killed %d times 2 intervals after; want 1", old.getKills())
		}
	})
	t.Run("no detection without heartbeats configured", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 1 })
		h.ready(h.proc(0, 1))
		h.advance(time.Hour)
		if n := h.rec.count(is(EventHung)); n != 0 {
			t.Errorf("%d hung events; want none", n)
		}
	})
}

func TestAutoscale(t *testing.T) {
	cfg := func(c *Config) {
		c.Workers, c.MinWorkers, c.MaxWorkers, c.StartupDelay = 2, 1, 3, 0
		c.Autoscale = Autoscale{Enabled: true, UpCPU: 75, DownCPU: 25, UpAfter: 10 * time.Second, DownAfter: time.Minute}
	}
	report := func(h *harness, cpu float64) {
		u := map[int]Usage{}
		for _, s := range h.stats().Slots {
			if s.PID != 0 {
				u[s.PID] = Usage{CPUPercent: cpu}
			}
		}
		h.p.ReportUsage(u)
		h.settle()
	}
	t.Run("up after the window, one step, not past max", func(t *testing.T) {
		h := start(t, cfg)
		h.readyAll()
		report(h, 90)
		h.advance(10*time.Second - ns)
		report(h, 90)
		if n := h.rec.count(is(EventAutoscale)); n != 0 {
			t.Fatalf("scaled before UpAfter")
		}
		h.advance(ns)
		report(h, 90)
		e := h.rec.waitFor(t, "autoscale", is(EventAutoscale))
		if e.Workers != 3 || !strings.Contains(e.Reason, "above 75%") {
			t.Errorf("autoscale %v; want to 3 workers with the reason", e)
		}
		h.ready(h.proc(2, 1))
		h.advance(10 * time.Second)
		report(h, 95)
		if n := h.rec.count(is(EventAutoscale)); n != 1 {
			t.Errorf("%d autoscale steps; want 1: max is 3", n)
		}
	})
	t.Run("down after the window", func(t *testing.T) {
		h := start(t, cfg)
		h.readyAll()
		report(h, 10)
		h.advance(time.Minute)
		report(h, 10)
		e := h.rec.waitFor(t, "autoscale", is(EventAutoscale))
		if e.Workers != 1 || !strings.Contains(e.Reason, "below 25%") {
			t.Errorf("autoscale %v; want to 1 worker", e)
		}
	})
	t.Run("a value inside the band resets the window", func(t *testing.T) {
		h := start(t, cfg)
		h.readyAll()
		report(h, 90)
		h.advance(5 * time.Second)
		report(h, 50)
		h.advance(5 * time.Second)
		report(h, 90)
		if n := h.rec.count(is(EventAutoscale)); n != 0 {
			t.Errorf("scaled although the load dipped into the band")
		}
	})
	t.Run("never during a rollout", func(t *testing.T) {
		h := start(t, func(c *Config) { cfg(c); c.ReadyTimeout = time.Hour })
		h.readyAll()
		done := h.restart(-1)
		report(h, 90)
		h.advance(10 * time.Second)
		report(h, 90)
		if n := h.rec.count(is(EventAutoscale)); n != 0 {
			t.Errorf("scaled during a rollout")
		}
		h.notReturned(done, "rollout")
	})
	queueCfg := func(c *Config) { cfg(c); c.Autoscale.UpQueue = 4 }
	t.Run("up on a sustained listen queue, even at low CPU", func(t *testing.T) {
		h := start(t, queueCfg)
		h.readyAll()
		h.p.QueueSustained(true)
		h.settle()
		report(h, 10)
		h.advance(10*time.Second - ns)
		report(h, 10)
		if n := h.rec.count(is(EventAutoscale)); n != 0 {
			t.Fatalf("scaled before UpAfter")
		}
		h.advance(ns)
		report(h, 10)
		e := h.rec.waitFor(t, "autoscale", is(EventAutoscale))
		if e.Workers != 3 || !strings.Contains(e.Reason, "listen queue") {
			t.Errorf("autoscale %v; want to 3 workers for the listen queue", e)
		}
	})
	t.Run("no scale-down while connections wait", func(t *testing.T) {
		h := start(t, queueCfg)
		h.readyAll()
		h.p.QueueSustained(true)
		h.settle()
		for range 7 {
			report(h, 10)
			h.advance(9 * time.Second)
			h.p.QueueSustained(false) // a dip restarts the queue's window
			h.p.QueueSustained(true)
			h.settle()
		}
		if n := h.rec.count(is(EventAutoscale)); n != 0 {
			t.Errorf("scaled %d times although connections kept waiting under UpAfter each time", n)
		}
	})
	t.Run("queue ignored without UpQueue", func(t *testing.T) {
		h := start(t, cfg)
		h.readyAll()
		h.p.QueueSustained(true)
		h.settle()
		report(h, 50)
		h.advance(time.Minute)
		report(h, 50)
		if n := h.rec.count(is(EventAutoscale)); n != 0 {
			t.Errorf("scaled on the queue with UpQueue 0")
		}
	})
}

func TestClusterView(t *testing.T) {
	h := start(t, func(c *Config) { c.Workers = 3 })
	h.p.SetClusterView(ClusterView{Instance: "a", Index: 4, Threads: 2, Total: 9, Epoch: 17})
	st := h.stats()
	if st.Cluster == nil || st.Cluster.Epoch != 17 || st.Cluster.Total != 9 {
		t.Fatalf("stats cluster %+v; want the view", st.Cluster)
	}
	for i, want := range []int{4, 5, -1} { // slot 2 is beyond the 2 threads
		if got := st.Slots[i].ClusterIndex; got != want {
			t.Errorf("slot %d cluster index %d; want %d", i, got, want)
		}
	}
	h.p.SetClusterView(ClusterView{Instance: "a", Index: -1, Threads: 3, Total: 9, Epoch: 18})
	if got := h.stats().Slots[0].ClusterIndex; got != -1 {
		t.Errorf("fenced node: slot 0 index %d; want -1", got)
	}
}
