package supervisor

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// Crash-loop protection. A slot is disabled when its workers crash more than
// MaxCrashes times within CrashWindow, or when more than MaxCrashes workers
// in a row fail to become ready, however long each try took: a worker that
// never says READY=1 is killed after ReadyTimeout, which is usually longer
// than the crash window, so the window alone would retry it forever.
//
// A worker that says STOPPING=1 and exits 0 is replaced at once, without
// counting a crash, the first time. When the next worker of the slot does
// the same before serving healthyRunTime, that exit counts as a crash: a
// worker stopping itself in a loop gets backoff and is disabled like any
// crash loop.
//
// A start that fails for want of resources (descriptors, processes,
// memory) is no fault of the worker: it is retried with backoff, never
// counted, and the slot comes back once the resources do.

// exitKind decides whether w's exit is a crash, and why it ended.
func (p *Pool) exitKind(w *worker, exit Exit) (crash bool, reason string) {
	s := w.slot
	if w.ready && p.clock.Now().Sub(w.readyAt) >= healthyRunTime {
		s.quickStops = 0
	}
	switch {
	case w.readyFailed:
		return true, "not ready in time"
	case w.stopping && w.hung:
		return false, "hung"
	case w.stopping:
		return false, w.stopReason
	case w.selfStop && exit.Code == 0:
		s.quickStops++
		if s.quickStops < 2 {
			return false, "worker stopped itself"
		}
		return true, fmt.Sprintf("stopped itself again within %s of serving", healthyRunTime)
	}
	return true, "crash"
}

// countCrash applies both disabling rules to the crash of s at now (w is
// the crashed worker, nil when it could not even start) and reports whether
// the slot is now disabled.
func (p *Pool) countCrash(s *slot, now time.Time, w *worker) bool {
	if w == nil || !w.ready {
		s.unready++
	} else {
		s.unready = 0
	}
	s.crashTimes = append(s.crashTimes, now)
	cut := 0
	for cut < len(s.crashTimes) && now.Sub(s.crashTimes[cut]) > p.cfg.CrashWindow {
		cut++
	}
	s.crashTimes = s.crashTimes[cut:]
	var reason string
	switch {
	case len(s.crashTimes) > p.cfg.MaxCrashes:
		reason = fmt.Sprintf("%d crashes within %s", len(s.crashTimes), p.cfg.CrashWindow)
	case s.unready > p.cfg.MaxCrashes && w != nil && w.readyFailed:
		reason = fmt.Sprintf("%d workers in a row were not ready: READY=1 never came within the ready timeout (%s)", s.unready, p.cfg.ReadyTimeout)
	case s.unready > p.cfg.MaxCrashes:
		reason = fmt.Sprintf("%d workers in a row failed before they were ready", s.unready)
	default:
		return false
	}
	s.disabled = true
	p.emit(Event{Type: EventDisabled, Slot: s.id, Gen: s.gen, Reason: reason})
	p.checkHopeless()
	return true
}

// enable clears what crash protection counted against s.
func (s *slot) enable() {
	s.disabled, s.crashTimes, s.consecutive = false, nil, 0
	s.unready, s.quickStops = 0, 0
}

// startShortOfResources handles a start of s that failed for want of
// resources: no crash is counted, and when no worker serves the slot the
// start is retried with the respawn backoff.
func (p *Pool) startShortOfResources(s *slot, err error) {
	s.shortages++
	p.cfg.Logger.Warn("worker could not start for want of resources; retrying", "slot", s.id, "gen", s.gen, "err", err)
	p.emit(Event{Type: EventExited, Slot: s.id, Gen: s.gen, Status: -1, Reason: "start failed", Err: err})
	if s.cur != nil {
		return // the old worker keeps serving
	}
	if !p.cfg.Respawn {
		s.crashed = true
		p.checkHopeless()
		return
	}
	d := respawnDelay(p.cfg.RespawnDelay, s.shortages)
	p.emit(Event{Type: EventRespawnScheduled, Slot: s.id, Gen: s.gen, Delay: d})
	s.respawn = p.after(d, func() {
		s.respawn = nil
		if p.shutdown == nil && !s.disabled && !s.removing && s.cur == nil {
			_, _ = p.startWorker(s, "respawn") // a failure is handled as above
		}
	})
}

// readyTimeoutHint is logged when a worker is killed for not being ready.
const readyTimeoutHint = "READY=1 never came within the ready timeout (--ready-timeout); " +
	"an app that cannot send READY=1 to NOTIFY_SOCKET should run with --ready delay"

// resourceShortage reports whether err means the system or the primary is
// out of something a start needs (descriptors, processes, memory): a
// condition that passes, not a fault of the worker.
func resourceShortage(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.EAGAIN, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// fdShortage reports whether err means the primary ran out of descriptors.
func fdShortage(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
