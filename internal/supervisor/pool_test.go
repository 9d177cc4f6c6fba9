package supervisor

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

const ns = time.Nanosecond

func TestStart(t *testing.T) {
	t.Run("slots start in order with StartupDelay", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 3; c.StartupDelay = 2 * time.Second })
		want := []launchCall{{0, 1, 3}}
		if got := h.l.getLaunches(); !slices.Equal(got, want) {
			t.Fatalf("launches at start = %v; want %v", got, want)
		}
		h.advance(2*time.Second - ns)
		if got := h.l.getLaunches(); !slices.Equal(got, want) {
			t.Fatalf("launches just before StartupDelay = %v; want %v", got, want)
		}
		h.advance(ns)
		want = append(want, launchCall{1, 1, 3})
		if got := h.l.getLaunches(); !slices.Equal(got, want) {
			t.Fatalf("launches after StartupDelay = %v; want %v", got, want)
		}
		h.advance(2 * time.Second)
		want = append(want, launchCall{2, 1, 3})
		if got := h.l.getLaunches(); !slices.Equal(got, want) {
			t.Fatalf("launches after 2×StartupDelay = %v; want %v", got, want)
		}
		if got, want := h.l.getCalls(), []string{"resize 3", "launch 0 1 3", "launch 1 1 3", "launch 2 1 3"}; !slices.Equal(got, want) {
			t.Errorf("launcher calls = %q; want %q", got, want)
		}
		started := h.rec.all(is(EventStarted))
		if len(started) != 3 {
			t.Fatalf("got %d started events; want 3", len(started))
		}
		for i, e := range started {
			if e.Slot != i || e.Gen != 1 || e.Reason != "start" || e.PID != h.proc(i, 1).pid {
				t.Errorf("started event %d = %v; want slot %d gen 1 reason start", i, e, i)
			}
			if want := t0.Add(time.Duration(i) * 2 * time.Second); !e.Time.Equal(want) {
				t.Errorf("slot %d started at +%s; want +%s", i, e.Time.Sub(t0), want.Sub(t0))
			}
		}
		st := h.stats()
		if st.Workers != 3 || st.Starting != 3 || st.Active != 0 || st.Spawned != 3 || st.TotalRestarts != 0 {
			t.Errorf("stats = %+v; want 3 workers, 3 starting, spawned 3, no restarts", st)
		}
		for i, ws := range st.Slots {
			if ws.Gen != 1 || ws.Status != StatusStarting {
				t.Errorf("slot %d: gen %d status %s; want gen 1 STARTING", i, ws.Gen, ws.Status)
			}
		}
	})
}

func TestReady(t *testing.T) {
	t.Run("ready by notify", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 1 })
		p := h.proc(0, 1)
		h.advance(h.cfg.ReadyDelay) // ReadyDelay does not apply
		if got := h.slotStats(0).Status; got != StatusStarting {
			t.Fatalf("status before READY=1 = %s; want STARTING", got)
		}
		h.p.Notify(99999, true, false, "") // an unknown process
		h.settle()
		if got := h.slotStats(0).Status; got != StatusStarting {
			t.Fatalf("status after READY=1 of an unknown pid = %s; want STARTING", got)
		}
		h.ready(p)
		e := h.rec.waitFor(t, "ready", is(EventReady))
		if e.Slot != 0 || e.PID != p.pid || e.Gen != 1 {
			t.Errorf("ready event = %v; want slot 0 pid %d gen 1", e, p.pid)
		}
		st := h.stats()
		if st.Active != 1 || st.Starting != 0 || !st.Slots[0].Ready || st.Slots[0].Status != StatusActive {
			t.Errorf("stats = %+v; want slot 0 ready and ACTIVE", st)
		}
		h.advance(time.Minute) // no ready timeout once ready
		if p.getKills() != 0 || h.rec.count(is(EventReadyTimeout)) != 0 {
			t.Errorf("a ready worker was killed for not being ready")
		}
	})

	t.Run("ready by notify of a worker's child", func(t *testing.T) {
		const child = 50000
		h := start(t, func(c *Config) {
			c.Workers = 1
			c.Ancestor = func(pid int, known func(int) bool) (int, bool) {
				if pid == child && known(1001) {
					return 1001, true
				}
				return 0, false
			}
		})
		p := h.proc(0, 1)
		if p.pid != 1001 {
			t.Fatalf("first pid = %d; want 1001", p.pid)
		}
		h.p.Notify(child, true, false, "from child")
		h.settle()
		h.rec.waitFor(t, "ready", isPID(EventReady, p.pid))
		if ws := h.slotStats(0); !ws.Ready || ws.StatusText != "from child" {
			t.Errorf("slot 0 = %+v; want ready with status text %q", ws, "from child")
		}
	})

	t.Run("ready by delay", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 1; c.ReadyByNotify = false; c.ReadyDelay = 3 * time.Second })
		p := h.proc(0, 1)
		h.p.Notify(p.pid, true, false, "") // ignored without ReadyByNotify
		h.advance(3*time.Second - ns)
		if got := h.slotStats(0).Status; got != StatusStarting {
			t.Fatalf("status before ReadyDelay = %s; want STARTING", got)
		}
		h.advance(ns)
		h.rec.waitFor(t, "ready", isPID(EventReady, p.pid))
		if ws := h.slotStats(0); ws.Status != StatusActive || !ws.Ready {
			t.Errorf("slot 0 after ReadyDelay = %+v; want ACTIVE and ready", ws)
		}
	})

	t.Run("ready timeout kills the worker and counts a crash", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 1 })
		p := h.proc(0, 1)
		h.advance(h.cfg.ReadyTimeout - ns)
		if p.getKills() != 0 {
			t.Fatalf("killed before ReadyTimeout")
		}
		h.advance(ns)
		h.rec.waitFor(t, "ready timeout", isPID(EventReadyTimeout, p.pid))
		if got := p.getKills(); got != 1 {
			t.Errorf("kills = %d; want 1", got)
		}
		e := h.rec.waitFor(t, "exited", isPID(EventExited, p.pid))
		if !e.Crash || e.Reason != "not ready in time" || e.Signal != "SIGKILL" || e.Status != -1 {
			t.Errorf("exit = %+v; want a crash, reason %q, killed by SIGKILL", e, "not ready in time")
		}
		rs := h.rec.waitFor(t, "respawn scheduled", isGen(EventRespawnScheduled, 0, 1))
		if rs.Delay != h.cfg.RespawnDelay {
			t.Errorf("respawn delay = %s; want %s", rs.Delay, h.cfg.RespawnDelay)
		}
		st := h.stats()
		if st.TotalCrashes != 1 || st.Slots[0].Crashes != 1 || st.Slots[0].Status != StatusRespawning {
			t.Errorf("stats = %+v; want 1 crash, slot 0 RESPAWNING", st)
		}
	})
}

