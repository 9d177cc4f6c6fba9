// Package herdetcd joins a herd primary to a multi-node cluster on etcd v3:
// set herd.Config.Join to Join. It is a package of its own so that programs
// using herd without membership do not link the etcd client.
package herdetcd

import (
	"context"
	"fmt"
	"strings"

	"github.com/herd-cluster/herd"
	"github.com/herd-cluster/herd/membership"
)

var _ herd.Joiner = Join

// Join creates the etcd membership session of a herd node from cfg's
// Registry (with RegistryCA, RegistryCert and RegistryKey for https),
// ClusterKey, ClusterEnv, InstanceID, ClusterTTL, Order and Consistency,
// with one thread per worker.
func Join(cfg herd.Config, hooks herd.MembershipHooks) (herd.Membership, error) {
	endpoints, err := membership.ParseRegistry(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	opts := []membership.Option{
		membership.WithEndpoints(endpoints...),
		membership.WithThreads(cfg.Workers),
		membership.WithOnRebalance(func(v membership.View) { hooks.OnRebalance(view(v)) }),
		membership.WithOnPrepare(func(ctx context.Context, v membership.View) { hooks.OnPrepare(ctx, view(v)) }),
	}
	if cfg.Logger != nil {
		opts = append(opts, membership.WithLogger(cfg.Logger))
	}
	if strings.HasPrefix(endpoints[0], "https://") {
		tlsCfg, err := membership.TLSConfig(cfg.RegistryCA, cfg.RegistryCert, cfg.RegistryKey)
		if err != nil {
			return nil, err
		}
		opts = append(opts, membership.WithTLS(tlsCfg))
	}
	for _, o := range []struct {
		set bool
		opt membership.Option
	}{
		{cfg.ClusterEnv != "", membership.WithEnv(cfg.ClusterEnv)},
		{cfg.InstanceID != "", membership.WithInstanceID(cfg.InstanceID)},
		{cfg.ClusterTTL != 0, membership.WithTTL(cfg.ClusterTTL)},
		{cfg.Order != "", membership.WithOrder(membership.Order(cfg.Order))},
		{cfg.Consistency != "", membership.WithConsistency(membership.Consistency(cfg.Consistency))},
	} {
		if o.set {
			opts = append(opts, o.opt)
		}
	}
	return membership.New(cfg.ClusterKey, opts...)
}

func view(v membership.View) herd.ClusterView {
	return herd.ClusterView{Index: v.Index, Threads: v.Threads, Total: v.Total, Epoch: v.Epoch, Members: len(v.Members)}
}
