package membership_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/testkit"

	"github.com/herd-cluster/herd/membership/etcdtest"
)

// binaryTests are the tests re-run against a real etcd server binary.
const binaryTests = "^(TestLibclusterExample|TestOrderID|TestLeaveRebalances|TestSetThreads|TestKilledNodeExpires)$"

// TestEtcdBinary re-runs the core tests of this package against a real etcd
// server when one is on PATH (Debian's etcd-server is 3.4), through this
// test binary with MEMBERSHIP_ETCD_ENDPOINTS pointing at it. Without one,
// the tests above ran against the embedded v3.7 server only.
func TestEtcdBinary(t *testing.T) {
	if os.Getenv(etcdtest.EndpointsEnv) != "" {
		t.Skip("already running against an external etcd")
	}
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("no etcd server binary on PATH")
	}
	client, peer := testkit.FreeAddr(t), testkit.FreeAddr(t)
	dir := t.TempDir()
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--name", "herdtest", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", "http://"+client, "--advertise-client-urls", "http://"+client,
		"--listen-peer-urls", "http://"+peer, "--initial-advertise-peer-urls", "http://"+peer,
		"--initial-cluster", "herdtest=http://"+peer)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	waitServing(t, client, logf.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := exec.CommandContext(ctx, os.Args[0], "-test.run", binaryTests, "-test.count=1")
	run.Env = append(os.Environ(), etcdtest.EndpointsEnv+"="+client)
	res, err := run.CombinedOutput()
	if err != nil || !strings.Contains(string(res), "PASS") {
		t.Fatalf("tests against %s (%s): %v\n%s", bin, firstLine(version(bin)), err, res)
	}
	t.Logf("passed against %s", firstLine(version(bin)))
}

// waitServing waits until etcd answers a read at addr; its log is at
// logPath.
func waitServing(t *testing.T, addr, logPath string) {
	t.Helper()
	c, err := etcdtest.NewClient([]string{addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Get(ctx, "herd-probe")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("etcd at %s not serving: %v\n%s", addr, err, log)
		}
		time.Sleep(20 * time.Millisecond) // an external process: poll its port
	}
}

func version(bin string) string {
	b, _ := exec.Command(bin, "--version").Output()
	return string(b)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
