package membership

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// incarnation is one registration of the instance: a lease, the member
// key on it, the renewal in flight and the campaign to be sequencer. A
// lost lease ends the incarnation; the next one has a new lease and a new
// member key.
type incarnation struct {
	lease    clientv3.LeaseID
	ctx      context.Context
	cancel   context.CancelFunc
	renewals chan renewal   // the latest renewal not yet handled
	nudge    chan struct{}  // asks for a renewal now
	elected  chan *election // the campaign's result
	sess     *concurrency.Session
	elect    *concurrency.Election
	leader   bool
	wg       sync.WaitGroup
}

// renewal is the outcome of one renewal: a lease keepalive and a
// comparison of the keys the node follows with what it knows of them,
// both sent at or after sent, when the highest revision seen was floor.
type renewal struct {
	inc   *incarnation
	sent  time.Time
	floor int64
	k     known // what it compared
	lost  bool  // the lease is gone
	err   error // the renewal failed otherwise
	read  *clientv3.TxnResponse
}

// known is what a renewal compares: the ModRevisions of the keys as the
// node knows them (0 for none), and the registry base's value.
type known struct {
	member, commit, plan int64
	base                 string
	members              bool // check the members watch (see checkMembersWatch)
}

// election is a won campaign.
type election struct {
	inc *incarnation
	key string
	rev int64
}

// renewalsC returns the renewals channel, nil without an incarnation.
func (inc *incarnation) renewalsC() <-chan renewal {
	if inc == nil {
		return nil
	}
	return inc.renewals
}

// electedC returns the election channel, nil without an incarnation.
func (inc *incarnation) electedC() <-chan *election {
	if inc == nil {
		return nil
	}
	return inc.elected
}

// end stops the incarnation's goroutines, without revoking the lease. A
// campaign still running finishes in the background (it resigns through
// the client).
func (inc *incarnation) end() {
	inc.cancel()
	inc.wg.Wait()
}

// ensureRegistered registers a new incarnation unless there is one: it
// revokes the previous lease, grants a new one, creates the member key on
// it and starts campaigning.
func (n *node) ensureRegistered(ctx context.Context) error {
	if n.inc != nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, n.o.ttl/2)
	defer cancel()
	if n.oldLease != clientv3.NoLease {
		floor := n.reg.maxRev
		resp, err := n.cli.Revoke(cctx, n.oldLease)
		if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return fmt.Errorf("revoke the previous lease: %w", err)
		}
		if err == nil {
			if err := n.observe("revoke", resp.Header, floor); err != nil {
				return err
			}
		}
		n.oldLease = clientv3.NoLease
	}
	sent := time.Now()
	floor := n.reg.maxRev
	g, err := n.cli.Grant(cctx, int64((n.o.ttl+time.Second-1)/time.Second))
	if err != nil {
		return fmt.Errorf("grant a lease: %w", err)
	}
	if err := n.observe("grant", g.ResponseHeader, floor); err != nil {
		n.oldLease = g.ID
		return err
	}
	if err := n.putMember(cctx, g.ID); err != nil {
		n.oldLease = g.ID // revoked first on the next try: the put may have landed
		return err
	}
	n.start(g.ID, sent)
	return nil
}

// putMember creates the member key on lease, unless another instance has
// it.
func (n *node) putMember(ctx context.Context, lease clientv3.LeaseID) error {
	key := n.lay.member(n.o.id)
	floor := n.reg.maxRev
	resp, err := n.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0), n.baseIs()).
		Then(clientv3.OpPut(key, n.record(), clientv3.WithLease(lease))).
		Else(clientv3.OpGet(n.lay.epoch())).
		Commit()
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	if err := n.observe("registration", resp.Header, floor); err != nil {
		return err
	}
	if !resp.Succeeded {
		if err := n.checkBase(resp.Responses[0]); err != nil {
			return err
		}
		return fmt.Errorf("register %s: %w", key, ErrDuplicateID)
	}
	n.memberRev = resp.Header.Revision
	return nil
}

// start begins incarnation lease, granted by a request sent at sent.
func (n *node) start(lease clientv3.LeaseID, sent time.Time) {
	ctx, cancel := context.WithCancel(context.Background())
	inc := &incarnation{lease: lease, ctx: ctx, cancel: cancel, nudge: make(chan struct{}, 1),
		renewals: make(chan renewal, 1), elected: make(chan *election, 1)}
	n.inc = inc
	n.prepared, n.acked = 0, 0
	n.extend(sent)
	n.publishInput()
	inc.wg.Add(1)
	go n.renew(inc)
	if n.o.consistency == Strict {
		n.campaign(inc)
	}
	n.log.Info("joined", "lease", fmt.Sprintf("%x", lease))
	if !n.announced {
		n.announced = true
		close(n.s.joined)
	}
}