func TestReadyTimeoutWhileStopping(t *testing.T) {
	h := start(t, func(c *Config) { c.Workers = 1 })
	p := h.proc(0, 1)
	block := make(chan struct{})
	if err := h.p.post(func() { <-block }); err != nil { // hold the pool goroutine
		t.Fatal(err)
	}
	h.p.Shutdown(false) // queued: stop the worker gracefully
	h.clock.settle = nil
	h.clock.Advance(h.cfg.ReadyTimeout) // the ready timeout fires; its check is queued after the stop
	h.clock.settle = h.settle
	close(block)
	h.settle()
	if got, want := p.getSignals(), []syscall.Signal{syscall.SIGTERM}; !slices.Equal(got, want) {
		t.Errorf("signals = %v; want %v", got, want)
	}
	if got := p.getKills(); got != 0 {
		t.Errorf("kills = %d right after the stop signal; want 0 before ShutdownTimeout", got)
	}
	h.advance(h.cfg.ShutdownTimeout)
	if err := h.runResult(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	if e := h.rec.waitFor(t, "exited", isPID(EventExited, p.pid)); e.Crash || e.Reason != "shutdown" {
		t.Errorf("exit = %+v; want no crash, reason shutdown", e)
	}
}

func TestRespawnDelay(t *testing.T) {
	for _, tc := range []struct {
		base        time.Duration
		consecutive int
		want        time.Duration
	}{
		{time.Second, 0, time.Second},
		{time.Second, 1, time.Second},
		{time.Second, 2, 1500 * time.Millisecond},
		{time.Second, 3, 2250 * time.Millisecond},
		{time.Second, 4, 3375 * time.Millisecond},
		{time.Second, 7, 11390625 * time.Microsecond},
		{time.Second, 8, 15 * time.Second},
		{time.Second, 100, 15 * time.Second},
		{100 * time.Millisecond, 3, 225 * time.Millisecond},
		{20 * time.Second, 1, 15 * time.Second},
		{0, 5, 0},
	} {
		if got := respawnDelay(tc.base, tc.consecutive); got != tc.want {
			t.Errorf("respawnDelay(%s, %d) = %s; want %s", tc.base, tc.consecutive, got, tc.want)
		}
	}
}

func TestRespawn(t *testing.T) {
	t.Run("backoff grows 1.5x per consecutive crash up to 15s", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 1; c.MaxCrashes = 100; c.ReadyTimeout = time.Hour })
		wants := []time.Duration{
			time.Second, 1500 * time.Millisecond, 2250 * time.Millisecond, 3375 * time.Millisecond,
			5062500 * time.Microsecond, 7593750 * time.Microsecond, 11390625 * time.Microsecond,
			15 * time.Second, 15 * time.Second,
		}
		for i, want := range wants {
			gen := i + 1
			e := h.crash(h.proc(0, gen))
			if !e.Crash || e.Reason != "crash" {
				t.Fatalf("exit of gen %d = %+v; want a crash", gen, e)
			}
			rs := h.rec.waitFor(t, "respawn scheduled", isGen(EventRespawnScheduled, 0, gen))
			if rs.Delay != want {
				t.Errorf("crash %d: respawn delay = %s; want %s", gen, rs.Delay, want)
			}
			h.advance(want - ns)
			if h.l.find(0, gen+1) != nil {
				t.Fatalf("crash %d: respawned before %s", gen, want)
			}
			h.advance(ns)
			if s := h.rec.waitFor(t, "started", isGen(EventStarted, 0, gen+1)); s.Reason != "respawn" {
				t.Errorf("start of gen %d: reason %q; want respawn", gen+1, s.Reason)
			}
		}
		st := h.stats()
		if n := uint64(len(wants)); st.TotalCrashes != n || st.TotalRestarts != n || st.Spawned != n+1 {
			t.Errorf("stats = %+v; want %d crashes, %d restarts, %d spawned", st, n, n, n+1)
		}
	})

	for _, tc := range []struct {
		name  string
		run   time.Duration
		delay time.Duration
	}{
		{"consecutive count resets after 30s ready", healthyRunTime, time.Second},
		{"consecutive count kept when ready less than 30s", healthyRunTime - ns, 2250 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, func(c *Config) { c.Workers = 1; c.MaxCrashes = 100; c.ReadyTimeout = time.Hour })
			h.crash(h.proc(0, 1))
			h.advance(time.Second)
			h.crash(h.proc(0, 2))
			h.advance(1500 * time.Millisecond)
			p := h.proc(0, 3)
			h.ready(p)
			h.advance(tc.run)
			h.crash(p)
			rs := h.rec.waitFor(t, "respawn scheduled", isGen(EventRespawnScheduled, 0, 3))
			if rs.Delay != tc.delay {
				t.Errorf("respawn delay after running %s ready = %s; want %s", tc.run, rs.Delay, tc.delay)
			}
		})
	}
}

