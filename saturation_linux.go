package herd

import (
	"github.com/herd-cluster/herd/internal/saturation"
	"github.com/herd-cluster/herd/internal/sockets"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// newSaturation returns the watcher of the accept queues of set.
func (c *Cluster) newSaturation(set *sockets.Set) *saturation.Watcher {
	return saturation.New(set, saturation.Config{ScaleQueue: c.scaleQueue()})
}

// scaleQueue is the queue depth autoscaling acts on; 0 when it does not.
func (c *Cluster) scaleQueue() int {
	if !c.cfg.Autoscale {
		return 0
	}
	return c.cfg.ScaleUpQueue
}

// watchSaturation starts w: its alerts become events (logged as warnings),
// and a queue that keeps holding connections drives autoscaling. The
// returned stop ends it.
func watchSaturation(w *saturation.Watcher, pool *supervisor.Pool, events *eventQueue) (stop func()) {
	return w.Start(func(a saturation.Alert) {
		e := Event{Type: EventSaturated, Slot: -1, Reason: a.String()}
		if a.Kind == saturation.Cleared {
			e.Type = EventSaturationCleared
		}
		if len(a.Slots) == 1 {
			e.Slot = a.Slots[0]
		}
		events.push(e)
	}, pool.QueueSustained)
}
