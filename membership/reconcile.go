package membership

import (
	"context"
	"fmt"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// reconcile brings the view in line with what the node knows: the member
// list in eventual consistency; the commit and any pending plan in strict.
func (n *node) reconcile(ctx context.Context) error {
	if n.inc == nil || n.reg.base == nil {
		n.emit(fenceView(n.o.threads))
		return nil
	}
	lease := int64(n.inc.lease)
	if n.o.consistency == Eventual {
		if at := (viewAt{rev: n.memRev, lease: lease, threads: n.o.threads}); at != n.last {
			if wait := n.computed.Add(pace(len(n.members))).Sub(time.Now()); wait > 0 && at.lease == n.last.lease {
				n.recompute.Reset(wait) // a burst of changes: one view for all of it
				return nil
			}
			n.last, n.lastView = at, listView(n.members, n.o.order, n.o.id, lease, n.o.threads, n.reg.base.epochOf(n.memRev))
			n.computed = time.Now()
		}
		if cur := n.s.View(); !sameShape(cur, n.lastView) {
			return n.emitView(n.lastView)
		}
		return nil
	}
	target, held := fenceView(n.o.threads), slot{}
	c := n.validCommit()
	if c != nil {
		held = c.as.slotOf(n.o.id, lease)
		if at := (viewAt{rev: c.rev, lease: lease, threads: n.o.threads}); at != n.last {
			n.last, n.lastView = at, c.as.view(n.o.id, lease, n.o.threads, c.total, n.reg.base.epochOf(c.rev))
		}
		target = n.lastView
	}
	p := n.pending()
	if p == nil || planned(p, c, n.o.id, lease).contains(held) {
		return n.emitView(target)
	}
	return n.release(ctx, p, c, lease)
}

// pace is how often at most an instance of a cluster of n computes its
// view from the member list in eventual consistency: each time costs it
// the whole list, so a large cluster coalesces a burst of joins into fewer
// views (200ms at a thousand instances).
func pace(n int) time.Duration {
	return min(time.Duration(n)*200*time.Microsecond, 250*time.Millisecond)
}

// viewAt is what a view was computed from: the revision of the commit
// (strict) or member list (eventual), the lease and the thread count. A
// node of a large cluster settles after every event; the view, a list of
// every member, is computed again only when one of them changes.
type viewAt struct {
	rev, lease int64
	threads    int
}

// emitView emits v unless its epoch is below one already emitted. Only a
// registry that lost its data (restored from a backup that kept its base)
// can cause that: the instance then treats the registry as new, and gives
// it a new base above every epoch it has seen. So the epochs an instance
// sees never go back.
func (n *node) emitView(v View) error {
	if v.Epoch != 0 && v.Epoch < n.reg.maxEpoch {
		return n.newRegistry(fmt.Sprintf("epoch went back from %d to %d", n.reg.maxEpoch, v.Epoch))
	}
	n.reg.maxEpoch = max(n.reg.maxEpoch, v.Epoch)
	n.emit(v)
	return nil
}

// release gives up the committed indices that plan p takes from this
// instance: a view with Index -1, OnPrepare, then the acknowledgement the
// sequencer waits for. OnPrepare gets two thirds of the TTL, well before
// the sequencer gives up waiting.
func (n *node) release(ctx context.Context, p *plan, c *committed, lease int64) error {
	if n.s.View().Index >= 0 {
		n.emit(fenceView(n.o.threads))
	}
	if n.prepared != p.rev {
		n.prepared = p.rev
		if f := n.o.onPrepare; f != nil {
			limit := n.o.ttl - n.margin()
			pctx, cancel := context.WithTimeout(ctx, limit)
			var from assignment
			if c != nil {
				from = c.as
			}
			v := from.apply(p).view(n.o.id, lease, n.o.threads, p.Total, 0)
			n.callback(limit+n.every(), func() { f(pctx, v) })
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

// sameShape reports whether two views differ at most in their epoch.
func sameShape(a, b View) bool {
	b.Epoch = a.Epoch
	return a.equal(b)
}
