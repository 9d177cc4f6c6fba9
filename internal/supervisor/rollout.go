package supervisor

import (
	"context"
	"fmt"
	"time"
)

// rollout is a rolling restart in progress: each slot in turn gets a new
// worker, and its old worker is stopped only once the new one is ready.
type rollout struct {
	queue    []*slot
	inflight map[*slot]*worker // replacement started for the slot
	err      error             // first failure; no new slot starts after it
	started  time.Time
	waiters  []chan error
	// rebalance marks a rollout for a new cluster view (converge): it
	// replaces the stale slots only, and with FollowStopFirst stops a
	// slot's worker before its replacement starts (stopping, until the
	// exit is reaped).
	rebalance bool
	stopping  map[*slot]bool
}

// Restart rolls every slot over to a new worker (or only the slot only, when
// only >= 0), MaxSurge at a time, and waits until the rollout ends. A
// disabled slot is enabled again. If a new worker fails to become ready, the
// rollout stops, the old workers keep serving and the error says why.
func (p *Pool) Restart(ctx context.Context, only int) error {
	done, err := p.StartRestart(ctx, only)
	if err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StartRestart starts the rolling restart Restart waits for, and returns at
// once: the channel receives its outcome. It fails at once when a rollout
// is already running, the slot does not exist or the pool is stopping.
func (p *Pool) StartRestart(ctx context.Context, only int) (<-chan error, error) {
	done := make(chan error, 1)
	var err error
	if cerr := p.call(ctx, func() { err = p.startRollout(only, done) }); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	return done, nil
}

func (p *Pool) startRollout(only int, done chan error) error {
	switch {
	case p.shutdown != nil:
		return ErrShutdown
	case p.rollout != nil:
		return ErrRolloutInProgress
	case only >= len(p.slots) || (only >= 0 && p.slots[only].removing):
		return &SlotError{Slot: only}
	}
	r := &rollout{inflight: make(map[*slot]*worker), stopping: make(map[*slot]bool), started: p.clock.Now(), waiters: []chan error{done}}
	p.dropRecycles()
	for _, s := range p.slots {
		if !s.removing && (only < 0 || s.id == only) {
			r.queue = append(r.queue, s)
		}
	}
	p.rollout = r
	p.emit(Event{Type: EventRolloutStarted, Slot: only, Workers: len(r.queue)})
	p.rolloutStep()
	return nil
}

// rolloutStep retires finished slots and starts replacements while fewer
// than MaxSurge are in flight.
func (p *Pool) rolloutStep() {
	r := p.rollout
	if r == nil {
		return
	}
	for s, w := range r.inflight {
		if s.cur == w && w.ready {
			delete(r.inflight, s)
		}
	}
	// The replacements of one step start together (see startWorkers).
	var step []*slot
	for r.err == nil && len(r.inflight)+len(r.stopping)+len(step) < p.cfg.MaxSurge && len(r.queue) > 0 {
		s := r.queue[0]
		r.queue = r.queue[1:]
		if r.rebalance {
			p.rebalanceSlot(r, s)
			continue
		}
		if s.disabled {
			s.enable()
			p.cfg.Logger.Info("slot enabled again by a restart", "slot", s.id)
		}
		if s.next != nil {
			p.stopWorker(s.next, "rollout superseded")
			s.next = nil
			p.recycleEnded(s, false)
		}
		s.replaceReason = "rollout"
		step = append(step, s)
	}
	ws, errs := p.startWorkers(step, "rollout")
	for i, s := range step {
		if errs[i] != nil {
			if r.err == nil {
				r.err = fmt.Errorf("new worker of slot %d could not start: %w", s.id, errs[i])
			}
			continue
		}
		r.inflight[s] = ws[i]
	}
	if len(r.inflight) == 0 && len(r.stopping) == 0 && (len(r.queue) == 0 || r.err != nil) {
		p.finishRollout(r.err)
	}
}

// rebalanceSlot replaces the worker of s for the cluster view, unless it
// is no longer stale: with FollowStopFirst a worker holding an index is
// stopped first (clusterExited starts its replacement once its exit is
// reaped); otherwise the replacement starts beside it.
func (p *Pool) rebalanceSlot(r *rollout, s *slot) {
	if !p.stale(s) {
		return
	}
	if p.cfg.Follow == FollowStopFirst && s.cur.index >= 0 {
		r.stopping[s] = true
		p.stopWorker(s.cur, stopRebalance)
		return
	}
	s.replaceReason = stopRebalance
	if w, err := p.startWorker(s, stopRebalance); err == nil {
		r.inflight[s] = w
	}
}

// rolloutFailed records that the replacement of s failed.
func (p *Pool) rolloutFailed(s *slot, err error) {
	r := p.rollout
	delete(r.inflight, s)
	if r.err == nil {
		r.err = err
	}
	p.rolloutStep()
}

// dropFromRollout forgets s, which is being scaled away.
func (p *Pool) dropFromRollout(s *slot) {
	r := p.rollout
	if r == nil {
		return
	}
	delete(r.inflight, s)
	delete(r.stopping, s)
	for i, q := range r.queue {
		if q == s {
			r.queue = append(r.queue[:i:i], r.queue[i+1:]...)
			break
		}
	}
	p.rolloutStep()
}

func (p *Pool) finishRollout(err error) {
	r := p.rollout
	p.rollout = nil
	d := p.clock.Now().Sub(r.started)
	reason := ""
	if r.rebalance {
		reason = stopRebalance
	}
	if err != nil {
		p.counts.rolloutsKO++
		p.emit(Event{Type: EventRolloutFailed, Slot: -1, Err: err, Delay: d, Reason: reason})
	} else {
		p.counts.rolloutsDone++
		p.emit(Event{Type: EventRolloutFinished, Slot: -1, Delay: d, Reason: reason})
	}
	for _, c := range r.waiters {
		c <- err
	}
	p.nextRecycle()
	p.converge() // a view that came during the rollout
}
