package membership

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// errCommitMoved is a plan refused because the commit it was based on is
// no longer the latest: the node's state is behind, and settle retries.
var errCommitMoved = errors.New("the commit moved; planning again")

// sequencer is the state of the node elected to rebalance the cluster:
// it publishes plans, waits for the acknowledgements of the instances
// whose indices a plan changes, and commits. Every write is a transaction
// fenced by its election key's CreateRevision.
type sequencer struct {
	key       string // election leader key
	rev       int64  // its CreateRevision
	pending   *plan
	wait      map[string]waiter
	acks      clientv3.WatchChan
	ackCancel context.CancelFunc
	ready     bool // the acknowledgement watch runs
	catchUp   bool // acknowledgements may have been missed
	timer     *time.Timer
}

// waiter is an instance whose acknowledgement the sequencer waits for.
type waiter struct {
	lease    int64
	deadline time.Time // after this, the instance has fenced itself
}

// newSequencer returns the sequencer state of the leader key at rev.
func newSequencer(key string, rev int64) *sequencer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &sequencer{key: key, rev: rev, timer: t}
}

// acksC returns the acknowledgement watch channel; nil-safe.
func (s *sequencer) acksC() clientv3.WatchChan {
	if s == nil {
		return nil
	}
	return s.acks
}

// timerC returns the acknowledgement timeout channel; nil-safe.
func (s *sequencer) timerC() <-chan time.Time {
	if s == nil {
		return nil
	}
	return s.timer.C
}

// leaderIs returns the comparison that fences a write to this leader.
func (s *sequencer) leaderIs() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(s.key), "=", s.rev)
}

// step moves the rebalance on: a new plan when the member list no longer
// matches the commit (or the pending plan), a commit once every needed
// acknowledgement is in. It first makes sure the acknowledgement watch
// runs: created from the present, before any plan, so that it never waits
// on etcd's catch-up loop for watches that start in the past.
func (s *sequencer) step(ctx context.Context, n *node) error {
	if s.acks == nil {
		s.watchAcks(ctx, n)
	}
	if !s.ready {
		return nil
	}
	if s.catchUp && s.pending != nil {
		if err := s.listAcks(ctx, n); err != nil {
			return err
		}
	}
	s.catchUp = false
	desired, total := assign(n.members, n.o.order)
	if s.pending != nil && desired.equal(s.pending.Assignments) {
		s.dropVanished(n)
		if len(s.wait) == 0 {
			return s.commit(ctx, n)
		}
		return nil
	}
	if s.pending == nil && n.pending() == nil {
		if n.commit != nil && desired.equal(n.commit.Assignments) {
			return nil
		}
		if n.commit == nil && len(desired) == 0 {
			return nil
		}
	}
	return s.publish(ctx, n, desired, total)
}

// publish writes a plan for desired over the latest commit and computes
// whose acknowledgements it needs: the live instances of the commit whose
// slot the plan does not contain.
func (s *sequencer) publish(ctx context.Context, n *node, desired assignment, total int) error {
	var base int64
	var from assignment
	if n.commit != nil {
		base, from = n.commit.rev, n.commit.Assignments
	}
	p := &plan{EpochPrev: base, Assignments: desired, Total: total}
	cctx, cancel := n.callCtx(ctx)
	defer cancel()
	resp, err := n.cli.Txn(cctx).
		If(s.leaderIs(), clientv3.Compare(clientv3.ModRevision(n.lay.commit()), "=", base)).
		Then(clientv3.OpPut(n.lay.plan(), encode(p))).
		Else(clientv3.OpGet(s.key), clientv3.OpGet(n.lay.commit())).
		Commit()
	if err != nil {
		return fmt.Errorf("publish plan: %w", err)
	}
	if !resp.Succeeded {
		return s.refused(n, resp)
	}
	written := time.Now()
	p.rev = resp.Header.Revision
	s.pending, n.plan = p, p
	s.wait = map[string]waiter{}
	for id, was := range from {
		m, live := n.members[id]
		if !live || m.lease != was.Lease || desired.slotOf(id, was.Lease).contains(was) {
			continue
		}
		s.wait[id] = waiter{lease: was.Lease, deadline: written.Add(m.ttl(n.o.ttl))}
	}
	n.log.Info("plan published", "rev", p.rev, "total", total, "epoch_prev", base, "acks_needed", len(s.wait))
	s.resetTimer()
	if len(s.wait) == 0 {
		return s.commit(ctx, n)
	}
	return nil
}

// refused handles a plan or commit transaction whose condition failed: a
// lost leadership ends the sequencer; a moved commit is applied.
func (s *sequencer) refused(n *node, resp *clientv3.TxnResponse) error {
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 || kvs[0].CreateRevision != s.rev {
		n.log.Warn("no longer sequencer")
		n.stopSequencer()
		return nil
	}
	if len(resp.Responses) > 1 {
		for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
			n.applyPlan(&n.commit, kv.Value, kv.ModRevision)
		}
	}
	s.pending = nil
	s.timer.Stop()
	return errCommitMoved
}

