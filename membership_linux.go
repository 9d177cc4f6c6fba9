package herd

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/envvar"
	"github.com/herd-cluster/herd/internal/metrics"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// node is this primary's place in a multi-node cluster: it turns views of
// the membership session into worker indices.
type node struct {
	c       *Cluster
	sess    Membership
	metrics *metrics.Metrics

	mu   sync.Mutex
	view supervisor.ClusterView
	pool *supervisor.Pool
}

// clustered reports whether the configuration puts this node in a
// multi-node cluster.
func (c *Cluster) clustered() bool { return c.cfg.Registry != "" || c.cfg.ClusterTotal > 0 }

// newNode creates the membership session (not yet joined): Config.Join's
// for a registry, a static one otherwise. Until the first view, every
// worker holds index -1: it does no cluster-wide work.
func (c *Cluster) newNode(m *metrics.Metrics) (*node, error) {
	n := &node{c: c, metrics: m, view: supervisor.ClusterView{Index: -1, Threads: c.cfg.Workers}}
	hooks := MembershipHooks{OnRebalance: n.onRebalance, OnPrepare: n.onPrepare}
	if c.cfg.Registry == "" {
		n.sess = &staticMembership{name: c.cfg.Name, base: c.cfg.ClusterBase, total: c.cfg.ClusterTotal,
			hooks: hooks, threads: c.cfg.Workers}
	} else {
		sess, err := c.cfg.Join(c.cfg, hooks)
		if err != nil {
			return nil, fmt.Errorf("herd: membership: %w", err)
		}
		n.sess = sess
	}
	n.view.Instance = n.sess.ID()
	return n, nil
}

// follow is how command workers follow views: under --on-rebalance
// restart they are replaced, stopping the old worker first in strict
// consistency, so that a command worker holds its index from its start
// until its exit is reaped. Go workers, and commands told by a signal,
// learn views over IPC.
func (c *Cluster) follow() supervisor.Follow {
	switch {
	case !c.clustered() || len(c.cfg.Command) == 0 || c.cfg.OnRebalance != "" && c.cfg.OnRebalance != "restart":
		return supervisor.FollowNone
	case c.cfg.Registry != "" && c.cfg.Consistency == "eventual":
		return supervisor.FollowSurge
	}
	return supervisor.FollowStopFirst
}

// env is the cluster part of slot's environment at its start: what the
// pool gives the worker being launched, which it records as the index the
// worker holds. It runs on the pool's goroutine, inside Launch.
func (n *node) env(slot int) []string {
	index, total, epoch := -1, 0, int64(0)
	if pool := n.c.pool.Load(); pool != nil {
		index, total, epoch = pool.LaunchView(slot)
	}
	return []string{
		envvar.ClusterIndex + "=" + strconv.Itoa(index),
		envvar.ClusterTotal + "=" + strconv.Itoa(total),
		envvar.ClusterEpoch + "=" + strconv.FormatInt(epoch, 10),
	}
}

// run joins the cluster and stays in it until ctx is done, then leaves.
// It follows the pool's scaling with the node's thread count.
func (n *node) run(ctx context.Context, pool *supervisor.Pool, events *eventQueue) {
	n.mu.Lock()
	n.pool = pool
	v := n.view
	n.mu.Unlock()
	pool.SetClusterView(v)
	ch, _, cancel := events.subscribe()
	defer cancel()
	joined := make(chan error, 1)
	go func() { joined <- n.sess.Join(ctx) }()
	for {
		select {
		case err := <-joined:
			if err != nil && ctx.Err() == nil {
				n.c.cfg.Logger.Error("joining the cluster", "err", err)
			}
			joined = nil
		case e, ok := <-ch:
			if ok && e.Type == EventScaled {
				go n.setThreads(ctx, e.Workers)
			}
		case <-ctx.Done():
			lctx, lcancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := n.sess.Leave(lctx); err != nil {
				n.c.cfg.Logger.Warn("leaving the cluster", "err", err)
			}
			lcancel()
			return
		}
	}
}

