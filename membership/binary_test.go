package membership_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/membership/etcdtest"
)

// binaryTests are the tests re-run against a real etcd server binary.
const binaryTests = "^(TestLibclusterExample|TestLeaveRebalances|TestKilledNodeExpires|" +
	"TestRegistryLoss|TestWedgedMemberExpires|TestFencedPut)$"

// TestEtcdBinary re-runs the core tests of this package against a real etcd
// server when one is on PATH (Debian's etcd-server is 3.4): this test
// binary again, with MEMBERSHIP_ETCD_BINARY set, so that each test runs
// the binary as a child process it can restart, empty or from a snapshot.
// Without one, the tests above ran against the embedded v3.7 server only.
func TestEtcdBinary(t *testing.T) {
	if os.Getenv(etcdtest.EndpointsEnv) != "" || os.Getenv(etcdtest.BinaryEnv) != "" {
		t.Skip("already running against an external etcd")
	}
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("no etcd server binary on PATH")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := exec.CommandContext(ctx, os.Args[0], "-test.run", binaryTests, "-test.count=1")
	run.Env = append(os.Environ(), etcdtest.BinaryEnv+"="+bin)
	res, err := run.CombinedOutput()
	if err != nil || !strings.Contains(string(res), "PASS") {
		t.Fatalf("tests against %s (%s): %v\n%s", bin, firstLine(version(bin)), err, res)
	}
	t.Logf("passed against %s", firstLine(version(bin)))
}

func version(bin string) string {
	b, _ := exec.Command(bin, "--version").Output()
	return string(b)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