func TestCrashProtection(t *testing.T) {
	t.Run("more than MaxCrashes within CrashWindow disables the slot", func(t *testing.T) {
		h := start(t, func(c *Config) { c.MaxCrashes = 3; c.CrashWindow = time.Minute })
		h.ready(h.proc(1, 1))
		for gen, d := range []time.Duration{time.Second, 1500 * time.Millisecond, 2250 * time.Millisecond} {
			h.crash(h.proc(0, gen+1))
			h.advance(d)
		}
		if n := h.rec.count(is(EventDisabled)); n != 0 {
			t.Fatalf("disabled after %d crashes; want not yet", h.cfg.MaxCrashes)
		}
		h.crash(h.proc(0, 4))
		d := h.rec.waitFor(t, "disabled", isSlot(EventDisabled, 0))
		if want := "4 crashes within 1m0s"; d.Reason != want {
			t.Errorf("disabled reason = %q; want %q", d.Reason, want)
		}
		if n := h.rec.count(isSlot(EventRespawnScheduled, 0)); n != 3 {
			t.Errorf("respawns scheduled = %d; want 3 (none after the disabling crash)", n)
		}
		h.advance(time.Minute)
		if n := h.l.launched(0); n != 4 {
			t.Errorf("slot 0 launched %d times; want 4 (no respawn when disabled)", n)
		}
		st := h.stats()
		ws := st.Slots[0]
		if ws.Status != StatusDisabled || !ws.RespawnDisabled || ws.PID != 0 || ws.CrashCount != 4 || ws.Crashes != 4 {
			t.Errorf("slot 0 = %+v; want DISABLED, 4 crashes in the window", ws)
		}
		if st.Disabled != 1 || st.Active != 1 {
			t.Errorf("stats disabled %d active %d; want 1 and 1", st.Disabled, st.Active)
		}
		h.running()
	})

	t.Run("crashes spread wider than the window do not disable", func(t *testing.T) {
		h := start(t, func(c *Config) {
			c.MaxCrashes = 2
			c.CrashWindow = 10 * time.Second
			c.ReadyTimeout = time.Hour
		})
		h.ready(h.proc(1, 1))
		for gen := 1; gen <= 6; gen++ {
			h.ready(h.proc(0, gen)) // else the never-ready rule applies
			h.advance(5 * time.Second)
			h.crash(h.proc(0, gen))
			if ws := h.slotStats(0); ws.CrashCount > 2 || ws.Status == StatusDisabled {
				t.Fatalf("after crash %d: slot 0 = %+v; want at most 2 crashes in the window", gen, ws)
			}
			h.advance(h.rec.waitFor(t, "respawn scheduled", isGen(EventRespawnScheduled, 0, gen)).Delay)
		}
		if n := h.rec.count(is(EventDisabled)); n != 0 {
			t.Errorf("got %d disabled events; want none", n)
		}
		if ws := h.slotStats(0); ws.Crashes != 6 || ws.Gen != 7 {
			t.Errorf("slot 0 = %+v; want 6 crashes and gen 7", ws)
		}
	})
}

func TestHopeless(t *testing.T) {
	t.Run("every slot disabled before any worker was ready", func(t *testing.T) {
		h := start(t, func(c *Config) { c.MaxCrashes = 0 })
		h.crash(h.proc(0, 1))
		h.rec.waitFor(t, "disabled", isSlot(EventDisabled, 0))
		h.running()
		h.crash(h.proc(1, 1))
		err := h.runResult()
		var nr *NoWorkerReadyError
		if !errors.As(err, &nr) {
			t.Fatalf("Run = %v; want a *NoWorkerReadyError", err)
		}
		if want := "every slot is disabled after crashing too fast"; nr.Reason != want {
			t.Errorf("reason = %q; want %q", nr.Reason, want)
		}
		h.rec.waitFor(t, "shutdown", is(EventShutdown))
	})

	t.Run("a worker was ready once: Run keeps running", func(t *testing.T) {
		h := start(t, func(c *Config) { c.MaxCrashes = 0 })
		h.ready(h.proc(0, 1))
		h.crash(h.proc(0, 1))
		h.crash(h.proc(1, 1))
		h.advance(time.Minute)
		h.running()
		if st := h.stats(); st.Disabled != 2 || st.Active != 0 {
			t.Errorf("stats disabled %d active %d; want 2 and 0", st.Disabled, st.Active)
		}
	})

	t.Run("respawn off: a crash leaves the slot CRASHED", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Respawn = false; c.ReadyTimeout = time.Hour })
		h.crash(h.proc(0, 1))
		h.advance(time.Minute)
		if n := h.l.launched(0); n != 1 {
			t.Errorf("slot 0 launched %d times; want 1", n)
		}
		if n := h.rec.count(is(EventRespawnScheduled)); n != 0 {
			t.Errorf("got %d respawns scheduled; want none", n)
		}
		st := h.stats()
		if st.Slots[0].Status != StatusCrashed || st.Crashed != 1 {
			t.Errorf("slot 0 status %s, crashed %d; want CRASHED, 1", st.Slots[0].Status, st.Crashed)
		}
		h.running()
	})

	t.Run("respawn off: every worker crashed before ready", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Respawn = false })
		h.crash(h.proc(0, 1))
		h.running()
		h.crash(h.proc(1, 1))
		err := h.runResult()
		var nr *NoWorkerReadyError
		if !errors.As(err, &nr) {
			t.Fatalf("Run = %v; want a *NoWorkerReadyError", err)
		}
		if want := "every worker exited and respawn is off"; nr.Reason != want {
			t.Errorf("reason = %q; want %q", nr.Reason, want)
		}
	})
}

