package supervisor

import (
	"testing"
	"time"
)

func TestHungStalledPrimary(t *testing.T) {
	const hb = time.Second
	t.Run("a stall of the primary is no worker's silence", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 2; c.Heartbeat = hb })
		h.readyAll()
		h.advance(hb)
		for i := range 2 {
			h.p.Beat(h.proc(i, 1).pid, 0, false)
		}
		h.settle()
		h.clock.Stall(3 * hb) // SIGSTOP, SIGCONT
		h.advance(hungConfirm(hb))
		for i := range 2 { // the next heartbeats
			h.p.Beat(h.proc(i, 1).pid, 0, false)
		}
		h.advance(hb)
		if n := h.rec.count(is(EventHung)); n != 0 {
			t.Fatalf("%d workers judged hung after the primary stalled; want none; events:%s", n, h.rec.dump())
		}
		for i := range 2 {
			if k := h.proc(i, 1).getKills(); k != 0 {
				t.Errorf("slot %d killed %d times", i, k)
			}
		}
	})

	t.Run("a worker silent after the stall is still caught", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 2; c.Heartbeat = hb })
		h.readyAll()
		h.clock.Stall(3 * hb)
		h.advance(0)
		beating := h.proc(0, 1)
		for range 4 {
			h.p.Beat(beating.pid, 0, false)
			h.advance(hb)
		}
		e := h.rec.waitFor(t, "hung", is(EventHung))
		if e.PID != h.proc(1, 1).pid {
			t.Errorf("hung pid %d; want the silent slot 1", e.PID)
		}
		if n := h.rec.count(is(EventHung)); n != 1 {
			t.Errorf("%d hung events; want 1", n)
		}
	})

	t.Run("a heartbeat read before the second look clears the worker", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 1; c.Heartbeat = hb })
		p := h.proc(0, 1)
		h.ready(p)
		h.advance(2*hb + hb/2) // found silent
		h.p.Beat(p.pid, 0, false)
		h.advance(hungConfirm(hb))
		if n := h.rec.count(is(EventHung)); n != 0 {
			t.Errorf("hung although its heartbeat came before the verdict; events:%s", h.rec.dump())
		}
	})

	t.Run("a late ready timeout gives back the time lost", func(t *testing.T) {
		h := start(t, func(c *Config) { c.Workers = 1 })
		p := h.proc(0, 1)
		h.advance(h.cfg.ReadyTimeout / 2)
		h.clock.Stall(h.cfg.ReadyTimeout)
		h.advance(0)
		if p.getKills() != 0 {
			t.Fatalf("killed for not being ready while the primary was stopped")
		}
		h.ready(p) // the READY=1 that waited in the socket
		h.advance(h.cfg.ReadyTimeout)
		if p.getKills() != 0 || h.rec.count(is(EventReadyTimeout)) != 0 {
			t.Errorf("a worker ready after the stall was killed")
		}
	})
}
