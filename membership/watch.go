package membership

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ensureWatch lists the members, commit, plan and registry base and
// watches them from the listed revision + 1, unless a watch is running.
func (n *node) ensureWatch(ctx context.Context) error {
	if n.wch != nil {
		return nil
	}
	cctx, cancel := n.callCtx(ctx)
	defer cancel()
	floor := n.reg.maxRev
	resp, err := n.cli.Get(cctx, n.lay.commit(), clientv3.WithRange(n.lay.watchEnd()))
	if err != nil {
		return fmt.Errorf("list members: %w", err)
	}
	if err := n.observe("list", resp.Header, floor); err != nil {
		return err
	}
	var listed *registryBase
	for _, kv := range resp.Kvs {
		if string(kv.Key) == n.lay.epoch() {
			if listed, err = decodeBase(kv.Value, kv.ModRevision); err != nil {
				n.log.Warn("replacing a bad registry base", "err", err)
				listed = &registryBase{rev: kv.ModRevision, ID: "bad"}
				n.reg.stale = listed.ID
			}
		}
	}
	if err := n.ensureBase(ctx, listed); err != nil {
		return err
	}
	n.members = map[string]memberRecord{}
	for _, kv := range resp.Kvs {
		if string(kv.Key) != n.lay.epoch() {
			n.applyKV(kv, true)
		}
	}
	n.memRev, n.memChanged = resp.Header.Revision, time.Now()
	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	n.wcancel = wcancel
	n.wch = n.cli.Watch(wctx, n.lay.commit(), clientv3.WithRange(n.lay.watchEnd()),
		clientv3.WithRev(resp.Header.Revision+1))
	return nil
}

// onWatch applies a watch response. A closed or cancelled watch, as on
// compaction, is dropped for settle to list and watch again.
func (n *node) onWatch(wr clientv3.WatchResponse, ok bool) {
	if !ok || wr.Canceled || wr.Err() != nil {
		if ok {
			n.log.Info("watch ended; listing again", "err", wr.Err(), "compact_rev", wr.CompactRevision)
		}
		n.wcancel()
		n.wch, n.wcancel = nil, nil
		return
	}
	n.log.Debug("watch", "events", len(wr.Events), "rev", wr.Header.Revision)
	for _, ev := range wr.Events {
		if ev.Type == mvccpb.DELETE {
			n.deleteKV(ev.Kv)
		} else {
			n.applyKV(ev.Kv, false)
		}
		if n.wch == nil {
			return // the registry was found new: what follows is moot
		}
	}
}

// drainWatch applies the watch responses that are already waiting, so
// that a burst of changes is settled once rather than once per response.
func (n *node) drainWatch() {
	for n.wch != nil {
		select {
		case wr, ok := <-n.wch:
			n.onWatch(wr, ok)
		default:
			return
		}
	}
}

// applyKV applies a key listed (listing) or put.
func (n *node) applyKV(kv *mvccpb.KeyValue, listing bool) {
	key := string(kv.Key)
	switch {
	case key == n.lay.commit():
		n.applyPlan(&n.commit, kv.Value, kv.ModRevision, listing)
	case key == n.lay.plan():
		n.applyPlan(&n.plan, kv.Value, kv.ModRevision, listing)
	case key == n.lay.epoch():
		n.applyBase(kv.Value)
	case strings.HasPrefix(key, n.lay.members()):
		id := strings.TrimPrefix(key, n.lay.members())
		m, err := decodeMember(kv.Value, kv.CreateRevision, kv.Lease)
		switch {
		case err != nil:
			n.log.Warn("ignoring a bad member record", "member", id, "err", err)
			delete(n.members, id)
		case !n.ours(m.Reg, listing):
			n.log.Debug("ignoring a member record of another registry base", "member", id, "reg", m.Reg)
			delete(n.members, id)
		default:
			n.members[id] = m
		}
		n.memRev, n.memChanged = max(n.memRev, kv.ModRevision), time.Now()
	}
}

// deleteKV applies a deleted key.
func (n *node) deleteKV(kv *mvccpb.KeyValue) {
	key := string(kv.Key)
	switch {
	case key == n.lay.commit():
		n.commit = nil
	case key == n.lay.plan():
		n.plan = nil
	case key == n.lay.epoch():
		n.newRegistry("the registry base was deleted")
	case strings.HasPrefix(key, n.lay.members()):
		delete(n.members, strings.TrimPrefix(key, n.lay.members()))
		n.memRev, n.memChanged = max(n.memRev, kv.ModRevision), time.Now()
	}
}

// applyPlan stores the plan or commit value at rev (listed, or put) in
// *dst unless *dst is as new. One written under another registry base is
// kept, for the revision writes compare, but not used (see validCommit).
func (n *node) applyPlan(dst **plan, value []byte, rev int64, listing bool) {
	if *dst != nil && (*dst).rev >= rev {
		return
	}
	p, err := decodePlan(value, rev)
	if err != nil {
		n.log.Warn("ignoring a bad plan", "rev", rev, "err", err)
		return
	}
	if !n.ours(p.Reg, listing) {
		n.log.Debug("a plan of another registry base", "rev", rev, "reg", p.Reg)
	}
	*dst = p
}
