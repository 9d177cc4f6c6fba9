package membership

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// errCommitMoved is a plan refused because the commit it was based on is
// no longer the latest: the node's state is behind, and settle retries.
var errCommitMoved = errors.New("the commit moved; planning again")

// Batching: the sequencer publishes a plan once the member list has been
// quiet for gatherQuiet, or gatherMax after the first change it has not
// planned yet, so that a burst of joins or leaves makes one plan.
const (
	gatherQuiet = 25 * time.Millisecond
	gatherMin   = 200 * time.Millisecond
	gatherCap   = 2 * time.Second
)

// gatherMax is how long the sequencer gathers changes at most in a
// cluster of n instances: a plan costs every instance a read of all n, so
// larger clusters batch more.
func gatherMax(n int) time.Duration {
	return min(gatherMin+time.Duration(n)*time.Millisecond, gatherCap)
}

// sequencer is the state of the node elected to rebalance the cluster:
// it publishes plans, waits for the acknowledgements of the instances
// whose indices a plan changes, and commits. Every write is a transaction
// fenced by its election key's CreateRevision and the registry's base.
// One plan is in flight at a time: changes that arrive meanwhile go into
// the next one.
type sequencer struct {
	key       string // election leader key
	rev       int64  // its CreateRevision
	pending   *plan
	desired   assignment // the whole assignment pending makes
	wait      map[string]waiter
	acks      clientv3.WatchChan
	ackCancel context.CancelFunc
	ready     bool // the acknowledgement watch runs
	catchUp   bool // acknowledgements may have been missed
	timer     *time.Timer
	wake      *time.Timer // gathering and the first commit's wait
	gathering time.Time   // first change not planned yet; zero when none
	noCommit  time.Time   // when the sequencer found no commit; zero when it did
}

// waiter is an instance whose acknowledgement the sequencer waits for.
type waiter struct {
	lease    int64
	deadline time.Time // after this, the instance has fenced itself
}

// newSequencer returns the sequencer state of the leader key at rev.
func newSequencer(key string, rev int64) *sequencer {
	return &sequencer{key: key, rev: rev, timer: stoppedTimer(), wake: stoppedTimer()}
}

// timerC returns the acknowledgement timeout channel; nil-safe.
func (s *sequencer) timerC() <-chan time.Time {
	if s == nil {
		return nil
	}
	return s.timer.C
}

// wakeC returns the channel of the gathering and first-commit timer;
// nil-safe.
func (s *sequencer) wakeC() <-chan time.Time {
	if s == nil {
		return nil
	}
	return s.wake.C
}

// leaderIs returns the comparison that fences a write to this leader.
func (s *sequencer) leaderIs() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(s.key), "=", s.rev)
}

// step moves the rebalance on: a commit once every needed acknowledgement
// of the pending plan is in; otherwise a new plan when the member list no
// longer matches the commit, once the changes are gathered. It first makes
// sure the acknowledgement watch runs: created from the present, before
// any plan, so that it never waits on etcd's catch-up loop for watches
// that start in the past.
func (s *sequencer) step(ctx context.Context, n *node) error {
	if s.acks == nil {
		s.watchAcks(ctx, n)
	}
	if !s.ready || n.reg.base == nil || n.memb.ch == nil {
		return nil // the acknowledgement watch, the base or the members are not there yet
	}
	if s.catchUp && s.pending != nil {
		if err := s.listAcks(ctx, n); err != nil {
			return err
		}
	}
	s.catchUp = false
	if s.pending != nil {
		s.dropVanished(n)
		if len(s.wait) == 0 {
			return s.commit(ctx, n)
		}
		return nil
	}
	desired, total := assign(n.members, n.o.order)
	c := n.validCommit()
	if n.pending() == nil && (c != nil && desired.equal(c.as) || c == nil && len(desired) == 0) {
		s.gathering = time.Time{}
		return nil
	}
	if !s.due(n, c) {
		return nil
	}
	s.gathering = time.Time{}
	return s.publish(ctx, n, desired, total)
}

