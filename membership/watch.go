package membership

import (
	"context"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ensureWatch lists the members, commit and plan and watches them from
// the listed revision + 1, unless a watch is running.
func (n *node) ensureWatch(ctx context.Context) error {
	if n.wch != nil {
		return nil
	}
	cctx, cancel := n.callCtx(ctx)
	defer cancel()
	resp, err := n.cli.Get(cctx, n.lay.commit(), clientv3.WithRange(n.lay.watchEnd()))
	if err != nil {
		return fmt.Errorf("list members: %w", err)
	}
	n.members = map[string]memberRecord{}
	for _, kv := range resp.Kvs {
		n.applyKV(kv)
	}
	n.memRev = resp.Header.Revision
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
			continue
		}
		n.applyKV(ev.Kv)
	}
}

// applyKV applies a key listed or put.
func (n *node) applyKV(kv *mvccpb.KeyValue) {
	key := string(kv.Key)
	switch {
	case key == n.lay.commit():
		n.applyPlan(&n.commit, kv.Value, kv.ModRevision)
	case key == n.lay.plan():
		n.applyPlan(&n.plan, kv.Value, kv.ModRevision)
	case strings.HasPrefix(key, n.lay.members()):
		id := strings.TrimPrefix(key, n.lay.members())
		m, err := decodeMember(kv.Value, kv.CreateRevision, kv.Lease)
		if err != nil {
			n.log.Warn("ignoring a bad member record", "member", id, "err", err)
			delete(n.members, id)
		} else {
			n.members[id] = m
		}
		n.memRev = max(n.memRev, kv.ModRevision)
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
	case strings.HasPrefix(key, n.lay.members()):
		delete(n.members, strings.TrimPrefix(key, n.lay.members()))
		n.memRev = max(n.memRev, kv.ModRevision)
	}
}

// applyPlan stores the plan or commit value at rev in *dst unless *dst is
// as new.
func (n *node) applyPlan(dst **plan, value []byte, rev int64) {
	if *dst != nil && (*dst).rev >= rev {
		return
	}
	p, err := decodePlan(value, rev)
	if err != nil {
		n.log.Warn("ignoring a bad plan", "rev", rev, "err", err)
		return
	}
	*dst = p
}