func TestRollingRestart(t *testing.T) {
	t.Run("max surge 1: old worker stopped only after its replacement is ready", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 3 })
		h.readyAll()
		h.l.setExitOnStop(true)
		c := h.restart(-1)
		if !h.stats().RestartInProgress {
			t.Errorf("RestartInProgress = false during a rollout")
		}
		for i := range 3 {
			old, nw := h.proc(i, 1), h.proc(i, 2)
			if e := h.rec.waitFor(t, "started", isPID(EventStarted, nw.pid)); e.Reason != "rollout" {
				t.Errorf("slot %d: start reason %q; want rollout", i, e.Reason)
			}
			for j := i + 1; j < 3; j++ {
				if h.l.find(j, 2) != nil {
					t.Fatalf("slot %d replaced while slot %d's replacement is not ready", j, i)
				}
			}
			if got := old.getSignals(); len(got) != 0 {
				t.Fatalf("slot %d: old worker got %v before its replacement was ready", i, got)
			}
			if ws := h.slotStats(i); ws.PID != old.pid || ws.Status != StatusActive {
				t.Errorf("slot %d while replacing: pid %d status %s; want old pid %d ACTIVE", i, ws.PID, ws.Status, old.pid)
			}
			h.notReturned(c, "Restart")
			h.ready(nw)
			if got, want := old.getSignals(), []syscall.Signal{syscall.SIGTERM}; !slices.Equal(got, want) {
				t.Errorf("slot %d: old worker got %v; want %v", i, got, want)
			}
			if e := h.rec.waitFor(t, "exited", isPID(EventExited, old.pid)); e.Crash || e.Reason != "rollout" {
				t.Errorf("slot %d: old worker exit = %+v; want no crash, reason rollout", i, e)
			}
			if ws := h.slotStats(i); ws.PID != nw.pid || ws.Gen != 2 || ws.Status != StatusActive {
				t.Errorf("slot %d after: %+v; want pid %d gen 2 ACTIVE", i, ws, nw.pid)
			}
		}
		if err := h.result(c, "Restart"); err != nil {
			t.Fatalf("Restart = %v; want nil", err)
		}
		h.rec.waitFor(t, "rollout finished", is(EventRolloutFinished))
		st := h.stats()
		if st.RolloutsDone != 1 || st.RestartInProgress || st.TotalRestarts != 3 || st.Spawned != 6 || st.TotalCrashes != 0 || st.Active != 3 {
			t.Errorf("stats = %+v; want 1 rollout done, 3 restarts, 6 spawned, 0 crashes, 3 active", st)
		}
	})

	t.Run("max surge 2: two replacements in flight", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 3; c.MaxSurge = 2 })
		h.readyAll()
		h.l.setExitOnStop(true)
		c := h.restart(-1)
		n0, n1 := h.proc(0, 2), h.proc(1, 2)
		if h.l.find(2, 2) != nil {
			t.Fatalf("three replacements in flight with MaxSurge 2")
		}
		h.ready(n1)
		if got := h.proc(0, 1).getSignals(); len(got) != 0 {
			t.Errorf("old worker of slot 0 got %v; want nothing yet", got)
		}
		if got := h.proc(1, 1).getSignals(); len(got) != 1 {
			t.Errorf("old worker of slot 1 got %v; want the stop signal", got)
		}
		n2 := h.proc(2, 2) // started once slot 1 was done
		h.notReturned(c, "Restart")
		h.ready(n0)
		h.ready(n2)
		if err := h.result(c, "Restart"); err != nil {
			t.Fatalf("Restart = %v; want nil", err)
		}
		for i := range 3 {
			if ws := h.slotStats(i); ws.Gen != 2 || ws.Status != StatusActive {
				t.Errorf("slot %d = %+v; want gen 2 ACTIVE", i, ws)
			}
		}
	})

	for _, tc := range []struct {
		name string
		fail func(h *harness, p *fakeProc)
	}{
		{"a replacement that exits before ready fails the rollout", func(h *harness, p *fakeProc) { h.crash(p) }},
		{"a replacement not ready in time fails the rollout", func(h *harness, p *fakeProc) { h.advance(h.cfg.ReadyTimeout) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, func(c *Config) { c.Workers = 3 })
			h.readyAll()
			h.l.setExitOnStop(true)
			c := h.restart(-1)
			h.ready(h.proc(0, 2))
			tc.fail(h, h.proc(1, 2))
			err := h.result(c, "Restart")
			if err == nil || !strings.Contains(err.Error(), "slot 1") {
				t.Fatalf("Restart = %v; want an error about slot 1", err)
			}
			if e := h.rec.waitFor(t, "rollout failed", is(EventRolloutFailed)); e.Err == nil {
				t.Errorf("rollout failed event without Err")
			}
			old1 := h.proc(1, 1)
			if got := old1.getSignals(); len(got) != 0 || old1.isExited() {
				t.Errorf("old worker of slot 1: signals %v, exited %v; want it left running", got, old1.isExited())
			}
			if ws := h.slotStats(1); ws.PID != old1.pid || ws.Gen != 1 || ws.Status != StatusActive {
				t.Errorf("slot 1 = %+v; want old pid %d gen 1 ACTIVE", ws, old1.pid)
			}
			h.advance(time.Minute)
			if p := h.l.find(2, 2); p != nil {
				t.Errorf("slot 2 was replaced after the rollout failed")
			}
			if got := h.proc(2, 1).getSignals(); len(got) != 0 {
				t.Errorf("slot 2's worker got %v; want nothing", got)
			}
			if h.l.find(1, 3) != nil || h.rec.count(is(EventRespawnScheduled)) != 0 {
				t.Errorf("slot 1 respawned although its old worker still serves")
			}
			if st := h.stats(); st.RolloutsKO != 1 || st.RolloutsDone != 0 || st.RestartInProgress {
				t.Errorf("stats = %+v; want 1 failed rollout and none in progress", st)
			}
		})
	}

	t.Run("a replacement that fails to launch fails the rollout", func(t *testing.T) {
		h := start(t, func(c *Config) { c.MaxCrashes = 0 })
		h.readyAll()
		h.l.setExitOnStop(true)
		boom := errors.New("boom")
		h.l.setLaunchErr(1, boom)
		c := h.restart(-1)
		h.ready(h.proc(0, 2))
		if err := h.result(c, "Restart"); !errors.Is(err, boom) {
			t.Errorf("Restart = %v; want an error wrapping the launch error", err)
		}
		old := h.proc(1, 1)
		if ws := h.slotStats(1); ws.PID != old.pid || ws.Status != StatusActive || ws.RespawnDisabled {
			t.Errorf("slot 1 = %+v; want old pid %d still ACTIVE and enabled", ws, old.pid)
		}
	})

	t.Run("a second restart during a rollout is refused", func(t *testing.T) {
		h := start(t, nil)
		h.readyAll()
		h.l.setExitOnStop(true)
		c := h.restart(-1)
		if err := h.p.Restart(h.ctx(), -1); !errors.Is(err, ErrRolloutInProgress) {
			t.Errorf("second Restart = %v; want ErrRolloutInProgress", err)
		}
		if err := h.p.Restart(h.ctx(), 1); !errors.Is(err, ErrRolloutInProgress) {
			t.Errorf("second Restart of slot 1 = %v; want ErrRolloutInProgress", err)
		}
		h.ready(h.proc(0, 2))
		h.ready(h.proc(1, 2))
		if err := h.result(c, "Restart"); err != nil {
			t.Fatalf("first Restart = %v; want nil", err)
		}
		if n := h.rec.count(is(EventRolloutStarted)); n != 1 {
			t.Errorf("rollouts started = %d; want 1", n)
		}
	})

	t.Run("a restart enables a DISABLED slot again", func(t *testing.T) {
		h := start(t, func(c *Config) { c.MaxCrashes = 0 })
		h.ready(h.proc(1, 1))
		h.crash(h.proc(0, 1))
		if ws := h.slotStats(0); ws.Status != StatusDisabled {
			t.Fatalf("slot 0 status = %s; want DISABLED", ws.Status)
		}
		c := h.restart(0)
		p := h.proc(0, 2)
		if ws := h.slotStats(0); ws.Status != StatusStarting || ws.RespawnDisabled || ws.CrashCount != 0 || ws.PID != p.pid {
			t.Errorf("slot 0 after restart = %+v; want STARTING pid %d, enabled, no crashes in window", ws, p.pid)
		}
		h.ready(p)
		if err := h.result(c, "Restart"); err != nil {
			t.Fatalf("Restart = %v; want nil", err)
		}
		if ws := h.slotStats(0); ws.Status != StatusActive {
			t.Errorf("slot 0 status = %s; want ACTIVE", ws.Status)
		}
		if h.l.find(1, 2) != nil {
			t.Errorf("slot 1 restarted by Restart(0)")
		}
	})

	t.Run("restart of one slot", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 3 })
		h.readyAll()
		h.l.setExitOnStop(true)
		c := h.restart(1)
		if e := h.rec.waitFor(t, "rollout started", is(EventRolloutStarted)); e.Slot != 1 || e.Workers != 1 {
			t.Errorf("rollout started = %+v; want slot 1, 1 worker", e)
		}
		h.ready(h.proc(1, 2))
		if err := h.result(c, "Restart"); err != nil {
			t.Fatalf("Restart(1) = %v; want nil", err)
		}
		for _, i := range []int{0, 2} {
			if h.l.find(i, 2) != nil || len(h.proc(i, 1).getSignals()) != 0 {
				t.Errorf("slot %d touched by Restart(1)", i)
			}
		}
		if got := h.proc(1, 1).getSignals(); len(got) != 1 {
			t.Errorf("old worker of slot 1 got %v; want the stop signal", got)
		}
		var se *SlotError
		if err := h.p.Restart(h.ctx(), 3); !errors.As(err, &se) || se.Slot != 3 {
			t.Errorf("Restart(3) = %v; want *SlotError for slot 3", err)
		}
	})
}

