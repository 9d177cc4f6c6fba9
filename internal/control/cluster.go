package control

import (
	"context"
	"syscall"
	"time"

	"github.com/herd-cluster/herd/internal/logs"
	"github.com/herd-cluster/herd/internal/procstat"
	"github.com/herd-cluster/herd/internal/saturation"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// Cluster is what the management API needs of the primary.
type Cluster interface {
	Stats(ctx context.Context) (supervisor.Stats, error)
	// StartRestart starts a rolling restart of every slot (slot < 0) or one;
	// it returns at once; the channel receives the outcome. Errors: supervisor.ErrRolloutInProgress, *supervisor.SlotError, supervisor.ErrShutdown.
	StartRestart(ctx context.Context, slot int) (<-chan error, error)
	Scale(ctx context.Context, n int) error                         // *supervisor.RangeError when out of bounds
	Signal(ctx context.Context, sig syscall.Signal, slot int) error // *supervisor.SlotError
	Stop(timeout time.Duration)                                     // 0 = the configured shutdown timeout
	// Events subscribes to every lifecycle event from now on; cancel ends it and closes the channel. The channel is buffered; when a subscriber is too slow, events are dropped for it and the drop count is reported by the returned func.
	Events() (ch <-chan supervisor.Event, dropped func() uint64, cancel func())
	// Usage returns the RSS in bytes and CPU percent (of one core) of the process trees rooted at pids, by pid, leaving out those that do not run. It may answer from a sample up to maxAge old (a little older while a new one is taken) rather than read /proc for every call; maxAge 0 asks for a sample taken now. GET /stats calls it once per request.
	Usage(pids []int, maxAge time.Duration) map[int]procstat.Usage
}

// Queues is what the primary may offer besides Cluster: the accept queues
// of its TCP listeners, for GET /stats.
type Queues interface {
	Listeners() []saturation.Listener
}

// Logs is what GET /logs needs of the primary's worker output: the recent
// lines of a slot and a subscription to new ones. *logs.Sink implements it.
type Logs interface {
	// Tail returns up to n of the slot's most recent lines, oldest first.
	Tail(slot, n int, stream ...logs.Stream) []logs.Line
	// Subscribe returns the lines of slot (every slot when slot < 0)
	// captured from now on, on a channel of buffer lines that drops and
	// counts what a slow reader cannot take.
	Subscribe(slot, buffer int) *logs.Subscription
}

var _ Logs = (*logs.Sink)(nil)
