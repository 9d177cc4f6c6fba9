package herd

import (
	"context"
	"os"
	"sync"

	"github.com/herd-cluster/herd/internal/envvar"
)

// clusterIndex is a worker's share of a multi-node cluster.
type clusterIndex struct {
	// deliver orders the application's callbacks: a view is never
	// reported after a newer one. It is held while a callback runs; mu
	// guards the fields and is never held then.
	deliver sync.Mutex

	mu                  sync.Mutex
	set                 bool
	index, total, epoch int
	onChange            func(index, total int, epoch int64)
}

// apply records a view from the primary and tells the application.
func (ci *clusterIndex) apply(index, total, epoch int) {
	ci.deliver.Lock()
	defer ci.deliver.Unlock()
	ci.mu.Lock()
	ci.set, ci.index, ci.total, ci.epoch = true, index, total, epoch
	fn := ci.onChange
	ci.mu.Unlock()
	if fn != nil {
		fn(index, total, int64(epoch))
	}
}

func (ci *clusterIndex) fromEnv() error {
	if os.Getenv(envvar.ClusterIndex) == "" {
		return nil
	}
	var err error
	ci.set = true
	if ci.index, err = atoiEnv(envvar.ClusterIndex, -1); err != nil {
		return err
	}
	if ci.total, err = atoiEnv(envvar.ClusterTotal, 0); err != nil {
		return err
	}
	ci.epoch, err = atoiEnv(envvar.ClusterEpoch, 0)
	return err
}

// ClusterIndex returns the worker's cluster-wide index, the cluster's total
// and the epoch of that view, when its node is in a multi-node cluster
// (ok). Index -1 means "do no cluster-wide work now". In strict
// consistency no two live workers anywhere hold the same index at the same
// time; put the epoch in writes to shared stores so that they can refuse
// writes made under an older view.
func (w *Worker) ClusterIndex() (index, total int, epoch int64, ok bool) {
	ci := &w.cluster
	ci.mu.Lock()
	defer ci.mu.Unlock()
	return ci.index, ci.total, int64(ci.epoch), ci.set
}

// OnRebalance calls fn each time the worker's cluster-wide index, the
// total or the epoch changes, and once at once with the current view when
// the node is in a multi-node cluster. Calls come one at a time and in
// order, on a goroutine of the library's (the first on the caller's); fn
// must not call OnRebalance. Index -1 means "stop cluster-wide work".
func (w *Worker) OnRebalance(fn func(index, total int, epoch int64)) {
	ci := &w.cluster
	ci.deliver.Lock()
	defer ci.deliver.Unlock()
	ci.mu.Lock()
	ci.onChange = fn
	set, index, total, epoch := ci.set, ci.index, ci.total, ci.epoch
	ci.mu.Unlock()
	if set && fn != nil {
		fn(index, total, int64(epoch))
	}
}

// OnPrepare calls fn before a strict rebalance commits: it must stop work
// under any index the worker is about to lose and return; the rebalance
// waits for it (within the cluster TTL's third). index is the planned one.
func (w *Worker) OnPrepare(fn func(ctx context.Context, index, total int, epoch int64) error) {
	if w.ipc == nil {
		return
	}
	w.ipc.OnPrepare(func(ctx context.Context, index, total, epoch int) error {
		return fn(ctx, index, total, int64(epoch))
	})
}