func TestScale(t *testing.T) {
	t.Run("up starts new slots after Resize", func(t *testing.T) {
		h := start(t, nil)
		h.readyAll()
		if err := h.p.Scale(h.ctx(), 4); err != nil {
			t.Fatalf("Scale(4) = %v", err)
		}
		h.settle()
		calls := h.l.getCalls()
		r := slices.Index(calls, "resize 4")
		if r < 0 {
			t.Fatalf("launcher calls %q; want resize 4", calls)
		}
		for _, slot := range []int{2, 3} {
			i := slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, "launch "+string(rune('0'+slot))+" 1 ") })
			if i < r {
				t.Errorf("launcher calls %q: slot %d not launched after resize 4", calls, slot)
			}
			if e := h.rec.waitFor(t, "started", isGen(EventStarted, slot, 1)); e.Reason != "scale" {
				t.Errorf("slot %d start reason %q; want scale", slot, e.Reason)
			}
		}
		if e := h.rec.waitFor(t, "scaled", is(EventScaled)); e.Workers != 4 {
			t.Errorf("scaled event workers = %d; want 4", e.Workers)
		}
		if st := h.stats(); st.Workers != 4 || len(st.Slots) != 4 || st.Active != 2 || st.Starting != 2 {
			t.Errorf("stats = %+v; want 4 workers, 2 active, 2 starting", st)
		}
	})

	t.Run("up tells new workers the new count", func(t *testing.T) {
		h := start(t, nil)
		if err := h.p.Scale(h.ctx(), 4); err != nil {
			t.Fatalf("Scale(4) = %v", err)
		}
		got := h.l.getLaunches()[2:]
		if want := []launchCall{{2, 1, 4}, {3, 1, 4}}; !slices.Equal(got, want) {
			t.Errorf("launches after Scale(4) = %v; want %v", got, want)
		}
	})

	t.Run("down stops the highest slots and Resizes after they exit", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 4 })
		h.readyAll()
		if err := h.p.Scale(h.ctx(), 2); err != nil {
			t.Fatalf("Scale(2) = %v", err)
		}
		h.settle()
		for i := range 4 {
			got := h.proc(i, 1).getSignals()
			if want := i >= 2; (len(got) == 1 && got[0] == syscall.SIGTERM) != want || len(got) > 1 {
				t.Errorf("slot %d got signals %v; want stop signal %v", i, got, want)
			}
		}
		if e := h.rec.waitFor(t, "scaled", is(EventScaled)); e.Workers != 2 {
			t.Errorf("scaled event workers = %d; want 2", e.Workers)
		}
		st := h.stats()
		if st.Workers != 2 || len(st.Slots) != 4 || st.Slots[2].Status != StatusStopping || st.Slots[3].Status != StatusStopping {
			t.Errorf("stats = %+v; want 2 workers, slots 2 and 3 STOPPING", st)
		}
		if got, want := h.l.getResizes(), []int{4}; !slices.Equal(got, want) {
			t.Errorf("resizes before the workers exit = %v; want %v", got, want)
		}
		if e := h.exit(h.proc(2, 1), Exit{}); e.Crash || e.Reason != "scale" {
			t.Errorf("exit of slot 2 = %+v; want no crash, reason scale", e)
		}
		if got, want := h.l.getResizes(), []int{4}; !slices.Equal(got, want) {
			t.Errorf("resizes while slot 3 still runs = %v; want %v", got, want)
		}
		h.exit(h.proc(3, 1), Exit{})
		if got, want := h.l.getResizes(), []int{4, 2}; !slices.Equal(got, want) {
			t.Errorf("resizes = %v; want %v", got, want)
		}
		h.advance(time.Minute)
		if st := h.stats(); st.Workers != 2 || len(st.Slots) != 2 || st.Active != 2 || st.TotalCrashes != 0 || st.Spawned != 4 {
			t.Errorf("stats = %+v; want 2 active slots, no crash, nothing respawned", st)
		}
	})

	t.Run("down kills a worker that ignores the stop signal", func(t *testing.T) {
		h := start(t, nil)
		h.readyAll()
		if err := h.p.Scale(h.ctx(), 1); err != nil {
			t.Fatalf("Scale(1) = %v", err)
		}
		p := h.proc(1, 1)
		h.advance(h.cfg.ShutdownTimeout - ns)
		if p.getKills() != 0 {
			t.Fatalf("killed before ShutdownTimeout")
		}
		h.advance(ns)
		if p.getKills() != 1 {
			t.Fatalf("not killed after ShutdownTimeout")
		}
		if got, want := h.l.getResizes(), []int{2, 1}; !slices.Equal(got, want) {
			t.Errorf("resizes = %v; want %v", got, want)
		}
	})

	t.Run("out of range is refused and changes nothing", func(t *testing.T) {
		h := start(t, nil)
		calls := h.l.getCalls()
		for _, n := range []int{5, 0, -1} {
			var re *RangeError
			err := h.p.Scale(h.ctx(), n)
			if !errors.As(err, &re) || *re != (RangeError{Want: n, Min: 1, Max: 4}) {
				t.Errorf("Scale(%d) = %v; want *RangeError{%d 1 4}", n, err, n)
			}
		}
		h.settle()
		if got := h.l.getCalls(); !slices.Equal(got, calls) {
			t.Errorf("launcher calls = %q; want unchanged %q", got, calls)
		}
		if n := h.rec.count(is(EventScaled)); n != 0 {
			t.Errorf("got %d scaled events; want none", n)
		}
		if st := h.stats(); st.Workers != 2 || len(st.Slots) != 2 {
			t.Errorf("workers = %d; want 2", st.Workers)
		}
	})

	t.Run("ScaleBy clamps to the bounds", func(t *testing.T) {
		h := start(t, nil)
		h.readyAll()
		h.l.setExitOnStop(true)
		for _, tc := range []struct{ delta, want int }{{10, 4}, {-10, 1}, {0, 1}, {1, 2}} {
			n, err := h.p.ScaleBy(h.ctx(), tc.delta)
			if err != nil || n != tc.want {
				t.Errorf("ScaleBy(%d) = %d, %v; want %d, nil", tc.delta, n, err, tc.want)
			}
			h.settle()
			if st := h.stats(); st.Workers != tc.want {
				t.Errorf("after ScaleBy(%d): workers = %d; want %d", tc.delta, st.Workers, tc.want)
			}
		}
	})

	t.Run("scaled back up before the removed worker exits", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 3 })
		h.readyAll()
		if err := h.p.Scale(h.ctx(), 2); err != nil {
			t.Fatalf("Scale(2) = %v", err)
		}
		if err := h.p.Scale(h.ctx(), 3); err != nil {
			t.Fatalf("Scale(3) = %v", err)
		}
		if h.l.find(2, 2) != nil {
			t.Fatalf("slot 2 started again while its old worker runs")
		}
		h.exit(h.proc(2, 1), Exit{})
		if e := h.rec.waitFor(t, "started", isGen(EventStarted, 2, 2)); e.Reason != "respawn" {
			t.Errorf("slot 2 gen 2 start reason %q; want respawn", e.Reason)
		}
		if got, want := h.l.getResizes(), []int{3}; !slices.Equal(got, want) {
			t.Errorf("resizes = %v; want %v", got, want)
		}
	})
}

