package supervisor

import (
	"fmt"
	"time"
)

// EventType names a lifecycle event.
type EventType string

// The lifecycle events the pool reports, in the order a worker meets them.
const (
	EventStarted          EventType = "started"
	EventReady            EventType = "ready"
	EventExited           EventType = "exited"
	EventDisabled         EventType = "disabled"
	EventScaled           EventType = "scaled"
	EventRolloutStarted   EventType = "rollout_started"
	EventRolloutFinished  EventType = "rollout_finished"
	EventRolloutFailed    EventType = "rollout_failed"
	EventSignal           EventType = "signal"
	EventShutdown         EventType = "shutdown"
	EventStopping         EventType = "stopping"
	EventStatus           EventType = "status"
	EventReadyTimeout     EventType = "ready_timeout"
	EventRespawnScheduled EventType = "respawn_scheduled"
	EventHung             EventType = "hung"
	EventRecycle          EventType = "recycle"
	EventAutoscale        EventType = "autoscale"
	// EventSaturated: connections wait on a listener that no worker
	// accepts, or its accept queue is nearly full; Reason says which.
	// EventSaturationCleared: that ended. The primary's saturation watcher
	// emits them, not the pool.
	EventSaturated         EventType = "saturated"
	EventSaturationCleared EventType = "saturation_cleared"
)

// Event is one thing that happened to the cluster. Fields that do not apply
// to a type are zero; Slot is -1 for cluster-wide events.
type Event struct {
	Type EventType
	Time time.Time
	Slot int
	PID  int
	Gen  int
	// Exited: how the worker ended. Status is the exit code, or -1 when
	// killed by Signal.
	Status int
	Signal string
	// Crash is true when the worker exited without being asked to.
	Crash bool
	// Reason explains Exited, Disabled, Stopping and rollout events
	// ("rollout", "scale", "shutdown", "ready timeout"…); Workers is the new
	// count for Scaled; Delay the wait before a scheduled respawn.
	Reason  string
	Workers int
	Delay   time.Duration
	// Err carries the failure of RolloutFailed and of a start that failed.
	Err error
}

// String renders e as a short human line, for logs and tests.
func (e Event) String() string {
	s := string(e.Type)
	if e.Slot >= 0 {
		s += fmt.Sprintf(" slot=%d pid=%d gen=%d", e.Slot, e.PID, e.Gen)
	}
	if e.Reason != "" {
		s += " reason=" + e.Reason
	}
	if e.Err != nil {
		s += " err=" + e.Err.Error()
	}
	return s
}