func (n *node) setThreads(ctx context.Context, threads int) {
	if err := n.sess.SetThreads(ctx, threads); err != nil && ctx.Err() == nil {
		n.c.cfg.Logger.Warn("telling the cluster our new worker count", "workers", threads, "err", err)
	}
}

// onRebalance applies a new view: the pool's stats and workers (which
// replaces command workers under --on-rebalance restart), the metrics,
// and the workers told over IPC or by --on-rebalance's signal.
func (n *node) onRebalance(v ClusterView) {
	n.mu.Lock()
	old := n.view
	n.view = supervisor.ClusterView{Instance: n.sess.ID(), Index: v.Index, Threads: v.Threads, Total: v.Total, Epoch: v.Epoch}
	nv, pool := n.view, n.pool
	n.mu.Unlock()
	n.c.cfg.Logger.Info("cluster view", "index", v.Index, "threads", v.Threads, "total", v.Total, "epoch", v.Epoch, "members", v.Members)
	n.metrics.SetCluster(v.Index, v.Total, int(v.Epoch))
	if pool == nil {
		return
	}
	pool.SetClusterView(nv)
	n.c.channels.each(func(wc workerChannel) { n.tell(wc, nv) })
	if len(n.c.cfg.Command) == 0 || old.Index == nv.Index && old.Threads == nv.Threads && old.Total == nv.Total {
		return
	}
	n.signalRebalance(pool)
}

// greet tells a new worker channel the current view; the worker's
// environment may be older than the channel.
func (n *node) greet(wc workerChannel) {
	n.mu.Lock()
	v := n.view
	n.mu.Unlock()
	n.tell(wc, v)
}

func (n *node) tell(wc workerChannel, v supervisor.ClusterView) {
	_ = wc.conn.Rebalance(v.SlotIndex(wc.slot), v.Total, int(v.Epoch))
}

// signalRebalance sends command workers --on-rebalance's signal when
// their index changed: they may ask their new one over IPC.
func (n *node) signalRebalance(pool *supervisor.Pool) {
	name, ok := strings.CutPrefix(n.c.cfg.OnRebalance, "signal:")
	if !ok {
		return // restart: the pool replaces them; none: nothing
	}
	sig, err := control.ParseSignal(name)
	if err == nil {
		err = pool.Signal(context.Background(), sig, -1)
	}
	if err != nil {
		n.c.cfg.Logger.Warn("on-rebalance signal", "err", err)
	}
}

// onPrepare returns once no worker uses an index the planned view takes
// from it: command workers that hold one under --on-rebalance restart
// have exited and been reaped (killed if they take more than three
// quarters of the time the plan leaves); the other workers have
// acknowledged the planned view over IPC.
func (n *node) onPrepare(ctx context.Context, planned ClusterView) {
	pv := supervisor.ClusterView{Index: planned.Index, Threads: planned.Threads, Total: planned.Total, Epoch: planned.Epoch}
	n.mu.Lock()
	pool := n.pool
	n.mu.Unlock()
	if pool != nil && n.c.follow() == supervisor.FollowStopFirst {
		grace := time.Second
		if d, ok := ctx.Deadline(); ok {
			grace = time.Until(d) * 3 / 4
		}
		if err := pool.Release(ctx, pv, grace); err != nil {
			n.c.cfg.Logger.Warn("workers did not give up their indices before the plan's deadline", "err", err)
		}
		return
	}
	var wg sync.WaitGroup
	for _, wc := range n.c.channels.all() {
		if _, spoke := wc.conn.Hello(); !spoke {
			continue // a command without IPC: nothing to wait for
		}
		wg.Go(func() {
			if err := wc.conn.Prepare(ctx, pv.SlotIndex(wc.slot), pv.Total, int(pv.Epoch)); err != nil {
				n.c.cfg.Logger.Warn("worker did not acknowledge the planned view", "slot", wc.slot, "err", err)
			}
		})
	}
	wg.Wait()
}

// all returns every worker's channel with the worker's slot.
func (ch *channels) all() []workerChannel {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	out := make([]workerChannel, 0, len(ch.conns))
	for _, wc := range ch.conns {
		out = append(out, wc)
	}
	return out
}
