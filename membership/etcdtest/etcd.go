// Package etcdtest runs an etcd server inside the calling process, for the
// tests and benchmarks of membership and of programs built on it, and a TCP
// proxy in front of it whose traffic can be frozen to simulate a network
// stall.
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// EndpointsEnv names the environment variable that makes Start use an
// external etcd instead of an embedded one: a comma-separated list of
// host:port.
const EndpointsEnv = "MEMBERSHIP_ETCD_ENDPOINTS"

// startTimeout bounds how long Start waits for the embedded server to be
// ready.
const startTimeout = 30 * time.Second

// Etcd is a running etcd: an embedded server, or the external one named by
// EndpointsEnv.
type Etcd struct {
	e         *embed.Etcd
	endpoints []string
}

// Start starts a single-node etcd with its data in dir, listening on
// 127.0.0.1 ports chosen by the system, and waits until it serves. If
// EndpointsEnv is set, Start starts nothing and returns those endpoints.
func Start(dir string) (*Etcd, error) {
	if env := os.Getenv(EndpointsEnv); env != "" {
		return &Etcd{endpoints: strings.Split(env, ",")}, nil
	}
	cfg := embed.NewConfig()
	cfg.Name = "etcdtest"
	cfg.Dir = dir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true
	local := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls = []url.URL{local}
	cfg.AdvertiseClientUrls = []url.URL{local}
	cfg.ListenPeerUrls = []url.URL{local}
	cfg.AdvertisePeerUrls = []url.URL{local}
	cfg.InitialCluster = cfg.Name + "=" + local.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(startTimeout):
		e.Close()
		return nil, errors.New("embedded etcd: not ready in time")
	}
	eps := make([]string, len(e.Clients))
	for i, l := range e.Clients {
		eps[i] = l.Addr().String()
	}
	return &Etcd{e: e, endpoints: eps}, nil
}

// Endpoints returns the host:port addresses of the server's client API.
func (s *Etcd) Endpoints() []string { return s.endpoints }

// Embedded reports whether the server runs in this process (false when
// EndpointsEnv named an external one).
func (s *Etcd) Embedded() bool { return s.e != nil }

// Close stops an embedded server; it does nothing for an external one.
func (s *Etcd) Close() {
	if s.e != nil {
		s.e.Close()
	}
}

// Compact writes a key outside any cluster's prefix and compacts the
// server's history up to that write, as an operator or auto-compaction
// would: watches that resume from before it fail with ErrCompacted.
func (s *Etcd) Compact(ctx context.Context) (int64, error) {
	c, err := NewClient(s.endpoints)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	resp, err := c.Put(ctx, "/etcdtest/compact-probe", "")
	if err != nil {
		return 0, fmt.Errorf("compact: %w", err)
	}
	rev := resp.Header.Revision
	if _, err := c.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		return 0, fmt.Errorf("compact at %d: %w", rev, err)
	}
	return rev, nil
}
