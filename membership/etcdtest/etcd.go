// Package etcdtest runs an etcd server for the tests and benchmarks of
// membership and of programs built on it: inside the calling process, or
// as a child process of the etcd binary, either of which it can restart
// with its data, with none, or from a snapshot. It also runs a TCP proxy
// whose traffic can be frozen, to simulate a network stall, and counted.
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/snapshot"
	"go.uber.org/zap"
)

// EndpointsEnv names the environment variable that makes Start use an
// external etcd instead of starting one: a comma-separated list of
// host:port. An external etcd cannot be restarted.
const EndpointsEnv = "MEMBERSHIP_ETCD_ENDPOINTS"

// BinaryEnv names the environment variable that makes Start run the etcd
// binary at that path as a child process instead of an embedded server.
const BinaryEnv = "MEMBERSHIP_ETCD_BINARY"

// startTimeout bounds how long Start waits for a server to be ready.
const startTimeout = 30 * time.Second

// Etcd is a running etcd: an embedded server, a child process of the
// etcd binary, or the external one named by EndpointsEnv.
type Etcd struct {
	dir       string // holds the data directories
	gen       int    // data directories made so far
	client    string // host:port of the client API
	peer      string // host:port of the peer API
	endpoints []string
	srv       server // nil for an external etcd
	front     *Proxy // in front of an embedded server
	tls       *TLSFiles
}

// server is one run of an etcd server.
type server interface {
	stop()
}

// Start starts a single-node etcd with its data under dir, listening on
// 127.0.0.1 ports chosen by the system, and waits until it serves. If
// EndpointsEnv is set, Start starts nothing and returns those endpoints;
// if BinaryEnv is set, it runs that binary.
func Start(dir string) (*Etcd, error) {
	if env := os.Getenv(EndpointsEnv); env != "" {
		return &Etcd{endpoints: strings.Split(env, ",")}, nil
	}
	return start(dir, nil)
}

// StartTLS starts an embedded etcd like Start whose client API speaks TLS
// with a certificate for 127.0.0.1 signed by an authority of its own; its
// endpoints are https:// URLs and TLS names the files. It ignores
// EndpointsEnv and BinaryEnv.
func StartTLS(dir string) (*Etcd, TLSFiles, error) {
	files, err := WriteTLSFiles(dir)
	if err != nil {
		return nil, TLSFiles{}, err
	}
	s, err := start(dir, &files)
	return s, files, err
}

// start starts the server, embedded with TLS when tls is set.
func start(dir string, tls *TLSFiles) (*Etcd, error) {
	addrs, err := freeAddrs(2)
	if err != nil {
		return nil, err
	}
	client, peer := addrs[0], addrs[1]
	s := &Etcd{dir: dir, client: client, peer: peer, endpoints: []string{client}, tls: tls}
	if os.Getenv(BinaryEnv) == "" || tls != nil {
		if s.front, err = NewProxy(client); err != nil {
			return nil, err
		}
		s.front.Disconnect()
		s.endpoints = []string{s.front.Addr()}
		if tls != nil {
			s.endpoints = []string{"https://" + s.front.Addr()}
		}
	}
	if err := s.run(s.newDataDir()); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// freeAddrs returns n distinct loopback host:port addresses that were
// free a moment ago: they are fixed for the server's life, so that a
// restart keeps them.
func freeAddrs(n int) ([]string, error) {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("etcdtest: %w", err)
		}
		defer l.Close() // held until all are chosen, so that none repeats
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// newDataDir returns the path of a data directory not used yet.
func (s *Etcd) newDataDir() string {
	s.gen++
	return filepath.Join(s.dir, fmt.Sprintf("data%d", s.gen))
}

// run starts the server on data and waits until it serves.
func (s *Etcd) run(data string) error {
	var err error
	if bin := os.Getenv(BinaryEnv); bin != "" && s.tls == nil {
		s.srv, err = startBinary(bin, s.client, s.peer, data)
	} else {
		s.srv, err = startEmbedded(s.client, s.peer, data, s.front, s.tls)
	}
	return err
}

// Endpoints returns the addresses of the server's client API: host:port,
// or https:// URLs for a server started by StartTLS.
func (s *Etcd) Endpoints() []string { return s.endpoints }

// Embedded reports whether the server runs in this process.
func (s *Etcd) Embedded() bool {
	_, ok := s.srv.(*embedded)
	return ok
}

// Restartable reports whether the Restart methods work: the server is
// embedded or a child process, not an external one.
func (s *Etcd) Restartable() bool { return s.srv != nil }

// Close stops the server; it does nothing for an external one.
func (s *Etcd) Close() {
	if s.srv != nil {
		s.srv.stop()
		s.srv = nil
	}
	if s.front != nil {
		s.front.Close()
		s.front = nil
	}
}

// errExternal refuses to restart an external server.
var errExternal = errors.New("etcdtest: an external etcd cannot be restarted")

// Restart stops the server and starts it again on the same data and
// addresses.
func (s *Etcd) Restart() error {
	if s.srv == nil {
		return errExternal
	}
	s.srv.stop()
	return s.run(filepath.Join(s.dir, fmt.Sprintf("data%d", s.gen)))
}

// RestartEmpty stops the server and starts it again on the same
// addresses with an empty data directory, as after losing its disk.
func (s *Etcd) RestartEmpty() error {
	if s.srv == nil {
		return errExternal
	}
	s.srv.stop()
	return s.run(s.newDataDir())
}

// SaveSnapshot saves a snapshot of the server's data to path, as
// `etcdctl snapshot save` does.
func (s *Etcd) SaveSnapshot(ctx context.Context, path string) error {
	cfg := clientv3.Config{Endpoints: s.endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(), Context: ctx}
	if _, err := snapshot.SaveWithVersion(ctx, zap.NewNop(), cfg, path); err != nil {
		return fmt.Errorf("etcdtest: snapshot save: %w", err)
	}
	return nil
}

// RestartFromSnapshot stops the server, restores the snapshot at path
// into a new data directory, as `etcdutl snapshot restore` does, and
// starts the server on it: the data goes back to the snapshot's, and so
// does the revision.
func (s *Etcd) RestartFromSnapshot(path string) error {
	if s.srv == nil {
		return errExternal
	}
	s.srv.stop()
	data := s.newDataDir()
	if err := restore(path, data, s.peer); err != nil {
		return err
	}
	return s.run(data)
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

// name is the server's member name, and initialCluster the cluster it
// bootstraps, the same in every run so that its cluster id stays.
const name = "etcdtest"

func initialCluster(peer string) string {
	return name + "=" + (&url.URL{Scheme: "http", Host: peer}).String()
}
