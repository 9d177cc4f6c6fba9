package membership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// errNewRegistry ends what the loop was doing when it found that etcd no
// longer holds the data it had seen: settle starts again from a new list.
var errNewRegistry = errors.New("the registry lost its data; listing and joining again")

// registryBase is the value of the epoch key: the epoch a registry's
// revisions count from. Epochs are Base + (revision - rev), where rev is
// the key's ModRevision, so a commit's epoch grows with its revision. Base
// is chosen when the key is written: the time in microseconds, or one more
// than the highest epoch the writer has seen, whichever is larger. A
// registry that lost its data (an etcd restarted empty or restored from a
// backup) gets a new base, above every epoch of its previous life as long
// as etcd wrote fewer than a million revisions a second and the clock did
// not go back; the second term covers a clock that did, for the writer.
type registryBase struct {
	Base int64  `json:"base"`
	ID   string `json:"id"`

	rev int64  // the key's ModRevision
	raw string // the key's value, which writes compare
}

// registry is what a node knows of the registry's identity.
type registry struct {
	base      *registryBase // nil until listed
	stale     string        // after a detected loss: the id of the base that came before it
	maxRev    int64         // highest revision of a linearizable response seen
	clusterID uint64        // etcd's cluster id, once seen
	maxEpoch  int64         // highest epoch of a view emitted
}

// epochOf returns the epoch of revision rev under the base.
func (b *registryBase) epochOf(rev int64) int64 { return b.Base + max(rev-b.rev, 0) }

// decodeBase decodes the epoch key.
func decodeBase(value []byte, rev int64) (*registryBase, error) {
	b := &registryBase{}
	if err := json.Unmarshal(value, b); err != nil || b.ID == "" || b.Base <= 0 {
		return nil, fmt.Errorf("registry base %q: not a base", value)
	}
	b.rev, b.raw = rev, string(value)
	return b, nil
}

// observe checks the header of a linearizable response to a request sent
// when the highest revision seen was floor. etcd never answers such a
// request with a lower revision, nor from another cluster, unless it lost
// its data: then the node drops what it knew, and observe returns
// errNewRegistry.
func (n *node) observe(what string, h *pb.ResponseHeader, floor int64) error {
	if h == nil {
		return nil
	}
	switch {
	case n.reg.clusterID != 0 && h.ClusterId != n.reg.clusterID:
		return n.newRegistry(fmt.Sprintf("etcd cluster id changed from %x to %x (%s)", n.reg.clusterID, h.ClusterId, what))
	case h.Revision < floor:
		return n.newRegistry(fmt.Sprintf("etcd revision went back from %d to %d (%s)", floor, h.Revision, what))
	}
	n.reg.clusterID = h.ClusterId
	n.reg.maxRev = max(n.reg.maxRev, h.Revision)
	return nil
}

// newRegistry treats the registry as new: the node fences, forgets the
// members, commit, plan and base it knew, and stops watching; settle then
// lists, watches and joins again. The highest epoch seen is kept, so that
// epochs never go back.
func (n *node) newRegistry(why string) error {
	n.log.Warn("registry changed under us: fencing, listing and joining again", "why", why)
	if n.reg.base != nil {
		n.reg.stale = n.reg.base.ID
	}
	n.lose(why)
	n.reg.base, n.reg.maxRev, n.reg.clusterID = nil, 0, 0
	n.members, n.foreign = map[string]memberRecord{}, map[string]bool{}
	n.commit, n.plan, n.committed, n.memberRev = nil, nil, nil, 0
	n.state.stop()
	n.memb.stop()
	return fmt.Errorf("%w: %s", errNewRegistry, why)
}

// ensureBase adopts the listed base, or writes one: when there is none,
// and after a detected loss when the listed one is the base from before
// it or does not lie above the epochs seen.
func (n *node) ensureBase(ctx context.Context, listed *registryBase) error {
	if listed != nil && (n.reg.stale == "" || listed.ID != n.reg.stale && listed.Base > n.reg.maxEpoch) {
		n.reg.base, n.reg.stale = listed, ""
		return nil
	}
	id, err := newUUID()
	if err != nil {
		return err
	}
	b := &registryBase{Base: max(time.Now().UnixMicro(), n.reg.maxEpoch+1), ID: id}
	b.raw = encode(b)
	key := n.lay.epoch()
	cond := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	if listed != nil {
		cond = clientv3.Compare(clientv3.ModRevision(key), "=", listed.rev)
	}
	cctx, cancel := n.callCtx(ctx)
	defer cancel()
	floor := n.reg.maxRev
	resp, err := n.cli.Txn(cctx).If(cond).Then(clientv3.OpPut(key, b.raw)).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return fmt.Errorf("write the registry base: %w", err)
	}
	if err := n.observe("base write", resp.Header, floor); err != nil {
		return err
	}
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return errors.New("registry base raced away; listing again")
		}
		other, err := decodeBase(kvs[0].Value, kvs[0].ModRevision)
		if err != nil {
			return err
		}
		return n.ensureBase(ctx, other)
	}
	b.rev = resp.Header.Revision
	n.log.Info("registry base written", "base", b.Base, "rev", b.rev)
	n.reg.base, n.reg.stale = b, ""
	return nil
}

// applyBase applies a put of the epoch key seen by the watch: a base
// other than the node's means another instance found the registry new.
func (n *node) applyBase(value []byte) {
	if n.reg.base == nil || string(value) != n.reg.base.raw {
		n.newRegistry("another instance wrote a new registry base")
	}
}

// checkBase checks the registry base read by a write whose condition
// failed: another base means the registry is new.
func (n *node) checkBase(read *pb.ResponseOp) error {
	kvs := read.GetResponseRange().Kvs
	if len(kvs) == 0 || n.reg.base == nil || string(kvs[0].Value) != n.reg.base.raw {
		return n.newRegistry("the registry base changed")
	}
	return nil
}

// baseIs returns the comparison that fences a write to the registry base
// the node knows. It compares the value, not the revision: a registry
// that lost its data may write a new base at the revision of the old.
func (n *node) baseIs() clientv3.Cmp {
	return clientv3.Compare(clientv3.Value(n.lay.epoch()), "=", n.reg.base.raw)
}

// ours reports whether a value written under registry base reg belongs
// to the node's registry. One that does not was written before the base
// (a registry restored from a backup keeps such keys), or under a base
// the node has not seen yet: the next renewal, due at once, tells.
func (n *node) ours(reg string, listing bool) bool {
	if n.reg.base != nil && reg == n.reg.base.ID {
		return true
	}
	if !listing && n.inc != nil {
		select {
		case n.inc.nudge <- struct{}{}:
		default:
		}
	}
	return false
}
