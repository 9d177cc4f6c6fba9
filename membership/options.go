package membership

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// DefaultEnv is the environment of a session created without WithEnv.
const DefaultEnv = "production"

// DefaultTTL is the lease TTL of a session created without WithTTL.
const DefaultTTL = 10 * time.Second

// MinTTL is the shortest TTL New accepts: etcd does not grant shorter
// leases.
const MinTTL = 2 * time.Second

// Order is how a dynamic cluster orders its instances to hand out bases.
type Order string

const (
	// OrderJoin orders instances by when they joined (their member key's
	// CreateRevision): a newcomer goes last and never shifts existing bases.
	OrderJoin Order = "join"
	// OrderID orders instances by instance id, as libcluster did.
	OrderID Order = "id"
)

// Consistency is what a dynamic cluster promises about indices while it
// rebalances.
type Consistency string

const (
	// Strict promises that no two live workers ever hold the same index at
	// overlapping times: rebalances go through an elected sequencer in two
	// phases, prepare and commit.
	Strict Consistency = "strict"
	// Eventual derives views straight from the member list: faster, but two
	// instances may briefly disagree, as with libcluster.
	Eventual Consistency = "eventual"
)

// Option configures a Session, in the style of etcd's
// concurrency.SessionOption.
type Option func(*options)

// options is a Session's configuration.
type options struct {
	env         string
	id          string
	threads     int
	endpoints   []string
	tls         *tls.Config
	client      *clientv3.Client
	static      bool
	base, total int
	ttl         time.Duration
	order       Order
	consistency Consistency
	onRebalance func(View)
	onPrepare   func(context.Context, View)
	addr        string
	version     string
	logger      *slog.Logger
}

// WithEnv sets the cluster environment (production, dev, …). The default
// is DefaultEnv.
func WithEnv(env string) Option { return func(o *options) { o.env = env } }

// WithInstanceID sets this instance's identifier, unique in the cluster.
// The default is a random UUID.
func WithInstanceID(id string) Option { return func(o *options) { o.id = id } }

// WithThreads sets this instance's thread count, the number of indices it
// holds. The default is 1.
func WithThreads(n int) Option { return func(o *options) { o.threads = n } }

// WithEndpoints makes the cluster dynamic, registered in the etcd v3
// cluster at endpoints: host:port, http://host:port, or https://host:port
// for TLS (as ParseRegistry returns them). The session creates its own
// client and closes it when it ends.
func WithEndpoints(endpoints ...string) Option {
	return func(o *options) { o.endpoints = endpoints }
}

// WithTLS sets the TLS configuration of the client WithEndpoints creates
// for https:// endpoints (TLSConfig builds one from PEM files). The
// default trusts the system's authorities and presents no certificate.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithClient makes the cluster dynamic, registered through c, which the
// caller keeps and closes after the session ends. A sequencer campaign cut
// short while etcd is unreachable finishes in the background until etcd
// answers or c is closed.
func WithClient(c *clientv3.Client) Option { return func(o *options) { o.client = c } }

// WithStatic makes the cluster static: this instance's first index is base
// in a cluster of total indices, configured alike on every instance, with
// no coordination. Its views have epoch 0.
func WithStatic(base, total int) Option {
	return func(o *options) { o.static, o.base, o.total = true, base, total }
}

// WithTTL sets the lease TTL of a dynamic session: how long after a crash
// the others drop the instance. The default is DefaultTTL; shorter than
// MinTTL is an error. etcd grants whole seconds, rounded up.
func WithTTL(ttl time.Duration) Option { return func(o *options) { o.ttl = ttl } }

// WithOrder sets how instances are ordered. The default is OrderJoin.
func WithOrder(order Order) Option { return func(o *options) { o.order = order } }

// WithConsistency sets the consistency of a dynamic cluster. The default
// is Strict. All instances of a cluster must use the same.
func WithConsistency(c Consistency) Option { return func(o *options) { o.consistency = c } }

// WithOnRebalance sets the function called with every new view, one call
// at a time, in order, from the session's goroutine. When a view takes
// indices away (Index -1, or another range), the session considers them
// released once the call returns, so it must return promptly (well within
// a third of the TTL) and stop the work done under them first. It must not
// call the session's methods. The default does nothing.
func WithOnRebalance(f func(View)) Option { return func(o *options) { o.onRebalance = f } }

// WithOnPrepare sets the function a strict session calls when a planned
// rebalance would change this instance's indices, after a view with Index
// -1 and before it acknowledges the plan: it receives the planned view
// (Epoch 0) and returns once no worker uses the old indices any more. It
// must return before ctx is done, which is when the sequencer may commit
// without it. It must not call the session's methods. The default returns
// at once.
func WithOnPrepare(f func(ctx context.Context, planned View)) Option {
	return func(o *options) { o.onPrepare = f }
}

// WithAddr sets the address this instance publishes for its peers. The
// default is none.
func WithAddr(addr string) Option { return func(o *options) { o.addr = addr } }

// WithVersion sets the software version this instance publishes. The
// default is the main module's version from the build information.
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// WithLogger sets where the session logs (joins, retries, fences,
// rebalances). The default discards the logs.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// newOptions applies opts over the defaults and checks the result.
func newOptions(key string, opts []Option) (*options, error) {
	o := &options{env: DefaultEnv, threads: 1, ttl: DefaultTTL, order: OrderJoin, consistency: Strict}
	for _, opt := range opts {
		opt(o)
	}
	if o.id == "" {
		id, err := newUUID()
		if err != nil {
			return nil, err
		}
		o.id = id
	}
	if o.version == "" {
		o.version = buildVersion()
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	o.logger = o.logger.With("key", key, "env", o.env, "id", o.id)
	if err := o.check(key); err != nil {
		return nil, err
	}
	return o, nil
}

// check reports a configuration New cannot use.
func (o *options) check(key string) error {
	for _, n := range []struct{ what, v string }{{"key", key}, {"env", o.env}, {"instance id", o.id}} {
		if n.v == "" || strings.ContainsAny(n.v, "/\x00") {
			return fmt.Errorf("membership: %s %q: %w", n.what, n.v, ErrBadName)
		}
	}
	if o.threads < 1 {
		return fmt.Errorf("membership: thread count %d: must be at least 1", o.threads)
	}
	dynamic := len(o.endpoints) > 0 || o.client != nil
	switch {
	case o.static && dynamic:
		return errors.New("membership: static and etcd options both given")
	case !o.static && !dynamic:
		return errors.New("membership: neither static base and total nor etcd endpoints given")
	case o.static && (o.base < 0 || o.base+o.threads > o.total):
		return fmt.Errorf("membership: static base %d with %d threads does not fit a total of %d", o.base, o.threads, o.total)
	case o.ttl < MinTTL:
		return fmt.Errorf("membership: ttl %s: %w", o.ttl, ErrTTLTooShort)
	case o.order != OrderJoin && o.order != OrderID:
		return fmt.Errorf("membership: order %q: want join or id", o.order)
	case o.consistency != Strict && o.consistency != Eventual:
		return fmt.Errorf("membership: consistency %q: want strict or eventual", o.consistency)
	case o.tls != nil && !slices.ContainsFunc(o.endpoints, isTLSEndpoint):
		return errors.New("membership: a TLS configuration needs https:// endpoints")
	}
	return nil
}

// isTLSEndpoint reports whether an endpoint speaks TLS.
func isTLSEndpoint(ep string) bool { return strings.HasPrefix(ep, "https://") }

// buildVersion returns the main module's version, or "dev".
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// pid is this process's id, published in the member record.
var pid = os.Getpid()
