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
// key on it, and the goroutines that renew it and campaign to be
// sequencer. A lost lease ends the incarnation; the next one has a new
// lease and a new member key.
type incarnation struct {
	lease    clientv3.LeaseID
	ctx      context.Context
	cancel   context.CancelFunc
	renewals chan renewal   // the latest renewal not yet handled
	elected  chan *election // the campaign's result
	sess     *concurrency.Session
	elect    *concurrency.Election
	leader   bool
	wg       sync.WaitGroup
}

// renewal is the outcome of one renewal: a lease keepalive and a read of
// the member key, the commit and the plan, both sent at or after sent.
type renewal struct {
	sent time.Time
	lost bool // the lease is gone
	read *clientv3.TxnResponse
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

// end stops the incarnation's goroutines and the lease's keepalive,
// without revoking the lease. A campaign still running finishes in the
// background (it resigns through the client).
func (inc *incarnation) end() {
	inc.cancel()
	inc.wg.Wait()
	if inc.sess != nil {
		inc.sess.Orphan()
	}
}

// ensureRegistered registers a new incarnation unless there is one: it
// revokes the previous lease, grants a new one, creates the member key on
// it and starts renewing and campaigning.
func (n *node) ensureRegistered(ctx context.Context) error {
	if n.inc != nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, n.o.ttl/2)
	defer cancel()
	if n.oldLease != clientv3.NoLease {
		if _, err := n.cli.Revoke(cctx, n.oldLease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return fmt.Errorf("revoke the previous lease: %w", err)
		}
		n.oldLease = clientv3.NoLease
	}
	sent := time.Now()
	g, err := n.cli.Grant(cctx, int64((n.o.ttl+time.Second-1)/time.Second))
	if err != nil {
		return fmt.Errorf("grant a lease: %w", err)
	}
	if err := n.putMember(cctx, g.ID); err != nil {
		n.cli.Revoke(cctx, g.ID)
		return err
	}
	n.start(g.ID, sent)
	return nil
}

// putMember creates the member key on lease, unless another instance has
// it.
func (n *node) putMember(ctx context.Context, lease clientv3.LeaseID) error {
	key := n.lay.member(n.o.id)
	resp, err := n.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, n.record(), clientv3.WithLease(lease))).
		Commit()
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("register %s: %w", key, ErrDuplicateID)
	}
	return nil
}

// start begins incarnation lease, granted by a request sent at sent.
func (n *node) start(lease clientv3.LeaseID, sent time.Time) {
	ctx, cancel := context.WithCancel(context.Background())
	inc := &incarnation{lease: lease, ctx: ctx, cancel: cancel,
		renewals: make(chan renewal, 1), elected: make(chan *election, 1)}
	n.inc = inc
	n.prepared, n.acked = 0, 0
	n.extend(sent)
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

// extend moves the fence deadline to a TTL minus the margin after sent,
// when a renewal sent then succeeded.
func (n *node) extend(sent time.Time) {
	at := sent.Add(n.o.ttl - n.margin())
	if at.After(n.fenceAt) || n.fenceAt.IsZero() {
		n.fenceAt = at
	}
	n.deadline.Reset(time.Until(n.fenceAt))
}

// renew renews inc's lease every sixth of the TTL with KeepAliveOnce,
// timing each renewal from before it was sent, and reads the member key,
// commit and plan after it, until inc ends.
func (n *node) renew(inc *incarnation) {
	defer inc.wg.Done()
	every := n.o.ttl / 6
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-inc.ctx.Done():
			return
		case <-t.C:
		}
		sent := time.Now()
		r, ok := n.renewOnce(inc, sent, every)
		if ok {
			select {
			case <-inc.renewals:
			default:
			}
			inc.renewals <- r
		}
		t.Reset(time.Until(sent.Add(every)))
	}
}

// renewOnce renews inc's lease once; ok is false if it failed for a
// reason other than the lease being gone.
func (n *node) renewOnce(inc *incarnation, sent time.Time, timeout time.Duration) (renewal, bool) {
	ctx, cancel := context.WithTimeout(inc.ctx, timeout)
	defer cancel()
	r := renewal{sent: sent}
	_, err := n.cli.KeepAliveOnce(ctx, inc.lease)
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		r.lost = true
		return r, true
	}
	if err != nil {
		return r, false
	}
	r.read, err = n.cli.Txn(ctx).Then(
		clientv3.OpGet(n.lay.member(n.o.id)),
		clientv3.OpGet(n.lay.commit()),
		clientv3.OpGet(n.lay.plan()),
	).Commit()
	return r, err == nil
}

// onRenewal handles a renewal: a lost lease or member key ends the
// incarnation; otherwise the fence deadline moves and the commit and plan
// read are applied.
func (n *node) onRenewal(r renewal) {
	if r.lost {
		n.lose("lease expired")
		return
	}
	rs := r.read.Responses
	own := rs[0].GetResponseRange().Kvs
	if len(own) == 0 || clientv3.LeaseID(own[0].Lease) != n.inc.lease {
		n.lose("member key gone")
		return
	}
	n.extend(r.sent)
	for i, dst := range []**plan{&n.commit, &n.plan} {
		for _, kv := range rs[i+1].GetResponseRange().Kvs {
			n.applyPlan(dst, kv.Value, kv.ModRevision)
		}
	}
}

// lose ends the incarnation after giving up every index, before etcd can
// expire the lease; settle then registers anew.
func (n *node) lose(why string) {
	if n.inc == nil {
		return
	}
	n.log.Warn("fenced: giving up indices and re-joining", "why", why)
	n.s.emit(fenceView(n.o.threads))
	n.stopSequencer()
	n.inc.end()
	n.oldLease = n.inc.lease
	n.inc = nil
	n.deadline.Stop()
	n.fenceAt = time.Time{}
}

// campaign runs the sequencer election for inc in the background; a won
// election arrives on inc.elected.
func (n *node) campaign(inc *incarnation) {
	sess, err := concurrency.NewSession(n.cli, concurrency.WithLease(inc.lease), concurrency.WithContext(inc.ctx))
	if err != nil {
		n.log.Warn("sequencer election: no session", "err", err)
		return
	}
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
			case <-time.After(n.o.ttl / 6):
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
