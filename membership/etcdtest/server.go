package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// embedded is an etcd server in this process. Clients reach it through
// front, which cuts their connections before the server stops: the server
// would otherwise wait up to seven seconds for their streams to end.
type embedded struct {
	e     *embed.Etcd
	front *Proxy
}

// startEmbedded starts an embedded server on data and waits until it
// serves.
func startEmbedded(client, peer, data string, front *Proxy, tls *TLSFiles) (*embedded, error) {
	cfg := embed.NewConfig()
	cfg.Name = name
	cfg.Dir = data
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true
	c, p := url.URL{Scheme: "http", Host: client}, url.URL{Scheme: "http", Host: peer}
	if tls != nil {
		c.Scheme = "https"
		cfg.ClientTLSInfo = transport.TLSInfo{CertFile: tls.Cert, KeyFile: tls.Key}
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{c}, []url.URL{c}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{p}, []url.URL{p}
	cfg.InitialCluster = initialCluster(peer)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
		front.Connect()
		return &embedded{e: e, front: front}, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(startTimeout):
		e.Close()
		return nil, errors.New("embedded etcd: not ready in time")
	}
}

func (s *embedded) stop() {
	s.front.Disconnect()
	s.e.Close()
}

// binary is an etcd server run from the etcd binary, a child process.
type binary struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startBinary runs the etcd binary bin on data and waits until it serves.
// Its output goes to etcd.log beside data.
func startBinary(bin, client, peer, data string) (*binary, error) {
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(data), "etcd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("etcdtest: %w", err)
	}
	defer logf.Close()
	c, p := "http://"+client, "http://"+peer
	cmd := exec.Command(bin, "--name", name, "--data-dir", data,
		"--listen-client-urls", c, "--advertise-client-urls", c,
		"--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
		"--initial-cluster", initialCluster(peer), "--unsafe-no-fsync")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("etcdtest: start %s: %w", bin, err)
	}
	b := &binary{cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(b.exited) }()
	if err := b.waitServing(client); err != nil {
		b.stop()
		return nil, fmt.Errorf("etcdtest: %s: %w (log in %s)", bin, err, logf.Name())
	}
	return b, nil
}

// waitServing polls the client API until it answers a read: the server is
// another process, so its port is all there is to wait on.
func (b *binary) waitServing(client string) error {
	c, err := NewClient([]string{client})
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Get(ctx, "/etcdtest/probe")
		cancel()
		switch {
		case err == nil:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("not serving: %w", err)
		}
		select {
		case <-b.exited:
			return errors.New("exited before serving")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop kills the server process and reaps it.
func (b *binary) stop() {
	b.cmd.Process.Kill()
	<-b.exited
}

// restore restores the snapshot at path into the data directory data of
// a server whose peer address is peer.
func restore(path, data, peer string) error {
	err := snapshot.NewV3(zap.NewNop()).Restore(snapshot.RestoreConfig{
		SnapshotPath:        path,
		Name:                name,
		OutputDataDir:       data,
		PeerURLs:            []string{"http://" + peer},
		InitialCluster:      initialCluster(peer),
		InitialClusterToken: "etcd-cluster",
	})
	if err != nil {
		return fmt.Errorf("etcdtest: snapshot restore: %w", err)
	}
	return nil
}
