package herd

import "github.com/herd-cluster/herd/internal/supervisor"

// Event is one lifecycle event of the cluster: a worker started, became
// ready, exited, was disabled; a rollout started, finished or failed; the
// cluster scaled; a signal arrived.
type Event = supervisor.Event

// EventType names the kind of an Event.
type EventType = supervisor.EventType

// The event types, as delivered to Config.OnEvent.
const (
	EventStarted         = supervisor.EventStarted
	EventReady           = supervisor.EventReady
	EventExited          = supervisor.EventExited
	EventDisabled        = supervisor.EventDisabled
	EventScaled          = supervisor.EventScaled
	EventRolloutStarted  = supervisor.EventRolloutStarted
	EventRolloutFinished = supervisor.EventRolloutFinished
	EventRolloutFailed   = supervisor.EventRolloutFailed
	EventSignal          = supervisor.EventSignal
	// EventSaturated says that connections wait on a listener and none is
	// accepted, or that its accept queue passed 80% of its limit; Reason
	// names the listener, the slots and the figures. EventSaturationCleared
	// says it is over.
	EventSaturated         = supervisor.EventSaturated
	EventSaturationCleared = supervisor.EventSaturationCleared
)

// Stats is a snapshot of the cluster: ecewo's counters (total, active,
// crashed, disabled, restarts, shutdown and restart requested) and one
// WorkerStats per slot.
type Stats = supervisor.Stats

// WorkerStats describes one slot: pid, generation, status, port, start time,
// uptime, last exit status, crash count and whether respawn is disabled.
type WorkerStats = supervisor.WorkerStats

// Status is the state of a slot.
type Status = supervisor.Status

// The statuses of a slot.
const (
	StatusStarting   = supervisor.StatusStarting
	StatusActive     = supervisor.StatusActive
	StatusStopping   = supervisor.StatusStopping
	StatusCrashed    = supervisor.StatusCrashed
	StatusRespawning = supervisor.StatusRespawning
	StatusDisabled   = supervisor.StatusDisabled
)