func TestShutdown(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(h *harness)
	}{
		{"context cancel stops gracefully, then kills", func(h *harness) { h.cancel() }},
		{"Shutdown(false) stops gracefully, then kills", func(h *harness) { h.p.Shutdown(false) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, nil)
			h.readyAll()
			tc.stop(h)
			h.rec.waitN(func(e Event) bool { return e.Type == EventStopping && e.Reason == "shutdown" }, 2, nil)
			h.settle()
			p0, p1 := h.proc(0, 1), h.proc(1, 1)
			for _, p := range []*fakeProc{p0, p1} {
				if got, want := p.getSignals(), []syscall.Signal{syscall.SIGTERM}; !slices.Equal(got, want) {
					t.Errorf("pid %d got %v; want %v", p.pid, got, want)
				}
			}
			if !h.stats().ShutdownRequested {
				t.Errorf("ShutdownRequested = false")
			}
			if err := h.p.Scale(h.ctx(), 3); !errors.Is(err, ErrShutdown) {
				t.Errorf("Scale during shutdown = %v; want ErrShutdown", err)
			}
			if _, err := h.p.ScaleBy(h.ctx(), 1); !errors.Is(err, ErrShutdown) {
				t.Errorf("ScaleBy during shutdown = %v; want ErrShutdown", err)
			}
			if err := h.p.Restart(h.ctx(), -1); !errors.Is(err, ErrShutdown) {
				t.Errorf("Restart during shutdown = %v; want ErrShutdown", err)
			}
			h.exit(p0, Exit{})
			h.advance(h.cfg.ShutdownTimeout - ns)
			h.running()
			if p1.getKills() != 0 {
				t.Fatalf("killed before ShutdownTimeout")
			}
			h.advance(ns)
			if err := h.runResult(); err != nil {
				t.Fatalf("Run = %v; want nil", err)
			}
			if p0.getKills() != 0 || p1.getKills() != 1 {
				t.Errorf("kills = %d, %d; want 0, 1", p0.getKills(), p1.getKills())
			}
			h.rec.waitFor(t, "shutdown", is(EventShutdown))
			if n := h.rec.count(func(e Event) bool { return e.Type == EventExited && e.Crash }); n != 0 {
				t.Errorf("got %d crashes during shutdown; want none", n)
			}
			// After Run returned.
			if _, err := h.p.Stats(h.ctx()); !errors.Is(err, ErrNotRunning) {
				t.Errorf("Stats after Run = %v; want ErrNotRunning", err)
			}
			if err := h.p.Signal(h.ctx(), syscall.SIGHUP, -1); !errors.Is(err, ErrNotRunning) {
				t.Errorf("Signal after Run = %v; want ErrNotRunning", err)
			}
			if err := h.p.Restart(h.ctx(), -1); !errors.Is(err, ErrNotRunning) {
				t.Errorf("Restart after Run = %v; want ErrNotRunning", err)
			}
			if err := h.p.Scale(h.ctx(), 2); !errors.Is(err, ErrNotRunning) {
				t.Errorf("Scale after Run = %v; want ErrNotRunning", err)
			}
			h.p.Shutdown(false) // must not block
			h.p.Notify(p0.pid, true, false, "")
		})
	}

	t.Run("Shutdown(true) kills at once", func(t *testing.T) {
		h := start(t, nil)
		h.readyAll()
		h.p.Shutdown(true)
		if err := h.runResult(); err != nil {
			t.Fatalf("Run = %v; want nil", err)
		}
		for i := range 2 {
			p := h.proc(i, 1)
			if p.getKills() != 1 {
				t.Errorf("slot %d: kills = %d; want 1", i, p.getKills())
			}
			if e := h.rec.waitFor(t, "exited", isPID(EventExited, p.pid)); e.Crash || e.Signal != "SIGKILL" {
				t.Errorf("slot %d exit = %+v; want killed, no crash", i, e)
			}
		}
	})

	t.Run("shutdown ends a rollout with ErrShutdown", func(t *testing.T) {
		h := start(t, nil)
		h.readyAll()
		c := h.restart(-1)
		h.p.Shutdown(false)
		if err := h.result(c, "Restart"); !errors.Is(err, ErrShutdown) {
			t.Errorf("Restart = %v; want ErrShutdown", err)
		}
		if e := h.rec.waitFor(t, "rollout failed", is(EventRolloutFailed)); !errors.Is(e.Err, ErrShutdown) {
			t.Errorf("rollout failed err = %v; want ErrShutdown", e.Err)
		}
		h.advance(h.cfg.ShutdownTimeout)
		if err := h.runResult(); err != nil {
			t.Fatalf("Run = %v; want nil", err)
		}
		if h.l.find(1, 2) != nil {
			t.Errorf("slot 1 replaced during shutdown")
		}
	})

	t.Run("shutdown cancels a pending respawn", func(t *testing.T) {
		h := start(t, nil)
		h.readyAll()
		h.crash(h.proc(0, 1))
		h.p.Shutdown(false)
		h.advance(h.cfg.RespawnDelay)
		if n := h.l.launched(0); n != 1 {
			t.Errorf("slot 0 launched %d times; want 1", n)
		}
		h.advance(h.cfg.ShutdownTimeout)
		if err := h.runResult(); err != nil {
			t.Fatalf("Run = %v; want nil", err)
		}
	})
}

