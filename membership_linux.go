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

// env is the cluster part of slot's environment at its start.
func (n *node) env(slot int) []string {
	n.mu.Lock()
	v := n.view
	n.mu.Unlock()
	return []string{
		envvar.ClusterIndex + "=" + strconv.Itoa(v.SlotIndex(slot)),
		envvar.ClusterTotal + "=" + strconv.Itoa(v.Total),
		envvar.ClusterEpoch + "=" + strconv.FormatInt(v.Epoch, 10),
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

// onRebalance applies a new view: the pool's stats, the metrics, and the
// workers, told over IPC or, for commands, by --on-rebalance.
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
	n.commandRebalance(pool)
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

// commandRebalance tells command workers their index changed, as
// --on-rebalance says: they learn new HERD_CLUSTER_* values by restarting,
// or by asking over IPC after a signal.
func (n *node) commandRebalance(pool *supervisor.Pool) {
	mode := n.c.cfg.OnRebalance
	ctx := context.Background()
	switch {
	case mode == "none":
	case strings.HasPrefix(mode, "signal:"):
		sig, err := control.ParseSignal(strings.TrimPrefix(mode, "signal:"))
		if err == nil {
			err = pool.Signal(ctx, sig, -1)
		}
		if err != nil {
			n.c.cfg.Logger.Warn("on-rebalance signal", "err", err)
		}
	default: // restart
		if _, err := pool.StartRestart(ctx, -1); err != nil {
			n.c.cfg.Logger.Warn("on-rebalance restart", "err", err)
		}
	}
}

// onPrepare waits until every Go worker acknowledged the planned view: it
// has stopped using an index it is about to lose.
func (n *node) onPrepare(ctx context.Context, planned ClusterView) {
	pv := supervisor.ClusterView{Index: planned.Index, Threads: planned.Threads, Total: planned.Total, Epoch: planned.Epoch}
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
