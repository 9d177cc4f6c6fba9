package metrics

import "github.com/herd-cluster/herd/internal/supervisor"

// The reasons of herd_worker_restarts_total, all present from the start.
var restartReasons = []string{"crash", "rollout", "recycle", "hung", "scale"}

// The kinds of herd_worker_exits_total, all present from the start.
const (
	exitCrash        = "crash"         // exited on its own, or killed, unasked
	exitStartFailed  = "start_failed"  // the process could not be started
	exitReadyTimeout = "ready_timeout" // killed for not being ready in time
	exitHung         = "hung"          // killed for missing heartbeats
	exitSelfStopped  = "self_stopped"  // said STOPPING=1 and exited 0
	exitStopped      = "stopped"       // asked to stop: rollout, recycle, scale, shutdown…
)

var exitKinds = []string{exitCrash, exitStartFailed, exitReadyTimeout, exitHung, exitSelfStopped, exitStopped}

// The outcomes of herd_rollout_duration_seconds.
const (
	outcomeFinished = "finished"
	outcomeFailed   = "failed"
)

// Observe updates the event-driven metrics with e. The pool's events must
// be passed in the order it emitted them; Observe is safe to call from any
// goroutine but is meant for the one that forwards the pool's events.
//
// A start counts as a restart when it is not the first of its slot
// (Gen > 1), under the reason the pool counts it in Stats.Restarts: a
// "respawn" is a crash restart, "rollout", "recycle", "hung" and "scale"
// keep their name.
func (m *Metrics) Observe(e supervisor.Event) {
	switch e.Type {
	case supervisor.EventStarted:
		m.onStarted(e)
	case supervisor.EventReady:
		m.mu.Lock()
		t, ok := m.started[e.PID]
		delete(m.started, e.PID)
		m.mu.Unlock()
		if ok && !t.IsZero() && !e.Time.IsZero() && !e.Time.Before(t) {
			m.ready.Observe(e.Time.Sub(t).Seconds())
		}
	case supervisor.EventExited:
		m.onExited(e)
	case supervisor.EventRolloutFinished:
		m.rollouts.WithLabelValues(outcomeFinished).Observe(e.Delay.Seconds())
	case supervisor.EventRolloutFailed:
		m.rollouts.WithLabelValues(outcomeFailed).Observe(e.Delay.Seconds())
	}
}

func (m *Metrics) onStarted(e supervisor.Event) {
	if e.PID > 0 {
		m.mu.Lock()
		m.started[e.PID] = e.Time
		m.mu.Unlock()
		m.cpu.started(e.Slot, e.PID)
	}
	if e.Gen > 1 {
		m.restarts.WithLabelValues(restartReason(e.Reason)).Inc()
	}
}

func (m *Metrics) onExited(e supervisor.Event) {
	if e.PID > 0 {
		m.mu.Lock()
		delete(m.started, e.PID)
		m.mu.Unlock()
		m.cpu.exited(e.PID)
	}
	if e.Crash {
		m.crashes.Inc()
	}
	m.exits.WithLabelValues(exitKind(e)).Inc()
}

// restartReason names the restart a start with reason is, as the pool's
// Stats.Restarts does.
func restartReason(start string) string {
	switch start {
	case "respawn", "start":
		return "crash"
	case "":
		return "unknown"
	}
	return start // rollout, recycle, hung, scale
}

// exitKind classifies an Exited event.
func exitKind(e supervisor.Event) string {
	switch {
	case e.Reason == "start failed":
		return exitStartFailed
	case e.Reason == "not ready in time":
		return exitReadyTimeout
	case e.Crash:
		return exitCrash
	case e.Reason == "hung":
		return exitHung
	case e.Reason == "worker stopped itself":
		return exitSelfStopped
	}
	return exitStopped
}
