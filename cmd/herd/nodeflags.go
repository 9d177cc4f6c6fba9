package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/herd-cluster/herd"
	"github.com/herd-cluster/herd/membership"
	"github.com/herd-cluster/herd/membership/herdetcd"
)

// nodeFlags holds the values of the multi-node cluster flags.
type nodeFlags struct {
	registry     string
	tls          registryTLS
	clusterKey   string
	clusterEnv   string
	instanceID   string
	clusterTTL   time.Duration
	consistency  string
	order        string
	clusterBase  int
	clusterTotal int
	onRebalance  string
}

// addNodeFlags registers the Multi-node cluster section.
func (n *nodeFlags) addNodeFlags(fs *pflag.FlagSet) {
	g := "Multi-node cluster"
	n.clusterEnv, n.clusterTTL = membership.DefaultEnv, membership.DefaultTTL
	n.consistency, n.order = string(membership.Strict), string(membership.OrderJoin)
	n.onRebalance = "restart"
	add(fs, g, &stringValue{&n.registry, checkRegistry}, "registry", "`etcd://HOST:PORT[,HOST:PORT]`",
		"Join a multi-node cluster through these etcd v3 endpoints (etcd://, http:// or https://, comma-separated): each worker gets a cluster-wide index (this node's base + its slot) and the total, as HERD_CLUSTER_INDEX, HERD_CLUSTER_TOTAL and HERD_CLUSTER_EPOCH. Needs --cluster-key.")
	n.tls.addFlags(fs, g)
	add(fs, g, &stringValue{&n.clusterKey, checkClusterName(true)}, "cluster-key", "`KEY`",
		"Name of the cluster in etcd, typically the application's.")
	add(fs, g, &stringValue{&n.clusterEnv, checkClusterName(false)}, "cluster-env", "`ENV`",
		"Environment of the cluster, so that production and staging nodes of one key stay apart.")
	add(fs, g, &stringValue{&n.instanceID, checkClusterName(true)}, "instance-id", "`ID`",
		"Name of this node in the cluster; unique among its live nodes. Default: a new UUID.")
	add(fs, g, &durationValue{p: &n.clusterTTL, min: membership.MinTTL}, "cluster-ttl", "`DURATION`",
		"Lease of this node's membership: a node that dies is dropped this long after its last renewal. At least 2s.")
	add(fs, g, &enumValue{&n.consistency, []string{"strict", "eventual"}}, "consistency", "`strict|eventual`",
		"strict: rebalances go in two phases through an elected sequencer, so no index is ever held by two workers at once; eventual: views come straight from the member list, faster.")
	add(fs, g, &enumValue{&n.order, []string{"join", "id"}}, "order", "`join|id`",
		"Order of the nodes' bases: join order (a newcomer never shifts the others) or instance id.")
	add(fs, g, &intValue{&n.clusterBase, 0}, "cluster-base", "`N`",
		"Static cluster, without etcd: the worker in slot s gets index N+s of --cluster-total, epoch 0.")
	add(fs, g, &intValue{&n.clusterTotal, 0}, "cluster-total", "`N`",
		"Total of indices of a static cluster; 0 for none.")
	add(fs, g, &rebalanceValue{&n.onRebalance}, "on-rebalance", "`restart|signal:NAME|none`",
		"What command workers get when their index or the total changes: a restart (they start with the new HERD_CLUSTER_* values; in strict consistency the old worker is stopped first, and a worker holds its index until its exit is reaped), a signal such as signal:HUP (they may ask their index over IPC), or nothing. Go workers are told over IPC.")
}

// check refuses combinations no single flag can judge. workers is the
// resolved --workers.
func (n *nodeFlags) check(workers int) error {
	static := n.clusterTotal > 0
	switch {
	case n.registry != "" && n.clusterKey == "":
		return usageErrorf("--registry needs --cluster-key")
	case n.registry != "" && (static || n.clusterBase > 0):
		return usageErrorf("give --registry or a static --cluster-base and --cluster-total, not both")
	case n.clusterBase > 0 && !static:
		return usageErrorf("--cluster-base needs --cluster-total")
	case static && n.clusterBase+workers > n.clusterTotal:
		return usageErrorf("--cluster-base %d + %d workers does not fit in --cluster-total %d",
			n.clusterBase, workers, n.clusterTotal)
	case n.registry == "":
		if name := n.dynamicOnly(); name != "" {
			return usageErrorf("--%s needs --registry", name)
		}
	}
	return n.tls.check(n.registry)
}

