package membership

import (
	"context"
	"fmt"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// reconcile brings the view in line with what the node knows: the member
// list in eventual consistency; the commit and any pending plan in strict.
func (n *node) reconcile(ctx context.Context) error {
	if n.inc == nil {
		n.s.emit(fenceView(n.o.threads))
		return nil
	}
	lease := int64(n.inc.lease)
	if n.o.consistency == Eventual {
		as, total := assign(n.members, n.o.order)
		v := as.view(n.o.id, lease, n.o.threads, total, n.memRev)
		if cur := n.s.View(); !sameShape(cur, v) {
			n.s.emit(v)
		}
		return nil
	}
	target, held := fenceView(n.o.threads), slot{}
	if c := n.commit; c != nil {
		target = c.Assignments.view(n.o.id, lease, n.o.threads, c.Total, c.rev)
		held = c.Assignments.slotOf(n.o.id, lease)
	}
	p := n.pending()
	if p == nil || p.Assignments.slotOf(n.o.id, lease).contains(held) {
		n.s.emit(target)
		return nil
	}
	return n.release(ctx, p, lease)
}

// release gives up the committed indices that plan p takes from this
// instance: a view with Index -1, OnPrepare, then the acknowledgement the
// sequencer waits for.
func (n *node) release(ctx context.Context, p *plan, lease int64) error {
	if n.s.View().Index >= 0 {
		n.s.emit(fenceView(n.o.threads))
	}
	if n.prepared != p.rev {
		n.prepared = p.rev
		if f := n.o.onPrepare; f != nil {
			pctx, cancel := context.WithTimeout(ctx, n.o.ttl-n.margin())
			f(pctx, p.Assignments.view(n.o.id, lease, n.o.threads, p.Total, 0))
			cancel()
		}
	}
	if n.acked == p.rev {
		return nil
	}
	cctx, cancel := n.callCtx(ctx)
	defer cancel()
	val := strconv.FormatInt(lease, 10)
	if _, err := n.cli.Put(cctx, n.lay.ack(p.rev, n.o.id), val, clientv3.WithLease(n.inc.lease)); err != nil {
		return fmt.Errorf("acknowledge plan %d: %w", p.rev, err)
	}
	n.acked = p.rev
	return nil
}

// pending returns the plan not yet committed, or nil.
func (n *node) pending() *plan {
	if n.plan == nil || (n.commit != nil && n.plan.rev <= n.commit.PlanRev) {
		return nil
	}
	return n.plan
}

// sameShape reports whether two views differ at most in their epoch.
func sameShape(a, b View) bool {
	b.Epoch = a.Epoch
	return a.equal(b)
}