// watchAcks starts watching every acknowledgement from now on; the
// sequencer is ready once etcd confirms the watch.
func (s *sequencer) watchAcks(ctx context.Context, n *node) {
	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	s.acks, s.ackCancel = n.cli.Watch(wctx, n.lay.acks(), clientv3.WithPrefix(), clientv3.WithCreatedNotify()), wcancel
	s.ready = false
}

// listAcks reads the acknowledgements of the pending plan written while
// no watch ran.
func (s *sequencer) listAcks(ctx context.Context, n *node) error {
	cctx, cancel := n.callCtx(ctx)
	defer cancel()
	resp, err := n.cli.Get(cctx, n.lay.ackPrefix(s.pending.rev), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("list acknowledgements: %w", err)
	}
	for _, kv := range resp.Kvs {
		s.ack(n, kv)
	}
	return nil
}

// onAcks applies an acknowledgement watch response.
func (s *sequencer) onAcks(n *node, wr clientv3.WatchResponse, ok bool) {
	if !ok || wr.Canceled || wr.Err() != nil {
		s.stopAcks() // step watches again, then lists what it missed
		s.catchUp = true
		return
	}
	if wr.Created {
		s.ready = true
	}
	for _, ev := range wr.Events {
		if ev.Type == mvccpb.PUT && s.pending != nil {
			s.ack(n, ev.Kv)
		}
	}
}

// ack counts an acknowledgement key of the pending plan.
func (s *sequencer) ack(n *node, kv *mvccpb.KeyValue) {
	id, ok := strings.CutPrefix(string(kv.Key), n.lay.ackPrefix(s.pending.rev))
	if !ok {
		return // another plan's
	}
	lease, err := strconv.ParseInt(string(kv.Value), 10, 64)
	if w, ok := s.wait[id]; ok && err == nil && w.lease == lease {
		delete(s.wait, id)
	}
}

// dropVanished stops waiting for instances whose member key is gone: they
// gave up their indices before leaving, or before their lease expired.
func (s *sequencer) dropVanished(n *node) {
	for id, w := range s.wait {
		if m, ok := n.members[id]; !ok || m.lease != w.lease {
			delete(s.wait, id)
		}
	}
}

// onTimeout stops waiting for instances past their deadline: a TTL after
// the plan was written, by which an instance that has not seen it has
// fenced itself (see the package documentation).
func (s *sequencer) onTimeout(n *node) {
	now := time.Now()
	for id, w := range s.wait {
		if !now.Before(w.deadline) {
			n.log.Warn("committing without an instance that did not acknowledge within its TTL", "member", id)
			delete(s.wait, id)
		}
	}
	s.resetTimer()
}

// resetTimer sets the timer to the earliest deadline still waited for.
func (s *sequencer) resetTimer() {
	s.timer.Stop()
	var first time.Time
	for _, w := range s.wait {
		if first.IsZero() || w.deadline.Before(first) {
			first = w.deadline
		}
	}
	if !first.IsZero() {
		s.timer.Reset(time.Until(first))
	}
}

// commit writes the pending plan as the commit, whose revision is the new
// epoch, and deletes the acknowledgements.
func (s *sequencer) commit(ctx context.Context, n *node) error {
	c := *s.pending
	c.PlanRev = s.pending.rev
	cctx, cancel := n.callCtx(ctx)
	defer cancel()
	resp, err := n.cli.Txn(cctx).
		If(s.leaderIs(), clientv3.Compare(clientv3.ModRevision(n.lay.plan()), "=", c.PlanRev)).
		Then(clientv3.OpPut(n.lay.commit(), encode(c)), clientv3.OpDelete(n.lay.acks(), clientv3.WithPrefix())).
		Else(clientv3.OpGet(s.key)).
		Commit()
	if err != nil {
		return fmt.Errorf("commit plan %d: %w", c.PlanRev, err)
	}
	if !resp.Succeeded {
		return s.refused(n, resp)
	}
	c.rev = resp.Header.Revision
	n.log.Info("committed", "epoch", c.rev, "total", c.Total, "members", len(c.Assignments))
	if n.commit == nil || n.commit.rev < c.rev {
		n.commit = &c
	}
	s.pending = nil
	s.timer.Stop()
	return nil
}

// stopAcks stops the acknowledgement watch.
func (s *sequencer) stopAcks() {
	if s.ackCancel != nil {
		s.ackCancel()
	}
	s.acks, s.ackCancel, s.ready = nil, nil, false
}

// stopSequencer ends this node's sequencer role.
func (n *node) stopSequencer() {
	if n.seq != nil {
		n.seq.stopAcks()
		n.seq.timer.Stop()
		n.seq = nil
	}
}
