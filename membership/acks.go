package membership

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// acksC returns the acknowledgement watch channel; nil-safe.
func (s *sequencer) acksC() clientv3.WatchChan {
	if s == nil {
		return nil
	}
	return s.acks
}

// watchAcks starts watching every acknowledgement from now on; the
// sequencer is ready once etcd confirms the watch.
func (s *sequencer) watchAcks(ctx context.Context, n *node) {
	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	s.acks, s.ackCancel = n.cli.Watch(wctx, n.lay.acks(), clientv3.WithPrefix(), clientv3.WithCreatedNotify()), wcancel
	s.ready = false
}

// listAcks reads the acknowledgements of the pending plan written while
// no watch ran.
func (s *sequencer) listAcks(ctx context.Context, n *node) error {
	cctx, cancel := n.callCtx(ctx)
	defer cancel()
	resp, err := n.cli.Get(cctx, n.lay.ackPrefix(s.pending.rev), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("list acknowledgements: %w", err)
	}
	for _, kv := range resp.Kvs {
		s.ack(n, kv)
	}
	return nil
}

// onAcks applies an acknowledgement watch response.
func (s *sequencer) onAcks(n *node, wr clientv3.WatchResponse, ok bool) {
	if !ok || wr.Canceled || wr.Err() != nil {
		s.stopAcks() // step watches again, then lists what it missed
		s.catchUp = true
		return
	}
	if wr.Created {
		s.ready = true
	}
	for _, ev := range wr.Events {
		if ev.Type == mvccpb.PUT && s.pending != nil {
			s.ack(n, ev.Kv)
		}
	}
}

// ack counts an acknowledgement key of the pending plan.
func (s *sequencer) ack(n *node, kv *mvccpb.KeyValue) {
	id, ok := strings.CutPrefix(string(kv.Key), n.lay.ackPrefix(s.pending.rev))
	if !ok {
		return // another plan's
	}
	lease, err := strconv.ParseInt(string(kv.Value), 10, 64)
	if w, ok := s.wait[id]; ok && err == nil && w.lease == lease {
		delete(s.wait, id)
	}
}

// dropVanished stops waiting for instances whose member key is gone: they
// gave up their indices before leaving, or before their lease expired.
func (s *sequencer) dropVanished(n *node) {
	for id, w := range s.wait {
		if m, ok := n.members[id]; !ok || m.lease != w.lease {
			delete(s.wait, id)
		}
	}
}

// onTimeout stops waiting for instances past their deadline: a TTL after
// the plan was written, by which an instance that has not seen it has
// fenced itself (see the package documentation).
func (s *sequencer) onTimeout(n *node) {
	now := time.Now()
	for id, w := range s.wait {
		if !now.Before(w.deadline) {
			n.log.Warn("committing without an instance that did not acknowledge within its TTL", "member", id)
			delete(s.wait, id)
		}
	}
	s.resetTimer()
}

// resetTimer sets the timer to the earliest deadline still waited for.
func (s *sequencer) resetTimer() {
	s.timer.Stop()
	var first time.Time
	for _, w := range s.wait {
		if first.IsZero() || w.deadline.Before(first) {
			first = w.deadline
		}
	}
	if !first.IsZero() {
		s.timer.Reset(time.Until(first))
	}
}

// stopAcks stops the acknowledgement watch.
func (s *sequencer) stopAcks() {
	if s.ackCancel != nil {
		s.ackCancel()
	}
	s.acks, s.ackCancel, s.ready = nil, nil, false
}
