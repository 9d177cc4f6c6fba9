package herd_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// orphanScript is a worker that leaves 20 short-lived orphans behind, as
// servers that spawn helpers do, then says so in a file and sleeps.
const orphanScript = `for i in $(seq 20); do ( sleep 0.01 & ); done
echo done > "$HERD_TEST_OUT/orphans"
exec sleep 1000`

// TestPID1 runs the primary as PID 1 of a new PID namespace, as a
// container's entrypoint: it reaps the orphans that come back to it, and
// stops gracefully on SIGTERM.
func TestPID1(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) is not installed")
	}
	if out, err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
		t.Skipf("unshare cannot create a PID namespace here: %v: %s", err, bytes.TrimSpace(out))
	}
	pp := startPrimaryVia(t, primaryConfig{Workers: 2, Command: []string{"sh", "-c", orphanScript}},
		"unshare", "--pid", "--fork", "--mount-proc", "--kill-child")
	out := "HERD_TEST_OUT=" + pp.out
	killLeft(t, out)
	pp.waitLog(t, `msg="worker ready"`, 2)
	var primary int
	waitFor(t, "the primary inside the namespace", func() bool {
		primary = onlyChild(pp.cmd.Process.Pid)
		return primary != 0
	})
	waitFor(t, "the orphans to be made", func() bool {
		_, err := os.Stat(pp.out + "/orphans")
		return err == nil
	})
	waitFor(t, "every orphan to end and be reaped", func() bool {
		return len(zombiesOf(primary)) == 0 && len(marked(out)) == 2 // the workers' sleep
	})
	syscall.Kill(primary, syscall.SIGTERM)
	if code := pp.exitCode(t); code != 0 {
		t.Errorf("exit status %d after SIGTERM; want 0", code)
	}
	waitNoneLeft(t, "after the stop", out)
}

// onlyChild returns the single child of pid, or 0.
func onlyChild(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	f := strings.Fields(string(b))
	if len(f) != 1 {
		return 0
	}
	c, _ := strconv.Atoi(f[0])
	return c
}

// zombiesOf returns the zombie children of pid.
func zombiesOf(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var z []int
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(pid) {
			c, _ := strconv.Atoi(e.Name())
			z = append(z, c)
		}
	}
	return z
}
