package supervisor

import (
	"context"
	"time"
)

// Follow is how a pool's workers follow a new cluster view (SetClusterView).
type Follow int

const (
	// FollowNone leaves the workers running: they learn views another way
	// (over IPC, from a signal) or not at all.
	FollowNone Follow = iota
	// FollowSurge replaces each worker whose index or total the view
	// changed, slot by slot, a new worker beside the old one as in a
	// rolling restart. For eventual consistency, which promises no
	// uniqueness.
	FollowSurge
	// FollowStopFirst keeps indices unique. A worker holds the index it
	// started with from its start until its exit is reaped: one whose
	// index the view takes away is stopped at once; one whose total
	// changed is stopped before its replacement starts; and no worker
	// starts with an index another live worker holds (it gets -1, and is
	// replaced once the index is free). For strict consistency.
	FollowStopFirst
)

// String names f as herd's logs do.
func (f Follow) String() string {
	switch f {
	case FollowSurge:
		return "surge"
	case FollowStopFirst:
		return "stop-first"
	}
	return "none"
}

// stopRebalance is the reason of a worker stopped for a new cluster view.
const stopRebalance = "rebalance"

// releaseWait is a Release call waiting for the workers that hold indices
// its planned view takes from them to be gone.
type releaseWait struct {
	planned ClusterView
	done    chan struct{}
}

// SetClusterView makes v this node's share of a multi-node cluster: the
// workers started from now on get it, Stats reports it, and the workers
// whose index or total differ from what v gives their slot are replaced
// as Config.Follow says. Views are never dropped: one that arrives during
// a rollout is what the rollout's new workers start with, and the workers
// started before it are replaced when the rollout ends.
func (p *Pool) SetClusterView(v ClusterView) {
	_ = p.post(func() {
		p.cluster = &v
		clear(p.withheld)
		p.converge()
	})
}

// LaunchView returns the cluster-wide index, the total and the epoch the
// worker of slot is started with: -1 before any view, and with
// FollowStopFirst also while another live worker holds the slot's index.
// It reads the pool's state unguarded: only the Launcher may call it, from
// Launch, which runs on the pool's goroutine.
func (p *Pool) LaunchView(slot int) (index, total int, epoch int64) {
	if p.cluster == nil {
		return -1, 0, 0
	}
	v := *p.cluster
	index = v.SlotIndex(slot)
	if p.cfg.Follow == FollowStopFirst && index >= 0 && (p.holder(index) != nil || p.withheld[slot]) {
		index = -1
	}
	return index, v.Total, v.Epoch
}

// Release stops every worker that holds an index the planned view does not
// give its slot, kills those still running after grace, and returns once
// all of them have exited and been reaped, or ctx is done. A strict node
// calls it before it acknowledges a plan. The slots start new workers at
// once, with no index until the next SetClusterView.
func (p *Pool) Release(ctx context.Context, planned ClusterView, grace time.Duration) error {
	done := make(chan struct{})
	if err := p.call(ctx, func() { p.release(planned, grace, done) }); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-p.stopped:
		return nil // every worker is gone
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Pool) release(planned ClusterView, grace time.Duration, done chan struct{}) {
	for _, w := range p.losers(planned) {
		if p.withheld == nil {
			p.withheld = make(map[int]bool)
		}
		p.withheld[w.slot.id] = true
		p.stopWorker(w, stopRebalance)
		stopTimer(&w.killTimer)
		w.killTimer = p.after(grace, func() {
			if p.byPID[w.pid] == w {
				p.cfg.Logger.Warn("worker did not give up its index in time, killing it", "slot", w.slot.id, "pid", w.pid)
				_ = w.proc.Kill()
			}
		})
	}
	p.releases = append(p.releases, releaseWait{planned: planned, done: done})
	p.checkReleases()
}

// losers returns the live workers holding an index v does not give their
// slot.
func (p *Pool) losers(v ClusterView) []*worker {
	var ws []*worker
	for _, w := range p.byPID {
		if w.index >= 0 && w.index != v.SlotIndex(w.slot.id) {
			ws = append(ws, w)
		}
	}
	return ws
}

// checkReleases ends the Release calls whose workers are all gone.
func (p *Pool) checkReleases() {
	kept := p.releases[:0]
	for _, r := range p.releases {
		if p.shutdown == nil && len(p.losers(r.planned)) > 0 {
			kept = append(kept, r)
			continue
		}
		close(r.done)
	}
	p.releases = kept
}

// noteView records in w the view it is launched with, as LaunchView gave
// it to the Launcher: startWorker calls it before w joins byPID.
func (p *Pool) noteView(w *worker) {
	w.index, w.total, w.epoch = p.LaunchView(w.slot.id)
}

// holder returns the live worker holding index i, or nil.
func (p *Pool) holder(i int) *worker {
	for _, w := range p.byPID {
		if w.index == i {
			return w
		}
	}
	return nil
}

// converge brings the workers in line with the cluster view, as
// Config.Follow says: with FollowStopFirst it stops at once the workers
// whose index the view takes away; then, unless a rollout runs (its end
// calls converge again), it starts one over the slots whose worker is
// stale.
func (p *Pool) converge() {
	defer p.checkReleases()
	if p.cluster == nil || p.cfg.Follow == FollowNone || p.shutdown != nil {
		return
	}
	if p.cfg.Follow == FollowStopFirst {
		for _, w := range p.losers(*p.cluster) {
			if !w.stopping {
				p.stopWorker(w, stopRebalance)
			}
		}
	}
	if p.rollout != nil {
		return
	}
	var stale []*slot
	for _, s := range p.slots {
		if p.stale(s) {
			stale = append(stale, s)
		}
	}
	if len(stale) > 0 {
		p.startRebalance(stale)
	}
}

// stale reports whether s's worker should be replaced for the cluster
// view: it started with another index, or, holding one, another total;
// and, with FollowStopFirst, the slot's index is not held by another
// worker, so that its replacement would get it.
func (p *Pool) stale(s *slot) bool {
	w := s.cur
	if w == nil || w.stopping || s.next != nil || s.removing || s.disabled {
		return false
	}
	want := p.cluster.SlotIndex(s.id)
	if w.index == want && (want < 0 || w.total == p.cluster.Total) {
		return false
	}
	if p.cfg.Follow == FollowStopFirst && want >= 0 {
		if h := p.holder(want); h != nil && h != w {
			return false // its holder is on its way out: the slot waits for it
		}
	}
	return true
}

// startRebalance starts a rollout of the stale slots q.
func (p *Pool) startRebalance(q []*slot) {
	p.rollout = &rollout{queue: q, inflight: make(map[*slot]*worker), stopping: make(map[*slot]bool),
		started: p.clock.Now(), rebalance: true}
	p.emit(Event{Type: EventRolloutStarted, Slot: -1, Workers: len(q), Reason: stopRebalance})
	p.rolloutStep()
}

// clusterExited follows the exit of w, once onExit has handled it: a slot
// whose worker was stopped for the cluster view starts its next worker at
// once, and the view is converged on again, as the exit may have freed
// an index.
func (p *Pool) clusterExited(w *worker) {
	s := w.slot
	if w.stopReason == stopRebalance && p.shutdown == nil && !s.removing && !s.disabled && s.cur == nil && s.next == nil {
		nw, err := p.startWorker(s, stopRebalance) // a failure is handled as a crash
		if r := p.rollout; r != nil && r.stopping[s] {
			delete(r.stopping, s)
			if err == nil {
				r.inflight[s] = nw
			}
			p.rolloutStep()
		}
	}
	p.converge()
}
