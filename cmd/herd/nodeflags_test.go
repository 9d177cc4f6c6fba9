package main

import (
	"os"
	"testing"
	"time"

	"github.com/herd-cluster/herd"
	"github.com/herd-cluster/herd/membership/etcdtest"
)

// registryArgs make a dynamic cluster, which the options of one need.
var registryArgs = []string{"--registry", "etcd://127.0.0.1:2379", "--cluster-key", "app"}

// TestNodePrecedence checks flag > environment > file > default for the
// multi-node flags: strings, a duration, enums, ints and --on-rebalance.
func TestNodePrecedence(t *testing.T) {
	for _, tc := range []struct {
		precedenceCase
		base []string
	}{
		{precedenceCase{"cluster-env", "staging", "dev", "prod", func(c herd.Config) any { return c.ClusterEnv },
			"production", "staging", "dev", "prod"}, registryArgs},
		{precedenceCase{"instance-id", "node-f", "node-e", "node-a", func(c herd.Config) any { return c.InstanceID },
			"", "node-f", "node-e", "node-a"}, registryArgs},
		{precedenceCase{"cluster-ttl", "5s", "2s", "30s", func(c herd.Config) any { return c.ClusterTTL },
			10 * time.Second, 5 * time.Second, 2 * time.Second, 30 * time.Second}, registryArgs},
		{precedenceCase{"consistency", "eventual", "strict", "EVENTUAL", func(c herd.Config) any { return c.Consistency },
			"strict", "eventual", "strict", "eventual"}, registryArgs},
		{precedenceCase{"order", "id", "join", "id", func(c herd.Config) any { return c.Order },
			"join", "id", "join", "id"}, registryArgs},
		{precedenceCase{"on-rebalance", "none", "signal:hup", "signal:SIGUSR1", func(c herd.Config) any { return c.OnRebalance },
			"restart", "none", "signal:HUP", "signal:USR1"}, registryArgs},
		{precedenceCase{"cluster-total", "8", "10", "0", func(c herd.Config) any { return c.ClusterTotal },
			0, 8, 10, 0}, []string{"--workers", "2"}},
		{precedenceCase{"cluster-base", "2", "4", "0", func(c herd.Config) any { return c.ClusterBase },
			0, 2, 4, 0}, []string{"--workers", "2", "--cluster-total", "8"}},
	} {
		checkPrecedence(t, tc.precedenceCase, tc.base...)
	}
}

// TestRegistryPrecedence checks --registry and --cluster-key, which need
// each other, from each source.
func TestRegistryPrecedence(t *testing.T) {
	file := writeFile(t, "registry: etcd://f:1\ncluster-key: fk\n")
	check := func(args []string, registry, key string) {
		t.Helper()
		r := runHerd(t, append(args, "--", "true")...)
		if r.code != 0 || r.cfg.Registry != registry || r.cfg.ClusterKey != key {
			t.Errorf("herd %q: code %d stderr %q registry %q key %q; want %q %q",
				args, r.code, r.stderr, r.cfg.Registry, r.cfg.ClusterKey, registry, key)
		}
	}
	check([]string{"run"}, "", "")
	check([]string{"run", "--config", file}, "etcd://f:1", "fk")
	t.Setenv("HERD_REGISTRY", "etcd://e:2,e2:3")
	t.Setenv("HERD_CLUSTER_KEY", "ek")
	check([]string{"run", "--config", file}, "etcd://e:2,e2:3", "ek")
	check([]string{"run", "--config", file, "--registry", "etcd://a:4", "--cluster-key", "ak"}, "etcd://a:4", "ak")
}

