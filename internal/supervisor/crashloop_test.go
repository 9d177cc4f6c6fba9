package supervisor

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestNeverReady(t *testing.T) {
	t.Run("ready timeouts longer than the window disable the slot", func(t *testing.T) {
		// Each try lasts ReadyTimeout, far longer than CrashWindow: the
		// window alone would never see two crashes.
		h := start(t, func(c *Config) {
			c.Workers = 2
			c.ReadyTimeout, c.CrashWindow, c.MaxCrashes = time.Minute, 5*time.Second, 3
		})
		h.ready(h.proc(1, 1))
		for gen := 1; gen <= 4; gen++ {
			if h.rec.count(is(EventDisabled)) != 0 {
				t.Fatalf("disabled after %d workers not ready; want after 4", gen-1)
			}
			h.advance(time.Minute)
			e := h.rec.waitFor(t, "exit", isGen(EventExited, 0, gen))
			if !e.Crash || e.Reason != "not ready in time" {
				t.Fatalf("exit of gen %d = %v; want a crash, not ready in time", gen, e)
			}
			if gen < 4 {
				h.advance(h.rec.waitFor(t, "respawn", isGen(EventRespawnScheduled, 0, gen)).Delay)
			}
		}
		d := h.rec.waitFor(t, "disabled", isSlot(EventDisabled, 0))
		if !strings.Contains(d.Reason, "4 workers in a row were not ready") || !strings.Contains(d.Reason, "READY=1 never came") {
			t.Errorf("disabled reason %q; want it to say READY=1 never came for 4 workers", d.Reason)
		}
		if ws := h.slotStats(0); ws.Status != StatusDisabled {
			t.Errorf("slot 0 = %s; want DISABLED", ws.Status)
		}
		h.advance(time.Hour)
		if n := h.l.launched(0); n != 4 {
			t.Errorf("slot 0 launched %d times; want 4", n)
		}
	})

	t.Run("slow crashes before ready disable the slot", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 2; c.CrashWindow, c.MaxCrashes = time.Second, 2 })
		h.ready(h.proc(1, 1))
		for gen := 1; gen <= 3; gen++ {
			h.advance(5 * time.Second)
			h.crash(h.proc(0, gen))
			if gen < 3 {
				h.advance(h.rec.waitFor(t, "respawn", isGen(EventRespawnScheduled, 0, gen)).Delay)
			}
		}
		d := h.rec.waitFor(t, "disabled", isSlot(EventDisabled, 0))
		if want := "3 workers in a row failed before they were ready"; d.Reason != want {
			t.Errorf("disabled reason %q; want %q", d.Reason, want)
		}
	})

	t.Run("a ready worker resets the count", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 1; c.CrashWindow, c.MaxCrashes = time.Second, 1 })
		h.advance(5 * time.Second)
		h.crash(h.proc(0, 1))
		h.advance(h.rec.waitFor(t, "respawn", isGen(EventRespawnScheduled, 0, 1)).Delay)
		h.ready(h.proc(0, 2))
		h.advance(5 * time.Second)
		h.crash(h.proc(0, 2))
		h.advance(h.rec.waitFor(t, "respawn", isGen(EventRespawnScheduled, 0, 2)).Delay)
		h.advance(5 * time.Second)
		h.crash(h.proc(0, 3))
		if n := h.rec.count(is(EventDisabled)); n != 0 {
			t.Errorf("disabled with the never-ready count broken by a ready worker; events:%s", h.rec.dump())
		}
	})

	t.Run("a rollout enables the slot and clears the count", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 2; c.ReadyTimeout, c.MaxCrashes = time.Minute, 0 })
		h.ready(h.proc(1, 1))
		h.advance(time.Minute)
		h.rec.waitFor(t, "disabled", isSlot(EventDisabled, 0))
		done := h.restart(0)
		p := h.proc(0, 2)
		h.ready(p)
		if err := h.result(done, "rollout"); err != nil {
			t.Fatalf("rollout: %v", err)
		}
		if ws := h.slotStats(0); ws.Status != StatusActive {
			t.Errorf("slot 0 after the rollout = %s; want ACTIVE", ws.Status)
		}
	})
}

func TestSelfStopLoop(t *testing.T) {
	selfStop := func(h *harness, p *fakeProc) Event {
		h.t.Helper()
		h.p.Notify(p.pid, false, true, "")
		h.settle()
		return h.exit(p, Exit{})
	}
	t.Run("a repeated quick self-stop counts as a crash", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 2; c.MaxCrashes = 3 })
		h.ready(h.proc(1, 1))
		p := h.proc(0, 1)
		h.ready(p)
		if e := selfStop(h, p); e.Crash {
			t.Fatalf("first self-stop = %v; want no crash", e)
		}
		h.rec.waitFor(t, "started at once", isGen(EventStarted, 0, 2))
		for gen := 2; gen <= 5; gen++ {
			p := h.proc(0, gen)
			h.ready(p)
			h.advance(time.Second)
			e := selfStop(h, p)
			if !e.Crash || !strings.Contains(e.Reason, "stopped itself again") {
				t.Fatalf("self-stop of gen %d = %v; want a crash", gen, e)
			}
			if gen < 5 {
				rs := h.rec.waitFor(t, "respawn", isGen(EventRespawnScheduled, 0, gen))
				if want := respawnDelay(h.cfg.RespawnDelay, gen-1); rs.Delay != want {
					t.Errorf("respawn after gen %d: delay %s; want %s (backoff)", gen, rs.Delay, want)
				}
				h.advance(rs.Delay)
			}
		}
		d := h.rec.waitFor(t, "disabled", isSlot(EventDisabled, 0))
		if want := "4 crashes within 1m0s"; d.Reason != want {
			t.Errorf("disabled reason %q; want %q", d.Reason, want)
		}
		if st := h.stats(); st.Disabled != 1 {
			t.Errorf("disabled slots = %d; want 1", st.Disabled)
		}
	})

	t.Run("self-stops after serving long stay free", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 1; c.MaxCrashes = 0 })
		for gen := 1; gen <= 5; gen++ {
			p := h.proc(0, gen)
			h.ready(p)
			h.advance(healthyRunTime)
			if e := selfStop(h, p); e.Crash {
				t.Fatalf("self-stop of gen %d after %s serving = %v; want no crash", gen, healthyRunTime, e)
			}
		}
		if n := h.rec.count(is(EventRespawnScheduled)); n != 0 {
			t.Errorf("%d respawns delayed; want every one at once", n)
		}
	})
}

