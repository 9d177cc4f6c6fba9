package membership

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// watcher is one of the node's watches: its channel and its end.
type watcher struct {
	ch     clientv3.WatchChan
	cancel context.CancelFunc
}

// stop ends the watch.
func (w *watcher) stop() {
	if w.cancel != nil {
		w.cancel()
	}
	w.ch, w.cancel = nil, nil
}

// watchFrom watches the keys under prefix from rev.
func (n *node) watchFrom(ctx context.Context, w *watcher, prefix string, rev int64) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	w.ch, w.cancel = n.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev)), cancel
}

// ensureWatch lists and watches what the node follows, from the listed
// revision + 1, unless it watches it already: the state (registry base,
// commit and plan) always; the members only in eventual consistency, or
// as the sequencer: an instance of a strict cluster needs only the commit
// and plan, so a join costs each instance one event, not one per member.
func (n *node) ensureWatch(ctx context.Context) error {
	if err := n.ensureState(ctx); err != nil {
		return err
	}
	if n.o.consistency == Strict && n.seq == nil {
		if n.memb.ch != nil {
			n.memb.stop()
			n.members, n.foreign = map[string]memberRecord{}, map[string]bool{}
		}
		return nil
	}
	return n.ensureMembers(ctx)
}

// ensureState lists and watches the state keys, and writes the registry
// base if it must.
func (n *node) ensureState(ctx context.Context) error {
	if n.state.ch != nil {
		return nil
	}
	cctx, cancel := n.callCtx(ctx)
	defer cancel()
	floor := n.reg.maxRev
	tresp, err := n.cli.Txn(cctx).Then(clientv3.OpGet(n.lay.state(), clientv3.WithPrefix()), clientv3.OpGet(n.lay.snapshot())).Commit()
	if err != nil {
		return fmt.Errorf("list the registry: %w", err)
	}
	if err := n.observe("list", tresp.Header, floor); err != nil {
		return err
	}
	resp := tresp.Responses[0].GetResponseRange()
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
	for _, kv := range resp.Kvs {
		if string(kv.Key) != n.lay.epoch() {
			n.applyKV(kv, true)
		}
	}
	for _, kv := range tresp.Responses[1].GetResponseRange().Kvs {
		n.applySnapshot(kv.Value, kv.ModRevision)
	}
	n.last = viewAt{}
	n.watchFrom(ctx, &n.state, n.lay.state(), tresp.Header.Revision+1)
	return nil
}

// ensureMembers lists and watches the members.
func (n *node) ensureMembers(ctx context.Context) error {
	if n.memb.ch != nil {
		return nil
	}
	cctx, cancel := n.callCtx(ctx)
	defer cancel()
	floor := n.reg.maxRev
	resp, err := n.cli.Get(cctx, n.lay.members(), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("list members: %w", err)
	}
	if err := n.observe("list", resp.Header, floor); err != nil {
		return err
	}
	n.members, n.foreign = map[string]memberRecord{}, map[string]bool{}
	for _, kv := range resp.Kvs {
		n.applyKV(kv, true)
	}
	n.memRev, n.memChanged = resp.Header.Revision, time.Now()
	n.membSeen, n.membLag = resp.Header.Revision, 0
	n.last = viewAt{} // the list may differ from what the watch said at this revision
	n.watchFrom(ctx, &n.memb, n.lay.members(), resp.Header.Revision+1)
	return nil
}

// onWatch applies a response of watch w. A closed or cancelled watch, as
// on compaction, is dropped for settle to list and watch again.
func (n *node) onWatch(w *watcher, wr clientv3.WatchResponse, ok bool) {
	if !ok || wr.Canceled || wr.Err() != nil {
		if ok {
			n.log.Info("watch ended; listing again", "err", wr.Err(), "compact_rev", wr.CompactRevision)
		}
		w.stop()
		return
	}
	n.log.Debug("watch", "events", len(wr.Events), "rev", wr.Header.Revision)
	if w == &n.memb {
		n.membSeen = max(n.membSeen, wr.Header.Revision)
	}
	for _, ev := range wr.Events {
		if ev.Type == mvccpb.DELETE {
			n.deleteKV(ev.Kv)
		} else {
			n.applyKV(ev.Kv, false)
		}
		if w.ch == nil {
			return // the registry was found new: what follows is moot
		}
	}
}

// drainWatch applies the responses of w that are already waiting, so
// that a burst of changes is settled once rather than once per response.
func (n *node) drainWatch(w *watcher) {
	for w.ch != nil {
		select {
		case wr, ok := <-w.ch:
			n.onWatch(w, wr, ok)
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
		n.applyCommitKey(kv.Value, kv.ModRevision, listing)
	case key == n.lay.plan():
		n.applyPlanKey(kv.Value, kv.ModRevision, listing)
	case key == n.lay.epoch():
		n.applyBase(kv.Value)
	case strings.HasPrefix(key, n.lay.members()):
		id := strings.TrimPrefix(key, n.lay.members())
		m, err := decodeMember(kv.Value, kv.CreateRevision, kv.Lease)
		delete(n.foreign, id)
		switch {
		case err != nil:
			n.log.Warn("ignoring a bad member record", "member", id, "err", err)
			delete(n.members, id)
			n.foreign[id] = true
		case !n.ours(m.Reg, listing):
			n.log.Debug("ignoring a member record of another registry base", "member", id, "reg", m.Reg)
			delete(n.members, id)
			n.foreign[id] = true
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
		delete(n.foreign, strings.TrimPrefix(key, n.lay.members()))
		n.memRev, n.memChanged = max(n.memRev, kv.ModRevision), time.Now()
	}
}