// TestNodeFlagsConfig checks the multi-node flags reach their Config
// fields, and that without --registry the dynamic options stay zero.
func TestNodeFlagsConfig(t *testing.T) {
	r := runHerd(t, "run", "--workers", "2", "--registry", "etcd://10.0.0.1:2379,10.0.0.2:2379", "--cluster-key", "api",
		"--cluster-env", "dev", "--instance-id", "node1", "--cluster-ttl", "3s", "--consistency", "eventual",
		"--order", "id", "--on-rebalance", "signal:SIGHUP", "--", "true")
	want := herd.Config{Registry: "etcd://10.0.0.1:2379,10.0.0.2:2379", ClusterKey: "api", ClusterEnv: "dev",
		InstanceID: "node1", ClusterTTL: 3 * time.Second, Consistency: "eventual", Order: "id", OnRebalance: "signal:HUP"}
	if r.code != 0 || nodeFields(r.cfg) != nodeFields(want) {
		t.Errorf("code %d stderr %q: %+v, want %+v", r.code, r.stderr, nodeFields(r.cfg), nodeFields(want))
	}
	if err := r.cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	r = runHerd(t, "run", "--workers", "3", "--cluster-base", "4", "--cluster-total", "7", "--", "true")
	if want := (herd.Config{ClusterBase: 4, ClusterTotal: 7}); r.code != 0 || nodeFields(r.cfg) != nodeFields(want) {
		t.Errorf("static: code %d stderr %q: %+v", r.code, r.stderr, nodeFields(r.cfg))
	}
	if r = runHerd(t, "run", "--", "true"); nodeFields(r.cfg) != nodeFields(herd.Config{}) {
		t.Errorf("defaults: %+v, want all zero", nodeFields(r.cfg))
	}
}

// TestRegistryForms checks the registry URIs --registry takes: etcd://,
// http:// with a trailing slash, comma-separated URLs, and https:// with
// the TLS files, which reach the Config.
func TestRegistryForms(t *testing.T) {
	files := writeTLSFiles(t)
	for _, args := range [][]string{
		{"--registry", "etcd://10.0.0.1:2379"},
		{"--registry", "http://127.0.0.1:2379/"},
		{"--registry", "http://10.0.0.1:2379,http://10.0.0.2:2379"},
		{"--registry", "https://etcd.example:2379", "--registry-ca", files.CA, "--registry-cert", files.Cert, "--registry-key", files.Key},
	} {
		r := runHerd(t, append(append([]string{"run", "--cluster-key", "k"}, args...), "--", "true")...)
		if r.code != 0 || r.cfg.Registry != args[1] {
			t.Errorf("herd run %q: code %d stderr %q registry %q", args, r.code, r.stderr, r.cfg.Registry)
		}
		if err := r.cfg.Validate(); r.code == 0 && err != nil {
			t.Errorf("herd run %q: Validate: %v", args, err)
		}
	}
	r := runHerd(t, "run", "--cluster-key", "k", "--registry", "https://h:1", "--registry-ca", files.CA, "--", "true")
	if r.cfg.RegistryCA != files.CA || r.cfg.RegistryCert != "" {
		t.Errorf("TLS files reached the Config as %q %q", r.cfg.RegistryCA, r.cfg.RegistryCert)
	}
}