// dynamicOnly returns the first option that only a --registry cluster
// uses and that was given another value than its default, or "".
func (n *nodeFlags) dynamicOnly() string {
	for _, o := range []struct {
		name string
		set  bool
	}{
		{"cluster-key", n.clusterKey != ""},
		{"cluster-env", n.clusterEnv != membership.DefaultEnv},
		{"instance-id", n.instanceID != ""},
		{"cluster-ttl", n.clusterTTL != membership.DefaultTTL},
		{"consistency", n.consistency != string(membership.Strict)},
		{"order", n.order != string(membership.OrderJoin)},
		{"on-rebalance", n.onRebalance != "restart"},
		{"registry-ca", n.tls.ca != ""},
		{"registry-cert", n.tls.cert != ""},
		{"registry-key", n.tls.key != ""},
	} {
		if o.set {
			return o.name
		}
	}
	return ""
}

// apply copies the values into cfg. Without --registry the options of a
// dynamic cluster stay zero.
func (n *nodeFlags) apply(cfg *herd.Config) {
	cfg.ClusterBase, cfg.ClusterTotal = n.clusterBase, n.clusterTotal
	if n.registry == "" {
		return
	}
	cfg.Registry, cfg.ClusterKey, cfg.ClusterEnv, cfg.InstanceID = n.registry, n.clusterKey, n.clusterEnv, n.instanceID
	cfg.ClusterTTL, cfg.Consistency, cfg.Order = n.clusterTTL, n.consistency, n.order
	cfg.OnRebalance = n.onRebalance
	cfg.RegistryCA, cfg.RegistryCert, cfg.RegistryKey = n.tls.ca, n.tls.cert, n.tls.key
	cfg.Join = herdetcd.Join
}

// checkRegistry validates --registry with membership.ParseRegistry; empty
// means none.
func checkRegistry(s string) error {
	if s == "" {
		return nil
	}
	if _, err := membership.ParseRegistry(s); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), fmt.Sprintf("registry %q: ", s)))
	}
	return nil
}

// registryTLS holds the TLS files of an https:// registry.
type registryTLS struct{ ca, cert, key string }

// addFlags registers --registry-ca, --registry-cert and --registry-key in
// help section g.
func (r *registryTLS) addFlags(fs *pflag.FlagSet, g string) {
	add(fs, g, &stringValue{&r.ca, checkReadable}, "registry-ca", "`FILE`",
		"PEM file of the authorities an https:// registry's certificate is checked against. Default: the system's.")
	add(fs, g, &stringValue{&r.cert, checkReadable}, "registry-cert", "`FILE`",
		"PEM file of this node's client certificate for an https:// registry, with --registry-key.")
	add(fs, g, &stringValue{&r.key, checkReadable}, "registry-key", "`FILE`",
		"PEM file of the key of --registry-cert.")
}

// check refuses TLS files without an https:// registry, a certificate
// without its key, and files that are not the PEM they should be.
func (r *registryTLS) check(registry string) error {
	if r.ca == "" && r.cert == "" && r.key == "" {
		return nil
	}
	if !strings.HasPrefix(registry, "https://") {
		return usageErrorf("--registry-ca, --registry-cert and --registry-key need an https:// --registry")
	}
	if (r.cert == "") != (r.key == "") {
		return usageErrorf("--registry-cert and --registry-key go together")
	}
	if _, err := membership.TLSConfig(r.ca, r.cert, r.key); err != nil {
		return usageErrorf("--registry-ca/--registry-cert/--registry-key: %v", strings.TrimPrefix(err.Error(), "membership: "))
	}
	return nil
}

// checkReadable refuses a path that is not a readable file; empty means
// none.
func checkReadable(s string) error {
	if s == "" {
		return nil
	}
	f, err := os.Open(s)
	if err != nil {
		return errors.Unwrap(err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.IsDir() {
		return errors.New("not a file")
	}
	return nil
}

// checkClusterName returns the check of a name that becomes part of an
// etcd key: no slash or NUL, and, unless emptyOK, not empty.
func checkClusterName(emptyOK bool) func(string) error {
	return func(s string) error {
		if (s == "" && !emptyOK) || strings.ContainsAny(s, "/\x00") {
			return membership.ErrBadName
		}
		return nil
	}
}

// rebalanceValue is --on-rebalance: restart, none or signal:NAME, kept as
// signal:HUP whatever way the signal was written.
type rebalanceValue struct {
	p *string
}

// Set accepts restart, none or signal:NAME with a signal parseSignal reads.
func (v *rebalanceValue) Set(s string) error {
	t := strings.TrimSpace(s)
	if w := strings.ToLower(t); w == "restart" || w == "none" {
		*v.p = w
		return nil
	}
	prefix, name, ok := strings.Cut(t, ":")
	if !ok || !strings.EqualFold(prefix, "signal") {
		return errors.New("must be restart, signal:NAME (such as signal:HUP) or none")
	}
	sig, err := parseSignal(name)
	if err != nil {
		return err
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGSTOP {
		return fmt.Errorf("%s cannot be caught: use restart", signalName(sig))
	}
	*v.p = "signal:" + signalName(sig)
	return nil
}

// String returns the current value.
func (v *rebalanceValue) String() string { return *v.p }

// Type names the value kind for help output.
func (v *rebalanceValue) Type() string { return "rebalance" }