func TestShortOfResources(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.EAGAIN, syscall.ENOMEM} {
		t.Run(errno.Error(), func(t *testing.T) {
			h := start(t, func(c *Config) { c.Workers = 2; c.MaxCrashes = 1 })
			h.ready(h.proc(1, 1))
			h.l.setLaunchErr(0, fmt.Errorf("pipe2: %w", errno))
			h.crash(h.proc(0, 1))
			h.advance(h.rec.waitFor(t, "respawn", isGen(EventRespawnScheduled, 0, 1)).Delay)
			var delays []time.Duration
			for gen := 2; gen <= 7; gen++ {
				e := h.rec.waitFor(t, "failed start", func(e Event) bool { return e.Type == EventExited && e.Gen == gen })
				if e.Crash || e.Reason != "start failed" {
					t.Fatalf("failed start of gen %d = %v; want no crash", gen, e)
				}
				rs := h.rec.waitFor(t, "retry", isGen(EventRespawnScheduled, 0, gen))
				delays = append(delays, rs.Delay)
				h.advance(rs.Delay)
			}
			if delays[len(delays)-1] <= delays[0] {
				t.Errorf("retry delays %v; want them growing", delays)
			}
			if ws := h.slotStats(0); ws.Status == StatusDisabled || ws.Crashes != 1 {
				t.Fatalf("slot 0 = %+v; want not disabled, only the first crash counted", ws)
			}
			h.l.setLaunchErr(0, nil)
			h.advance(h.rec.waitFor(t, "retry", isGen(EventRespawnScheduled, 0, 8)).Delay)
			p := h.l.find(0, 9)
			if p == nil {
				t.Fatalf("no start once resources came back; events:%s", h.rec.dump())
			}
			h.ready(p)
			if ws := h.slotStats(0); ws.Status != StatusActive {
				t.Errorf("slot 0 = %s; want ACTIVE again", ws.Status)
			}
		})
	}
	t.Run("other start failures still count", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 2; c.MaxCrashes = 1 })
		h.ready(h.proc(1, 1))
		h.l.setLaunchErr(0, fmt.Errorf("fork/exec: %w", syscall.ENOENT))
		h.crash(h.proc(0, 1))
		h.advance(h.rec.waitFor(t, "respawn", isGen(EventRespawnScheduled, 0, 1)).Delay)
		h.rec.waitFor(t, "disabled", isSlot(EventDisabled, 0))
	})
}

func TestTreeLeftovers(t *testing.T) {
	t.Run("stop signal, then killed after ShutdownTimeout", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 1 })
		p := h.proc(0, 1)
		h.ready(p)
		p.leaveTree()
		h.crash(p)
		if got := p.getTreeSignals(); len(got) != 1 || got[0] != syscall.SIGTERM {
			t.Fatalf("signals to the rest of the tree = %v; want [SIGTERM]", got)
		}
		h.advance(h.cfg.ShutdownTimeout - ns)
		if p.getKills() != 0 {
			t.Fatalf("the rest killed before ShutdownTimeout")
		}
		h.advance(ns)
		if p.getKills() != 1 {
			t.Errorf("kills = %d after ShutdownTimeout; want 1", p.getKills())
		}
	})

	t.Run("shutdown waits for the rest", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 1 })
		h.l.setExitOnStop(true)
		p := h.proc(0, 1)
		h.ready(p)
		p.leaveTree()
		h.p.Shutdown(false)
		h.settle()
		h.running()
		h.advance(h.cfg.ShutdownTimeout - ns)
		h.running()
		h.advance(ns)
		if err := h.runResult(); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if p.getKills() != 1 {
			t.Errorf("kills = %d; want the rest killed once", p.getKills())
		}
	})

	t.Run("the rest ending on its own ends the shutdown", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 1 })
		h.l.setExitOnStop(true)
		p := h.proc(0, 1)
		h.ready(p)
		p.leaveTree()
		h.p.Shutdown(false)
		h.settle()
		h.running()
		p.endLeft()
		if err := h.runResult(); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if p.getKills() != 0 {
			t.Errorf("kills = %d; want none", p.getKills())
		}
	})

	t.Run("force kills the rest at once", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 1 })
		h.l.setExitOnStop(true)
		p := h.proc(0, 1)
		h.ready(p)
		p.leaveTree()
		h.p.Shutdown(false)
		h.settle()
		h.p.Shutdown(true)
		if err := h.runResult(); err != nil {
			t.Fatalf("Run = %v", err)
		}
	})
}
