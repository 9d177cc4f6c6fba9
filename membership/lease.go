package membership

import (
	"context"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// onRenewal handles a renewal: a lost lease or member key ends the
// incarnation; keys older than the node knew them mean the registry lost
// its data; otherwise the fence deadline moves and what changed is applied.
func (n *node) onRenewal(r renewal) {
	if r.inc != n.inc {
		return // of an incarnation that has ended
	}
	switch {
	case r.lost:
		n.lose("lease expired")
		return
	case r.err != nil:
		n.log.Debug("renewal failed", "err", r.err)
		n.suspect()
		return
	}
	if n.observe("renewal", r.read.Header, r.floor) != nil {
		return
	}
	if !r.read.Succeeded && !n.applyRead(r.read.Responses, r.k) {
		return
	}
	n.extend(r.sent)
	if rs := r.read.Responses; r.k.members && len(rs) > 1 {
		n.checks.budget--
		if n.checkMembersWatch(rs[len(rs)-2], rs[len(rs)-1]) {
			n.checks.clean--
		}
		if n.checks.clean <= 0 || n.checks.budget <= 0 {
			n.checks = watchChecks{}
		}
	}
}

// suspect makes the next renewals check the members watch: contact with
// etcd was lost, and etcd may have come back restored from a backup. The
// check reads every member key's index in etcd, so it is made after a
// loss of contact only, until it has found the watch consistent four
// times or made 24 checks, not in steady state (nor on every renewal of a
// node that keeps losing contact, which would load etcd the more).
func (n *node) suspect() {
	if n.checks.budget == 0 {
		n.checks = watchChecks{clean: 4, budget: 24}
	}
}

// watchChecks counts the checks of the members watch still to make: until
// clean of them found it consistent, or budget were made.
type watchChecks struct{ clean, budget int }

// checkMembersWatch compares the latest change to a member key and the
// number of member keys, read by a renewal, with what the members watch
// has delivered. A watch resumed by the client on an etcd restored from a
// backup waits for a revision the server has not reached, and misses what
// was written below it, without an error. If two renewals in a row find
// the members unchanged in etcd but not as the node knows them, the node
// lists the members again.
func (n *node) checkMembersWatch(latest, count *pb.ResponseOp) (consistent bool) {
	var rev int64
	if kvs := latest.GetResponseRange().Kvs; len(kvs) > 0 {
		rev = kvs[0].ModRevision
	}
	keys := count.GetResponseRange().Count
	if rev <= n.membSeen && keys == int64(len(n.members)+len(n.foreign)) {
		n.membLag = 0
		return true
	}
	if n.membLag != rev {
		n.membLag = rev // maybe on its way: look again next time
		return false
	}
	n.log.Warn("the members watch missed a change: listing the members again", "rev", rev, "seen", n.membSeen,
		"keys", keys, "known", len(n.members))
	n.memb.stop()
	n.membLag = 0
	return false
}

// applyRead applies the keys a renewal read because they differed from
// k, what the node knew of them when it sent the renewal, and reports
// whether the incarnation goes on. The node may know newer ones by now (a
// plan it published meanwhile): only a read older than k, which was
// written before the renewal was sent, means the registry went back.
func (n *node) applyRead(rs []*pb.ResponseOp, k known) bool {
	kv := func(i int) *mvccpb.KeyValue {
		if kvs := rs[i].GetResponseRange().Kvs; len(kvs) > 0 {
			return kvs[0]
		}
		return nil
	}
	base, own, commit, plan := kv(0), kv(1), kv(2), kv(3)
	switch {
	case base == nil || n.reg.base == nil || string(base.Value) != n.reg.base.raw:
		n.newRegistry("the registry base changed")
		return false
	case own == nil || clientv3.LeaseID(own.Lease) != n.inc.lease:
		n.lose("member key gone")
		return false
	case own.ModRevision < k.member:
		n.newRegistry("our member key is older than our last write")
		return false
	case older(commit, k.commit) || older(plan, k.plan):
		n.newRegistry("the commit or plan is older than one seen")
		return false
	}
	n.memberRev = max(n.memberRev, own.ModRevision)
	if plan != nil { // the plan first: the commit may commit it
		n.applyPlanKey(plan.Value, plan.ModRevision, false)
	}
	if commit != nil {
		n.applyCommitKey(commit.Value, commit.ModRevision, false)
	}
	return true
}

// older reports whether kv, read now, is missing or older than rev, its
// revision known before: only a registry that lost data goes back.
func older(kv *mvccpb.KeyValue, rev int64) bool {
	return rev != 0 && (kv == nil || kv.ModRevision < rev)
}

// onDeadline fences the node unless a renewal that came in meanwhile put
// the deadline off: the loop may wake up to both at once after a long
// call.
func (n *node) onDeadline() {
	select {
	case r := <-n.inc.renewalsC():
		n.onRenewal(r)
	default:
	}
	if n.inc != nil && !time.Now().Before(n.fenceAt) {
		n.lose(fmt.Sprintf("no lease renewal for %s", n.o.ttl-n.margin()))
	}
}

// lose ends the incarnation after giving up every index, before etcd can
// expire the lease; settle then registers anew.
func (n *node) lose(why string) {
	if n.inc == nil {
		return
	}
	n.log.Warn("fenced: giving up indices and re-joining", "why", why)
	n.suspect()
	n.emit(fenceView(n.o.threads))
	n.stopSequencer()
	n.inc.end()
	n.oldLease = n.inc.lease
	n.inc = nil
	n.deadline.Stop()
	n.fenceAt = time.Time{}
}

// campaign runs the sequencer election for inc in the background; a won
// election arrives on inc.elected. The election's session is orphaned at
// once: its own keepalive would renew the lease whether or not the loop
// runs, and a node whose loop is stuck must expire.
func (n *node) campaign(inc *incarnation) {
	sess, err := concurrency.NewSession(n.cli, concurrency.WithLease(inc.lease), concurrency.WithContext(inc.ctx))
	if err != nil {
		n.log.Warn("sequencer election: no session", "err", err)
		return
	}
	sess.Orphan()
	inc.sess = sess
	inc.elect = concurrency.NewElection(sess, n.lay.election())
	n.s.bg.Add(1)
	go func() {
		defer n.s.bg.Done()
		for {
			err := inc.elect.Campaign(inc.ctx, n.o.id)
			n.log.Debug("campaign returned", "err", err)
			if err == nil {
				inc.elected <- &election{inc: inc, key: inc.elect.Key(), rev: inc.elect.Rev()}
				return
			}
			select {
			case <-inc.ctx.Done():
				return
			case <-time.After(n.every()):
			}
		}
	}()
}

// onElected makes this node the sequencer.
func (n *node) onElected(e *election) {
	if e.inc != n.inc {
		return
	}
	n.inc.leader = true
	n.log.Info("elected sequencer", "rev", e.rev)
	n.seq = newSequencer(e.key, e.rev)
}

// setThreads publishes a new thread count for this instance.
func (n *node) setThreads(ctx context.Context, threads int) error {
	n.o.threads = threads
	if n.inc == nil {
		return nil // published when it registers
	}
	cctx, cancel := n.callCtx(ctx)
	defer cancel()
	key := n.lay.member(n.o.id)
	floor := n.reg.maxRev
	resp, err := n.cli.Txn(cctx).
		If(clientv3.Compare(clientv3.LeaseValue(key), "=", n.inc.lease), n.baseIs()).
		Then(clientv3.OpPut(key, n.record(), clientv3.WithLease(n.inc.lease))).
		Else(clientv3.OpGet(n.lay.epoch())).Commit()
	if err != nil {
		return fmt.Errorf("membership: set threads: %w", err)
	}
	if err := n.observe("thread count update", resp.Header, floor); err != nil {
		return fmt.Errorf("membership: set threads: %w", err)
	}
	if !resp.Succeeded {
		if err := n.checkBase(resp.Responses[0]); err != nil {
			return fmt.Errorf("membership: set threads: %w", err)
		}
		n.lose("member key gone")
		return fmt.Errorf("membership: set threads: member key gone; re-joining")
	}
	n.memberRev = resp.Header.Revision
	return nil
}