// writeTLSFiles writes an authority and a certificate it signed, with its
// key, as PEM files.
func writeTLSFiles(t *testing.T) etcdtest.TLSFiles {
	t.Helper()
	files, err := etcdtest.WriteTLSFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// nodeFields returns the multi-node fields of c, comparable.
func nodeFields(c herd.Config) [10]any {
	return [10]any{c.Registry, c.ClusterKey, c.ClusterEnv, c.InstanceID, c.ClusterTTL, c.Consistency, c.Order,
		c.ClusterBase, c.ClusterTotal, c.OnRebalance}
}

// TestClusterEnv checks the flags' HERD_CLUSTER_ variables work beside the
// HERD_CLUSTER_INDEX, _TOTAL and _EPOCH herd gives its workers, and that
// inside a herd worker HERD_CLUSTER_TOTAL is the outer cluster's.
func TestClusterEnv(t *testing.T) {
	for k, v := range map[string]string{"HERD_REGISTRY": "etcd://h:1", "HERD_CLUSTER_KEY": "k",
		"HERD_CLUSTER_ENV": "qa", "HERD_CLUSTER_TTL": "4s", "HERD_CLUSTER_INDEX": "3", "HERD_CLUSTER_EPOCH": "9"} {
		t.Setenv(k, v)
	}
	r := runHerd(t, "run", "--", "true")
	if r.code != 0 || r.cfg.ClusterKey != "k" || r.cfg.ClusterEnv != "qa" || r.cfg.ClusterTTL != 4*time.Second {
		t.Errorf("dynamic from env: code %d stderr %q %+v", r.code, r.stderr, nodeFields(r.cfg))
	}
	for _, k := range []string{"HERD_REGISTRY", "HERD_CLUSTER_KEY", "HERD_CLUSTER_ENV", "HERD_CLUSTER_TTL"} {
		t.Setenv(k, "")
	}
	t.Setenv("HERD_CLUSTER_BASE", "1")
	t.Setenv("HERD_CLUSTER_TOTAL", "6")
	r = runHerd(t, "run", "--workers", "2", "--", "true")
	if r.code != 0 || r.cfg.ClusterBase != 1 || r.cfg.ClusterTotal != 6 {
		t.Errorf("static from env: code %d stderr %q %+v", r.code, r.stderr, nodeFields(r.cfg))
	}

	t.Setenv("HERD_CLUSTER_BASE", "")
	t.Setenv("HERD_WORKER_ID", "0")
	r = runHerd(t, "run", "--workers", "2", "--", "true")
	if r.code != 0 || r.cfg.ClusterTotal != 0 {
		t.Errorf("in a worker: code %d stderr %q total %d; want the outer HERD_CLUSTER_TOTAL ignored",
			r.code, r.stderr, r.cfg.ClusterTotal)
	}
	r = runHerd(t, "run", "--workers", "2", "--cluster-total", "5", "--", "true")
	if r.code != 0 || r.cfg.ClusterTotal != 5 {
		t.Errorf("in a worker with --cluster-total 5: code %d stderr %q total %d", r.code, r.stderr, r.cfg.ClusterTotal)
	}
}

// TestNodeFlagsBad checks bad values and combinations of the multi-node
// flags are refused with one line naming the option and exit 2.
func TestNodeFlagsBad(t *testing.T) {
	dyn := func(args ...string) []string { return append(append([]string{}, registryArgs...), args...) }
	for _, tc := range []badInput{
		{name: "registry scheme", args: []string{"--registry", "ftp://h:1"}, want: []string{"--registry", `"ftp://h:1"`, "etcd://"}},
		{name: "registry no scheme", args: []string{"--registry", "h:1"}, want: []string{"--registry", `"h:1"`}},
		{name: "registry mixed tls", args: []string{"--registry", "https://h:1,http://g:2"}, want: []string{"--registry", "TLS"}},
		{name: "ca plain registry", args: dyn("--registry-ca", os.Args[0]), want: []string{"--registry-ca", "https://"}},
		{name: "ca missing", args: []string{"--registry-ca", "/nonexistent/ca.pem"}, want: []string{"--registry-ca", "/nonexistent/ca.pem"}},
		{name: "ca not pem", args: []string{"--registry", "https://h:1", "--cluster-key", "k", "--registry-ca", os.Args[0]},
			want: []string{"--registry-ca"}},
		{name: "cert no key", args: []string{"--registry", "https://h:1", "--cluster-key", "k", "--registry-cert", os.Args[0]},
			want: []string{"--registry-cert", "--registry-key"}},
		{name: "ca alone", args: []string{"--registry-ca", os.Args[0]}, want: []string{"--registry-ca needs --registry"}},
		{name: "registry no port", args: []string{"--registry", "etcd://h"}, want: []string{"--registry", `"etcd://h"`}},
		{name: "registry bad port", args: []string{"--registry", "etcd://h:99999"}, want: []string{"--registry", "99999"}},
		{name: "registry path", args: []string{"--registry", "etcd://h:1/x"}, want: []string{"--registry"}},
		{name: "registry empty host", args: []string{"--registry", "etcd://h:1,"}, want: []string{"--registry"}},
		{name: "registry no key", args: []string{"--registry", "etcd://h:1"}, want: []string{"--registry needs --cluster-key"}},
		{name: "key slash", args: dyn("--cluster-key", "a/b"), want: []string{"--cluster-key", `"a/b"`, "slash"}},
		{name: "env empty", args: dyn("--cluster-env="), want: []string{"--cluster-env", `""`}},
		{name: "env slash", args: dyn("--cluster-env", "x/y"), want: []string{"--cluster-env", `"x/y"`}},
		{name: "id slash", args: dyn("--instance-id", "n/1"), want: []string{"--instance-id", `"n/1"`}},
		{name: "ttl short", args: dyn("--cluster-ttl", "1999ms"), want: []string{"--cluster-ttl", `"1999ms"`, "at least 2s"}},
		{name: "ttl 0", args: dyn("--cluster-ttl", "0"), want: []string{"--cluster-ttl", `"0"`}},
		{name: "ttl bad", args: dyn("--cluster-ttl", "ten"), want: []string{"--cluster-ttl", `"ten"`}},
		{name: "consistency", args: dyn("--consistency", "weak"), want: []string{"--consistency", `"weak"`}},
		{name: "order", args: dyn("--order", "age"), want: []string{"--order", `"age"`}},
		{name: "base negative", args: []string{"--cluster-base=-1"}, want: []string{"--cluster-base", `"-1"`}},
		{name: "total negative", args: []string{"--cluster-total=-1"}, want: []string{"--cluster-total", `"-1"`}},
		{name: "total bad", args: []string{"--cluster-total", "many"}, want: []string{"--cluster-total", `"many"`}},
		{name: "rebalance word", args: dyn("--on-rebalance", "reload"), want: []string{"--on-rebalance", `"reload"`}},
		{name: "rebalance signal", args: dyn("--on-rebalance", "signal:FOO"), want: []string{"--on-rebalance", `"signal:FOO"`}},
		{name: "rebalance empty signal", args: dyn("--on-rebalance", "signal:"), want: []string{"--on-rebalance"}},
		{name: "rebalance KILL", args: dyn("--on-rebalance", "signal:KILL"), want: []string{"--on-rebalance", "KILL"}},
		{name: "rebalance bare signal", args: dyn("--on-rebalance", "HUP"), want: []string{"--on-rebalance", `"HUP"`}},
		{name: "registry and static", args: dyn("--workers", "1", "--cluster-total", "4"),
			want: []string{"--registry", "--cluster-total", "not both"}},
		{name: "base alone", args: []string{"--cluster-base", "2"}, want: []string{"--cluster-base needs --cluster-total"}},
		{name: "does not fit", args: []string{"--workers", "4", "--cluster-base", "2", "--cluster-total", "5"},
			want: []string{"--cluster-base 2 + 4 workers does not fit in --cluster-total 5"}},
		{name: "key alone", args: []string{"--cluster-key", "k"}, want: []string{"--cluster-key needs --registry"}},
		{name: "env alone", args: []string{"--cluster-env", "dev"}, want: []string{"--cluster-env needs --registry"}},
		{name: "ttl alone", args: []string{"--cluster-ttl", "5s"}, want: []string{"--cluster-ttl needs --registry"}},
		{name: "rebalance alone", args: []string{"--on-rebalance", "none"}, want: []string{"--on-rebalance needs --registry"}},
		{name: "env registry", env: map[string]string{"HERD_REGISTRY": "etcd:/h:1"}, want: []string{"HERD_REGISTRY", "--registry"}},
		{name: "env ttl", env: map[string]string{"HERD_CLUSTER_TTL": "1s"}, want: []string{"HERD_CLUSTER_TTL", "--cluster-ttl", `"1s"`}},
		{name: "env total", env: map[string]string{"HERD_CLUSTER_TOTAL": "x"}, want: []string{"HERD_CLUSTER_TOTAL", `"x"`}},
		{name: "file ttl", file: "cluster-ttl: 500ms\n", want: []string{"herd.yaml:1", "cluster-ttl", `"500ms"`}},
		{name: "file rebalance", file: "on-rebalance: signal:STOP\n", want: []string{"herd.yaml:1", "on-rebalance", "STOP"}},
	} {
		checkBadInput(t, tc)
	}
}
