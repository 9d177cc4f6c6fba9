package controltest

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/herd-cluster/herd/internal/supervisor"
)

// StartRestart implements control.Cluster.
func (c *Cluster) StartRestart(_ context.Context, slot int) (<-chan error, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record(fmt.Sprintf("restart %d", slot))
	switch {
	case c.st.ShutdownRequested:
		return nil, supervisor.ErrShutdown
	case c.rollout != nil:
		return nil, supervisor.ErrRolloutInProgress
	case slot >= len(c.st.Slots):
		return nil, &supervisor.SlotError{Slot: slot}
	}
	done := make(chan error, 1)
	c.rollout = done
	c.st.RestartInProgress = true
	c.emit(supervisor.Event{Type: supervisor.EventRolloutStarted, Slot: slot, Workers: len(c.st.Slots)})
	if c.AutoRestart {
		for i := range c.st.Slots {
			if slot < 0 || i == slot {
				c.replace(i)
			}
		}
		c.finish(c.RestartErr)
	}
	return done, nil
}

// replace gives slot a new worker, with the events. The caller holds c.mu.
func (c *Cluster) replace(slot int) {
	w := &c.st.Slots[slot]
	old := *w
	w.PID += 100
	w.Gen++
	w.Status, w.Ready, w.RespawnDisabled = supervisor.StatusActive, true, false
	c.emit(supervisor.Event{Type: supervisor.EventStarted, Slot: slot, PID: w.PID, Gen: w.Gen})
	c.emit(supervisor.Event{Type: supervisor.EventReady, Slot: slot, PID: w.PID, Gen: w.Gen})
	c.emit(supervisor.Event{Type: supervisor.EventStopping, Slot: slot, PID: old.PID, Gen: old.Gen, Reason: "rollout"})
	c.emit(supervisor.Event{Type: supervisor.EventExited, Slot: slot, PID: old.PID, Gen: old.Gen,
		Status: -1, Signal: "terminated", Reason: "rollout"})
	c.st.TotalRestarts++
	c.count()
}

// FinishRestart ends the rollout StartRestart began with err.
func (c *Cluster) FinishRestart(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finish(err)
}

func (c *Cluster) finish(err error) {
	if c.rollout == nil {
		return
	}
	if err != nil {
		c.emit(supervisor.Event{Type: supervisor.EventRolloutFailed, Slot: -1, Err: err})
	} else {
		c.emit(supervisor.Event{Type: supervisor.EventRolloutFinished, Slot: -1})
	}
	c.rollout <- err
	c.rollout = nil
	c.st.RestartInProgress = false
}

// Scale implements control.Cluster.
func (c *Cluster) Scale(_ context.Context, n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record(fmt.Sprintf("scale %d", n))
	if n < c.st.MinWorkers || n > c.st.MaxWorkers {
		return &supervisor.RangeError{Want: n, Min: c.st.MinWorkers, Max: c.st.MaxWorkers}
	}
	for len(c.st.Slots) < n {
		i := len(c.st.Slots)
		c.st.Slots = append(c.st.Slots, supervisor.WorkerStats{
			Slot: i, PID: 1000 + i, Gen: 1, Status: supervisor.StatusActive, Port: 8080,
			StartedAt: time.Now(), Ready: true,
		})
	}
	c.st.Slots = c.st.Slots[:n]
	c.count()
	c.emit(supervisor.Event{Type: supervisor.EventScaled, Slot: -1, Workers: n})
	return nil
}

// Signal implements control.Cluster.
func (c *Cluster) Signal(_ context.Context, sig syscall.Signal, slot int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record(fmt.Sprintf("signal %s %d", unix.SignalName(sig), slot))
	if slot >= len(c.st.Slots) {
		return &supervisor.SlotError{Slot: slot}
	}
	return nil
}

// Stop implements control.Cluster.
func (c *Cluster) Stop(timeout time.Duration) {
	c.mu.Lock()
	c.record(fmt.Sprintf("stop %s", timeout))
	c.st.ShutdownRequested = true
	c.emit(supervisor.Event{Type: supervisor.EventShutdown, Slot: -1})
	on := c.OnStop
	c.mu.Unlock()
	if on != nil {
		on(timeout)
	}
}

// Events implements control.Cluster.
func (c *Cluster) Events() (<-chan supervisor.Event, func() uint64, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.Buffer
	if n <= 0 {
		n = 64
	}
	s := &sub{ch: make(chan supervisor.Event, n)}
	c.subs[s] = true
	dropped := func() uint64 {
		c.mu.Lock()
		defer c.mu.Unlock()
		return s.dropped
	}
	cancel := func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.subs[s] {
			delete(c.subs, s)
			close(s.ch)
		}
	}
	return s.ch, dropped, cancel
}

// Subscribers returns the number of event subscriptions open.
func (c *Cluster) Subscribers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.subs)
}

// Emit sends e to every subscriber, dropping it for the full ones.
func (c *Cluster) Emit(e supervisor.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.emit(e)
}

func (c *Cluster) emit(e supervisor.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	for s := range c.subs {
		select {
		case s.ch <- e:
		default:
			s.dropped++
		}
	}
}
