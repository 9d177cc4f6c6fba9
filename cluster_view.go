package herd

import (
	"context"
	"sync"
)

// ClusterView is this node's share of a multi-node cluster: slot s of the
// node holds the cluster-wide index Index+s while s < Threads. Index -1
// means the node holds nothing and its workers do no cluster-wide work.
type ClusterView struct {
	Index, Threads, Total int
	Epoch                 int64
	// Members counts the nodes in the view.
	Members int
}

// Membership is a node's session in a multi-node cluster, as the primary
// drives it. The membership package's etcd sessions implement it (through
// the herdetcd package); static clusters need none.
type Membership interface {
	// ID names this node in the cluster.
	ID() string
	// Join registers the node; views arrive through the hooks.
	Join(ctx context.Context) error
	// SetThreads changes the node's worker count after a scale.
	SetThreads(ctx context.Context, n int) error
	// Leave gives up the node's indices and leaves the cluster.
	Leave(ctx context.Context) error
}

// MembershipHooks are how a Membership tells the primary about views.
type MembershipHooks struct {
	// OnRebalance applies a new view. It must return quickly.
	OnRebalance func(ClusterView)
	// OnPrepare returns once the workers stopped using indices the planned
	// view takes from them (strict consistency).
	OnPrepare func(ctx context.Context, planned ClusterView)
}

// Joiner creates a node's Membership for cfg.Registry. The herdetcd
// package's Join is the one for etcd; keeping it out of this package keeps
// the etcd client out of programs that do not use it.
type Joiner func(cfg Config, hooks MembershipHooks) (Membership, error)

// staticMembership is a cluster whose shape is configured: slot s holds
// ClusterBase+s of ClusterTotal, epoch 0, with no coordination.
type staticMembership struct {
	name        string
	base, total int
	hooks       MembershipHooks

	mu      sync.Mutex
	threads int
}

func (s *staticMembership) ID() string { return s.name }

func (s *staticMembership) Join(context.Context) error {
	s.mu.Lock()
	n := s.threads
	s.mu.Unlock()
	s.hooks.OnRebalance(s.view(n))
	return nil
}

func (s *staticMembership) SetThreads(_ context.Context, n int) error {
	s.mu.Lock()
	s.threads = n
	s.mu.Unlock()
	s.hooks.OnRebalance(s.view(n))
	return nil
}

func (s *staticMembership) Leave(context.Context) error {
	s.hooks.OnRebalance(ClusterView{Index: -1, Total: s.total})
	return nil
}

// view gives the slots that fit in the total their indices; slots past it
// hold none.
func (s *staticMembership) view(threads int) ClusterView {
	return ClusterView{Index: s.base, Threads: min(threads, s.total-s.base), Total: s.total, Members: 1}
}
