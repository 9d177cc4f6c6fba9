package membership

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/herd-cluster/herd/membership/etcdtest"
)

// TestTLSRegistry joins an etcd that speaks TLS through its https://
// endpoint: with its authority the instance gets a view; trusting only
// the system's authorities it never registers.
func TestTLSRegistry(t *testing.T) {
	t.Parallel()
	e, files, err := etcdtest.StartTLS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	eps, err := ParseRegistry(e.Endpoints()[0])
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := TLSConfig(files.CA, "", "")
	if err != nil {
		t.Fatal(err)
	}
	views := make(chan View, 10)
	s, err := New("tls", WithEndpoints(eps...), WithTLS(cfg), WithConsistency(Eventual), WithTTL(testTTL),
		WithOnRebalance(func(v View) { views <- v }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Join(ctx); err != nil {
		t.Fatalf("join over TLS: %v", err)
	}
	for v := range views {
		if v.Index == 0 && v.Total == 1 {
			break
		}
	}
	if err := s.Leave(ctx); err != nil {
		t.Error(err)
	}

	untrusted, err := New("tls", WithEndpoints(eps...), WithConsistency(Eventual), WithTTL(testTTL))
	if err != nil {
		t.Fatal(err)
	}
	defer untrusted.Close()
	short, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if err := untrusted.Join(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("join without the authority: %v; want it to keep failing", err)
	}
}

// TestTLSConfigRefuses checks the TLS files TLSConfig refuses.
func TestTLSConfigRefuses(t *testing.T) {
	for name, files := range map[string][3]string{
		"cert-without-key": {"", "cert.pem", ""},
		"missing-ca":       {"/nonexistent/ca.pem", "", ""},
	} {
		if _, err := TLSConfig(files[0], files[1], files[2]); err == nil {
			t.Errorf("%s: TLSConfig%q succeeded; want an error", name, files)
		}
	}
	if s, err := New("app", WithEndpoints("127.0.0.1:2379"), WithTLS(nil)); err != nil {
		t.Errorf("a nil TLS configuration: %v", err)
	} else {
		s.Close()
	}
	if s, err := New("app", WithEndpoints("127.0.0.1:2379"), WithTLS(mustTLS(t))); err == nil {
		s.Close()
		t.Error("TLS with plain endpoints succeeded; want an error")
	}
}

func mustTLS(t *testing.T) *tls.Config {
	cfg, err := TLSConfig("", "", "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