// due reports whether a plan may be published now; if not, the wake timer
// is set for when it may. The first commit of a registry waits for the
// largest TTL of the instances, counted from when the sequencer found no
// commit, so that instances still holding indices of a registry that lost
// its data have fenced themselves. Then changes are gathered.
func (s *sequencer) due(n *node, c *committed) bool {
	now := time.Now()
	at := now
	if c == nil {
		if s.noCommit.IsZero() {
			s.noCommit = now
			n.log.Info("no commit: waiting for the largest TTL before the first", "ttl", n.maxTTL())
		}
		at = s.noCommit.Add(n.maxTTL())
	}
	if s.gathering.IsZero() {
		s.gathering = now
	}
	quiet, capped := n.memChanged.Add(gatherQuiet), s.gathering.Add(gatherMax(len(n.members)))
	if capped.Before(quiet) {
		quiet = capped
	}
	at = later(at, quiet)
	if now.Before(at) {
		s.wake.Reset(at.Sub(now))
		return false
	}
	return true
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// maxTTL is the largest TTL among the instances listed and this one.
func (n *node) maxTTL() time.Duration {
	ttl := n.o.ttl
	for _, m := range n.members {
		ttl = max(ttl, m.ttl(n.o.ttl))
	}
	return ttl
}

// publish writes a plan for desired over the latest commit (its changes
// to it) and computes whose acknowledgements it needs: the live instances
// of the commit whose slot the plan does not contain.
func (s *sequencer) publish(ctx context.Context, n *node, desired assignment, total int) error {
	var keyRev, prev int64
	var from assignment
	if n.commit != nil {
		keyRev = n.commit.rev
	}
	if c := n.validCommit(); c != nil {
		prev, from = c.rev, c.as
	}
	set, drop := diff(from, desired)
	p := &plan{EpochPrev: prev, Set: set, Drop: drop, Total: total, Reg: n.reg.base.ID}
	cctx, cancel := n.callCtx(ctx)
	defer cancel()
	floor := n.reg.maxRev
	resp, err := n.cli.Txn(cctx).
		If(s.leaderIs(), clientv3.Compare(clientv3.ModRevision(n.lay.commit()), "=", keyRev), n.baseIs()).
		Then(clientv3.OpPut(n.lay.plan(), encode(p))).
		Else(clientv3.OpGet(s.key), clientv3.OpGet(n.lay.commit()), clientv3.OpGet(n.lay.epoch())).
		Commit()
	if err != nil {
		return fmt.Errorf("publish plan: %w", err)
	}
	if err := n.observe("plan", resp.Header, floor); err != nil {
		return err
	}
	if !resp.Succeeded {
		return s.refused(n, resp)
	}
	written := time.Now()
	p.rev = resp.Header.Revision
	s.pending, s.desired, n.plan = p, desired, p
	s.wait = map[string]waiter{}
	for id, was := range from {
		m, live := n.members[id]
		if !live || m.lease != was.Lease || desired.slotOf(id, was.Lease).contains(was) {
			continue
		}
		s.wait[id] = waiter{lease: was.Lease, deadline: written.Add(m.ttl(n.o.ttl))}
	}
	n.log.Info("plan published", "rev", p.rev, "total", total, "members", len(desired), "changes", len(set)+len(drop),
		"epoch_prev", prev, "acks_needed", len(s.wait))
	s.resetTimer()
	if len(s.wait) == 0 {
		return s.commit(ctx, n)
	}
	return nil
}

// refused handles a plan or commit transaction whose condition failed: a
// changed registry base makes the registry new; a lost leadership ends the
// sequencer; a moved commit is applied.
func (s *sequencer) refused(n *node, resp *clientv3.TxnResponse) error {
	if err := n.checkBase(resp.Responses[2]); err != nil {
		return err
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 || kvs[0].CreateRevision != s.rev {
		n.log.Warn("no longer sequencer")
		n.stopSequencer()
		return nil
	}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		n.applyCommitKey(kv.Value, kv.ModRevision, false)
	}
	s.pending = nil
	s.timer.Stop()
	return errCommitMoved
}

// commit writes the commit of the pending plan, whose revision gives the
// epoch, and the snapshot of the whole assignment beside it, and deletes
// the acknowledgements.
func (s *sequencer) commit(ctx context.Context, n *node) error {
	p := s.pending
	c := commit{PlanRev: p.rev, Total: p.Total, Reg: p.Reg}
	snap := snapshot{Assignments: s.desired, Total: p.Total, Reg: p.Reg}
	cctx, cancel := n.callCtx(ctx)
	defer cancel()
	floor := n.reg.maxRev
	resp, err := n.cli.Txn(cctx).
		If(s.leaderIs(), clientv3.Compare(clientv3.ModRevision(n.lay.plan()), "=", p.rev), n.baseIs()).
		Then(clientv3.OpPut(n.lay.commit(), encode(c)), clientv3.OpPut(n.lay.snapshot(), encode(snap)),
			clientv3.OpDelete(n.lay.acks(), clientv3.WithPrefix())).
		Else(clientv3.OpGet(s.key), clientv3.OpGet(n.lay.commit()), clientv3.OpGet(n.lay.epoch())).
		Commit()
	if err != nil {
		return fmt.Errorf("commit plan %d: %w", p.rev, err)
	}
	if err := n.observe("commit", resp.Header, floor); err != nil {
		return err
	}
	if !resp.Succeeded {
		return s.refused(n, resp)
	}
	c.rev = resp.Header.Revision
	n.log.Info("committed", "epoch", n.reg.base.epochOf(c.rev), "rev", c.rev, "total", c.Total, "members", len(s.desired))
	if n.commit == nil || n.commit.rev < c.rev {
		n.commit = &c
		n.committed = &committed{as: s.desired, total: c.Total, rev: c.rev, planRev: c.PlanRev, reg: c.Reg}
	}
	s.pending, s.desired, s.noCommit = nil, nil, time.Time{}
	s.timer.Stop()
	return nil
}

// stopSequencer ends this node's sequencer role.
func (n *node) stopSequencer() {
	if n.seq != nil {
		n.seq.stopAcks()
		n.seq.timer.Stop()
		n.seq.wake.Stop()
		n.seq = nil
	}
}