func TestSignal(t *testing.T) {
	t.Run("every worker", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 3 })
		if err := h.p.Signal(h.ctx(), syscall.SIGHUP, -1); err != nil {
			t.Fatalf("Signal = %v", err)
		}
		for i := range 3 {
			if got, want := h.proc(i, 1).getSignals(), []syscall.Signal{syscall.SIGHUP}; !slices.Equal(got, want) {
				t.Errorf("slot %d got %v; want %v", i, got, want)
			}
		}
	})

	t.Run("one slot", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 3 })
		if err := h.p.Signal(h.ctx(), syscall.SIGUSR1, 1); err != nil {
			t.Fatalf("Signal = %v", err)
		}
		for i := range 3 {
			got := h.proc(i, 1).getSignals()
			if want := i == 1; slices.Equal(got, []syscall.Signal{syscall.SIGUSR1}) != want || (!want && len(got) != 0) {
				t.Errorf("slot %d got %v; want SIGUSR1 %v", i, got, want)
			}
		}
	})

	t.Run("slot that does not exist", func(t *testing.T) {
		h := start(t, nil)
		var se *SlotError
		if err := h.p.Signal(h.ctx(), syscall.SIGHUP, 2); !errors.As(err, &se) || se.Slot != 2 {
			t.Errorf("Signal(slot 2) = %v; want *SlotError for slot 2", err)
		}
		for i := range 2 {
			if got := h.proc(i, 1).getSignals(); len(got) != 0 {
				t.Errorf("slot %d got %v; want nothing", i, got)
			}
		}
	})
}