// every is how often the lease is renewed: a sixth of the TTL.
func (n *node) every() time.Duration { return n.o.ttl / 6 }

// extend moves the fence deadline to a TTL minus the margin after sent,
// when a renewal sent then succeeded.
func (n *node) extend(sent time.Time) {
	at := sent.Add(n.o.ttl - n.margin())
	if at.After(n.fenceAt) || n.fenceAt.IsZero() {
		n.fenceAt = at
	}
	n.deadline.Reset(time.Until(n.fenceAt))
}

// renewInput is what the renewals compare, as the loop last knew it.
type renewInput struct {
	floor int64
	k     known
}

// publishInput hands the renewals what they compare.
func (n *node) publishInput() { n.input.Store(&renewInput{floor: n.reg.maxRev, k: n.known()}) }

// renew renews inc's lease every sixth of the TTL, or at once when nudged,
// and hands the loop the latest outcome, until inc ends. It does not renew
// while a callback of the loop has overrun its time (see callback): a
// node stuck in a callback that never returns stops renewing, and etcd
// expires it a TTL later, as if it had died.
func (n *node) renew(inc *incarnation) {
	defer inc.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	warned := false
	for {
		select {
		case <-inc.ctx.Done():
			return
		case <-t.C:
		case <-inc.nudge:
		}
		sent := time.Now()
		t.Reset(n.every())
		if at := n.stuckAt.Load(); at != 0 && sent.UnixNano() > at {
			if !warned {
				n.log.Error("a callback has not returned in time: no longer renewing the lease")
				warned = true
			}
			continue
		}
		warned = false
		in := n.input.Load()
		r := n.renewOnce(inc, sent, in.floor, in.k)
		select {
		case <-inc.renewals: // the loop has not taken the previous one: this one is newer
		default:
		}
		inc.renewals <- r
	}
}

// callback runs f, a call of the application's, having told the renewals
// it may take until allowed from now: past that the node counts as stuck.
func (n *node) callback(allowed time.Duration, f func()) {
	n.stuckAt.Store(time.Now().Add(allowed).UnixNano())
	defer n.stuckAt.Store(0)
	f()
}

// emit makes v the session's view, running the rebalance callback, which
// must return within a third of the TTL.
func (n *node) emit(v View) { n.callback(n.o.ttl/3, func() { n.s.emit(v) }) }

// known returns the ModRevisions of the keys as the node knows them.
func (n *node) known() known {
	k := known{member: n.memberRev, members: n.memb.ch != nil && n.checks.budget > 0}
	if n.commit != nil {
		k.commit = n.commit.rev
	}
	if n.plan != nil {
		k.plan = n.plan.rev
	}
	if n.reg.base != nil {
		k.base = n.reg.base.raw
	}
	return k
}

// renewOnce renews inc's lease once and compares the member key, commit,
// plan and base with k; the keys that differ are read. In steady state a
// renewal costs a few dozen bytes whatever the size of the cluster. It
// gives up when its success could no longer put the fence deadline off.
func (n *node) renewOnce(inc *incarnation, sent time.Time, floor int64, k known) renewal {
	ctx, cancel := context.WithDeadline(inc.ctx, sent.Add(n.o.ttl-n.margin()))
	defer cancel()
	r := renewal{inc: inc, sent: sent, floor: floor, k: k}
	if _, err := n.cli.KeepAliveOnce(ctx, inc.lease); err != nil {
		r.lost, r.err = errors.Is(err, rpctypes.ErrLeaseNotFound), err
		return r
	}
	keys := []struct {
		key string
		rev int64
	}{{n.lay.member(n.o.id), k.member}, {n.lay.commit(), k.commit}, {n.lay.plan(), k.plan}}
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.Value(n.lay.epoch()), "=", k.base)}
	gets := []clientv3.Op{clientv3.OpGet(n.lay.epoch())}
	for _, kr := range keys {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(kr.key), "=", kr.rev))
		gets = append(gets, clientv3.OpGet(kr.key))
	}
	var then []clientv3.Op
	if k.members {
		latest := clientv3.OpGet(n.lay.members(), clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(1),
			clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend))
		count := clientv3.OpGet(n.lay.members(), clientv3.WithPrefix(), clientv3.WithCountOnly())
		then, gets = []clientv3.Op{latest, count}, append(gets, latest, count)
	}
	r.read, r.err = n.cli.Txn(ctx).If(cmps...).Then(then...).Else(gets...).Commit()
	return r
}
