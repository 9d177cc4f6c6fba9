package supervisor

import (
	"fmt"
	"time"
)

// Hang detection judges a worker by its own silence, never by the
// primary's. When the primary is stopped (SIGSTOP, a debugger, a starved
// machine), no heartbeat is heard although the workers send them: they wait
// in the sockets. A check that runs more than one heartbeat interval late
// shows such a stall, and then every ready worker gets a fresh interval from
// now instead of a verdict. And a worker found silent is judged only at a
// second look, hungConfirm later, by which time what was already queued
// (heartbeats on the IPC channels, WATCHDOG=1 datagrams) has been read and
// counted.

// stallThreshold is how late a timer must fire, without heartbeats to
// measure by, for the pool to take it that the primary was stalled.
const stallThreshold = time.Second

// hungConfirm is how long after a worker is found silent it is looked at
// again before it is declared hung.
func hungConfirm(hb time.Duration) time.Duration { return min(hb/10, 100*time.Millisecond) }

// scheduleHungCheck arms the next check, half a heartbeat interval away.
func (p *Pool) scheduleHungCheck() {
	d := p.cfg.Heartbeat / 2
	due := p.clock.Now().Add(d)
	p.hungTimer = p.after(d, func() { p.checkHung(due) })
}

// checkHung looks for ready workers silent for more than two heartbeats,
// confirms them hungConfirm later, and schedules the next check.
func (p *Pool) checkHung(due time.Time) {
	now := p.clock.Now()
	if !p.stalled(due, now) {
		var silent []*worker
		for _, w := range p.byPID {
			if p.silent(w, now) {
				silent = append(silent, w)
			}
		}
		if len(silent) > 0 && p.confirmTimer == nil {
			d := hungConfirm(p.cfg.Heartbeat)
			cdue := now.Add(d)
			p.confirmTimer = p.after(d, func() { p.confirmHung(silent, cdue) })
		}
	}
	if p.shutdown == nil {
		p.scheduleHungCheck()
	}
}

// confirmHung declares hung the workers still silent.
func (p *Pool) confirmHung(silent []*worker, due time.Time) {
	p.confirmTimer = nil
	now := p.clock.Now()
	if p.stalled(due, now) {
		return
	}
	for _, w := range silent {
		if p.byPID[w.pid] == w && p.silent(w, now) {
			p.onHung(w, now.Sub(w.lastBeat))
		}
	}
}

// silent reports whether w is a ready worker not heard from for more than
// two heartbeat intervals.
func (p *Pool) silent(w *worker, now time.Time) bool {
	return w.ready && !w.stopping && !w.hung && now.Sub(w.lastBeat) > 2*p.cfg.Heartbeat
}

// stalled reports whether a timer due at due runs more than a heartbeat
// interval late at now: the primary itself did not run meanwhile. It then
// gives every ready worker a fresh interval from now.
func (p *Pool) stalled(due, now time.Time) bool {
	late := now.Sub(due)
	if late <= p.cfg.Heartbeat {
		return false
	}
	p.cfg.Logger.Warn("the primary did not run for a while; workers get a fresh heartbeat interval", "late", late.Round(time.Millisecond))
	for _, w := range p.byPID {
		if w.ready && w.lastBeat.Before(now) {
			w.lastBeat = now
		}
	}
	return true
}

// onHung starts a replacement for the hung worker w and kills w once it is
// ready, or after two heartbeat intervals at the latest.
func (p *Pool) onHung(w *worker, silent time.Duration) {
	s := w.slot
	w.hung = true
	p.emit(Event{Type: EventHung, Slot: s.id, PID: w.pid, Gen: w.gen,
		Reason: fmt.Sprintf("no heartbeat for %s", silent.Round(time.Millisecond))})
	if s.cur == w && s.next == nil && !s.removing && p.shutdown == nil {
		s.replaceReason = "hung"
		_, _ = p.startWorker(s, "hung") // a failure is handled as a crash
	}
	w.killTimer = p.after(2*p.cfg.Heartbeat, func() { p.killHung(w) })
}

// killHung kills a hung worker; its exit is not counted as a crash again.
func (p *Pool) killHung(w *worker) {
	if p.byPID[w.pid] != w {
		return
	}
	w.stopping, w.stopReason = true, "hung"
	_ = w.proc.Kill()
}
