// Package controltest provides a deterministic fake of control.Cluster for
// the tests of the management API and of its command-line client.
package controltest

import (
	"context"
	"sync"
	"time"

	"github.com/herd-cluster/herd/internal/procstat"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// Cluster is a fake control.Cluster: a fixed set of ACTIVE slots whose
// requests are recorded and answered the way the pool answers them, with
// every event sent to the subscribers at once. It is safe for concurrent
// use.
type Cluster struct {
	// AutoRestart, when set, makes StartRestart run the whole rollout at
	// once: every slot gets a new generation, with the events, and the
	// outcome is RestartErr. Otherwise the rollout waits for FinishRestart.
	AutoRestart bool
	RestartErr  error
	// Buffer is the capacity of each subscriber's channel; 0 means 64.
	Buffer int
	// OnStop, when set, is called by Stop (after it recorded the call).
	OnStop func(timeout time.Duration)

	mu      sync.Mutex
	st      supervisor.Stats
	calls   []string
	rollout chan error
	subs    map[*sub]bool
}

type sub struct {
	ch      chan supervisor.Event
	dropped uint64
}

// New returns a fake cluster of n ACTIVE workers (pids 1000+slot) bounded
// by min and max.
func New(n, min, max int) *Cluster {
	c := &Cluster{subs: map[*sub]bool{}}
	now := time.Now()
	c.st = supervisor.Stats{Started: now.Add(-time.Minute), MinWorkers: min, MaxWorkers: max}
	for i := range n {
		c.st.Slots = append(c.st.Slots, supervisor.WorkerStats{
			Slot: i, PID: 1000 + i, Gen: 1, Status: supervisor.StatusActive, Port: 8080,
			StartedAt: now.Add(-30 * time.Second), Uptime: 30 * time.Second, Ready: true,
		})
	}
	c.count()
	return c
}

// count recomputes the totals of c.st. The caller holds c.mu.
func (c *Cluster) count() {
	st := &c.st
	st.Workers, st.Active, st.Crashed, st.Disabled, st.Starting = len(st.Slots), 0, 0, 0, 0
	for _, w := range st.Slots {
		switch w.Status {
		case supervisor.StatusActive:
			st.Active++
		case supervisor.StatusCrashed, supervisor.StatusRespawning:
			st.Crashed++
		case supervisor.StatusDisabled:
			st.Disabled++
		case supervisor.StatusStarting:
			st.Starting++
		}
	}
}

// SetStatus sets the status of slot (DISABLED also sets RespawnDisabled).
func (c *Cluster) SetStatus(slot int, s supervisor.Status) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &c.st.Slots[slot]
	w.Status, w.RespawnDisabled, w.Ready = s, s == supervisor.StatusDisabled, s == supervisor.StatusActive
	if s != supervisor.StatusActive && s != supervisor.StatusStarting && s != supervisor.StatusStopping {
		w.PID = 0
	}
	c.count()
}

// Calls returns the requests made so far, such as "scale 3" or
// "signal USR1 -1", in order.
func (c *Cluster) Calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

func (c *Cluster) record(s string) {
	c.calls = append(c.calls, s)
}

// Stats implements control.Cluster.
func (c *Cluster) Stats(ctx context.Context) (supervisor.Stats, error) {
	if err := ctx.Err(); err != nil {
		return supervisor.Stats{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st
	st.Slots = append([]supervisor.WorkerStats(nil), c.st.Slots...)
	return st, nil
}

// Usage implements control.Cluster: pid KiB and 1.5% for every pid.
func (c *Cluster) Usage(pids []int, _ time.Duration) map[int]procstat.Usage {
	u := make(map[int]procstat.Usage, len(pids))
	for _, pid := range pids {
		u[pid] = procstat.Usage{RSS: uint64(pid) * 1024, CPUPercent: 1.5}
	}
	return u
}