func TestStats(t *testing.T) {
	h := start(t, func(c *Config) { c.Workers = 4; c.MaxCrashes = 1 })
	p0, p2 := h.proc(0, 1), h.proc(2, 1)
	h.p.Notify(p0.pid, true, false, "serving")
	h.settle()
	h.exit(h.proc(3, 1), Exit{Code: 3})
	h.advance(time.Second)
	h.exit(h.proc(3, 2), Exit{Code: 3}) // second crash in the window: disabled
	h.exit(h.proc(1, 1), Exit{Code: 2}) // respawning
	st := h.stats()
	wantSlots := []WorkerStats{
		{Slot: 0, PID: p0.pid, Gen: 1, Status: StatusActive, Port: 8080, StartedAt: t0, Uptime: time.Second, Ready: true, StatusText: "serving", ClusterIndex: -1},
		{Slot: 1, Gen: 1, Status: StatusRespawning, Port: 8080, ExitStatus: 2, CrashCount: 1, Crashes: 1, ClusterIndex: -1},
		{Slot: 2, PID: p2.pid, Gen: 1, Status: StatusStarting, Port: 8080, StartedAt: t0, Uptime: time.Second, ClusterIndex: -1},
		{Slot: 3, Gen: 2, Status: StatusDisabled, Port: 8080, ExitStatus: 3, CrashCount: 2, Crashes: 2, RespawnDisabled: true, ClusterIndex: -1},
	}
	for i := range max(len(st.Slots), len(wantSlots)) {
		var got, want WorkerStats
		if i < len(st.Slots) {
			got = st.Slots[i]
		}
		if i < len(wantSlots) {
			want = wantSlots[i]
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("slot %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
	st.Slots = nil
	want := Stats{
		Started: t0, Workers: 4, Active: 1, Crashed: 1, Disabled: 1, Starting: 1,
		MinWorkers: 1, MaxWorkers: 4, TotalRestarts: 1, TotalCrashes: 3, Spawned: 5,
		Restarts: map[string]uint64{"crash": 1},
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("stats:\n got %+v\nwant %+v", st, want)
	}
}

func TestSelfStop(t *testing.T) {
	t.Run("STOPPING=1 then exit 0 is no crash and starts again", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 1 })
		p := h.proc(0, 1)
		h.ready(p)
		h.p.Notify(p.pid, false, true, "")
		h.settle()
		if e := h.rec.waitFor(t, "stopping", isPID(EventStopping, p.pid)); e.Reason != "worker said STOPPING" {
			t.Errorf("stopping reason %q; want %q", e.Reason, "worker said STOPPING")
		}
		if e := h.exit(p, Exit{}); e.Crash || e.Reason != "worker stopped itself" {
			t.Errorf("exit = %+v; want no crash, reason %q", e, "worker stopped itself")
		}
		if e := h.rec.waitFor(t, "started", isGen(EventStarted, 0, 2)); e.Reason != "respawn" {
			t.Errorf("gen 2 start reason %q; want respawn", e.Reason)
		}
		if st := h.stats(); st.TotalCrashes != 0 || st.Slots[0].Crashes != 0 || st.TotalRestarts != 1 {
			t.Errorf("stats = %+v; want no crash, 1 restart", st)
		}
		if n := h.rec.count(is(EventRespawnScheduled)); n != 0 {
			t.Errorf("got %d respawns scheduled; want none (started at once)", n)
		}
	})

	t.Run("STOPPING=1 then exit 1 is a crash", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 1 })
		p := h.proc(0, 1)
		h.ready(p)
		h.p.Notify(p.pid, false, true, "")
		h.settle()
		if e := h.exit(p, Exit{Code: 1}); !e.Crash {
			t.Errorf("exit = %+v; want a crash", e)
		}
		h.rec.waitFor(t, "respawn scheduled", isGen(EventRespawnScheduled, 0, 1))
		if h.l.find(0, 2) != nil {
			t.Errorf("started again at once; want after RespawnDelay")
		}
	})
}
