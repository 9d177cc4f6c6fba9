package herd_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-cluster/herd"
	"github.com/herd-cluster/herd/internal/testkit"
)

// daemonScript is a worker that leaves processes behind in every way a
// program can: a background child that keeps its output pipes, an orphan
// of a subshell in its process group, and a daemon (double fork, setsid)
// outside its group and session. Its main process then sleeps until
// stopped.
const daemonScript = `sleep 300 &
( sleep 301 & )
( setsid sleep 302 </dev/null >/dev/null 2>&1 & )
exec sleep 1000`

// treeModes runs f once per way herd follows process trees: a cgroup per
// worker (skipped where herd cannot create cgroups) and process groups with
// the primary as subreaper.
func treeModes(t *testing.T, f func(t *testing.T, mode string)) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid (util-linux) is not installed: .ci/run installs it")
	}
	for _, mode := range []string{"cgroup", "group"} {
		t.Run(mode, func(t *testing.T) {
			herd.SetGroupTreesOnly(mode == "group")
			t.Cleanup(func() { herd.SetGroupTreesOnly(false) })
			f(t, mode)
		})
	}
}

// checkMode skips a cgroup-mode test where the worker pid did not start in
// a cgroup of herd's: cgroup v2 is not writable here.
func checkMode(t *testing.T, mode string, pid int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatalf("reading the worker's cgroup: %v", err)
	}
	inHerd := bytes.Contains(b, []byte("/herd."))
	switch {
	case mode == "cgroup" && !inHerd:
		t.Skip("cgroup v2 is not writable for this user here: herd falls back to process groups")
	case mode == "group" && inHerd:
		t.Fatalf("worker in a cgroup of herd's (%s) with group mode forced", bytes.TrimSpace(b))
	}
}

// marked returns the live processes whose environment holds every one of
// kvs ("KEY=VALUE"), scanning /proc: what a cluster left running, found by
// the variables its workers' descendants inherit.
func marked(kvs ...string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !alive(pid) {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		vars := bytes.Split(env, []byte{0})
		all := true
		for _, kv := range kvs {
			found := false
			for _, v := range vars {
				if string(v) == kv {
					found = true
					break
				}
			}
			all = all && found
		}
		if all && alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitNoneLeft waits until no live process carries kvs, and kills what is
// left when it fails.
func waitNoneLeft(t *testing.T, what string, kvs ...string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		left := marked(kvs...)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Fatalf("%s: %d processes left: %v", what, len(left), describe(left))
		}
		// Other processes end them: nothing here to wait on.
		time.Sleep(5 * time.Millisecond)
	}
}

func describe(pids []int) string {
	var b strings.Builder
	for _, pid := range pids {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		fmt.Fprintf(&b, " %d:%q", pid, bytes.ReplaceAll(bytes.TrimRight(cmd, "\x00"), []byte{0}, []byte{' '}))
	}
	return b.String()
}

// killLeft kills, in cleanup, whatever a test's cluster left running.
func killLeft(t *testing.T, kvs ...string) {
	t.Cleanup(func() {
		for _, pid := range marked(kvs...) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// TestDeathSeenWithPipesHeld: a worker whose descendant keeps its stdout
// and stderr open is seen dead as soon as its main process dies, respawned,
// and what it left is ended.
func TestDeathSeenWithPipesHeld(t *testing.T) {
	treeModes(t, func(t *testing.T, mode string) {
		tc := startClusterWith(t, herd.Config{Workers: 1, ReadyDelay: 10 * time.Millisecond, RespawnDelay: time.Millisecond},
			"", "", nil, "sh", "-c", "sleep 300 & exec sleep 1000")
		out := "HERD_TEST_OUT=" + tc.out
		killLeft(t, out)
		first := tc.ev.waitN(t, 0, 1, "ready", is(herd.EventReady))[0]
		checkMode(t, mode, first.PID)
		waitFor(t, "the child holding the pipes", func() bool { return len(marked(out, "HERD_GENERATION=1")) == 2 })
		mark := tc.ev.mark()
		killed := time.Now()
		if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		exit := tc.ev.waitN(t, mark, 1, "exited", is(herd.EventExited))[0]
		t.Logf("death seen %s after the SIGKILL", exit.Time.Sub(killed))
		if exit.PID != first.PID || exit.Signal != "SIGKILL" || !exit.Crash {
			t.Errorf("exit = %+v; want pid %d killed by SIGKILL, a crash", exit, first.PID)
		}
		again := tc.ev.waitN(t, mark, 1, "ready", is(herd.EventReady))[0]
		if again.Gen != 2 {
			t.Errorf("respawned gen %d; want 2", again.Gen)
		}
		waitNoneLeft(t, "the first worker's tree", out, "HERD_GENERATION=1")
	})
}

// TestNothingOutlivesWorker: whatever a worker started, however it
// daemonised, is gone once the worker is, for every way a worker ends.
func TestNothingOutlivesWorker(t *testing.T) {
	ends := []struct {
		name string
		end  func(t *testing.T, tc *testCluster, w herd.Event)
	}{
		{"exit", func(t *testing.T, tc *testCluster, w herd.Event) {
			syscall.Kill(w.PID, syscall.SIGTERM) // not asked by herd: a crash
			tc.ev.waitN(t, 0, 1, "exited", func(e herd.Event) bool { return e.Type == herd.EventExited && e.PID == w.PID })
		}},
		{"rolling-restart", func(t *testing.T, tc *testCluster, w herd.Event) {
			if err := tc.Restart(ctxFor(t)); err != nil {
				t.Fatalf("Restart: %v", err)
			}
		}},
		{"scale-down", func(t *testing.T, tc *testCluster, w herd.Event) {
			if err := tc.Scale(ctxFor(t), 1); err != nil {
				t.Fatalf("Scale: %v", err)
			}
		}},
		{"stop", func(t *testing.T, tc *testCluster, w herd.Event) {
			tc.Stop()
			if err := tc.wait(t); err != nil {
				t.Fatalf("Run: %v", err)
			}
		}},
	}
	treeModes(t, func(t *testing.T, mode string) {
		for _, end := range ends {
			t.Run(end.name, func(t *testing.T) {
				tc := startClusterWith(t, herd.Config{Workers: 2, MaxWorkers: 2, ReadyDelay: 10 * time.Millisecond,
					ShutdownTimeout: 5 * time.Second, RespawnDelay: time.Millisecond},
					"", "", nil, "sh", "-c", daemonScript)
				out := "HERD_TEST_OUT=" + tc.out
				killLeft(t, out)
				ready := tc.ev.waitN(t, 0, 2, "ready", is(herd.EventReady))
				checkMode(t, mode, ready[0].PID)
				w := ready[0]
				if end.name == "scale-down" {
					w = ready[1]
					if w.Slot != 1 {
						w = ready[0]
					}
				}
				gen := "HERD_GENERATION=1"
				slot := "HERD_WORKER_ID=" + strconv.Itoa(w.Slot)
				waitFor(t, "the daemon to start", func() bool { return len(marked(out, gen, slot)) == 4 })
				end.end(t, tc, w)
				waitNoneLeft(t, "after "+end.name, out, gen, slot)
			})
		}
	})
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// TestPrimaryKilledLeavesNothing: after the primary is SIGKILLed, what its
// workers left (holding the listening socket) is ended at once by its
// keeper, or, when the keeper is gone too, by the next primary of the same
// name, which binds the same port.
func TestPrimaryKilledLeavesNothing(t *testing.T) {
	treeModes(t, func(t *testing.T, mode string) {
		for _, keeper := range []bool{true, false} {
			name := "keeper"
			if !keeper {
				name = "next-primary"
			}
			t.Run(name, func(t *testing.T) {
				addr := testkit.FreeAddr(t)
				pc := primaryConfig{Workers: 2, Listen: []string{addr}, Command: []string{"sh", "-c", daemonScript}, GroupTrees: mode == "group"}
				pp := startPrimary(t, pc)
				out := "HERD_TEST_OUT=" + pp.out
				killLeft(t, out)
				pp.waitLog(t, `msg="worker ready"`, 2)
				waitFor(t, "the workers' trees", func() bool { return len(marked(out)) == 8 })
				checkMode(t, mode, pp.workerPIDs()[0])
				kp := keeperOf(pp.cmd.Process.Pid)
				if kp == 0 {
					t.Fatalf("the primary has no keeper")
				}
				if !keeper {
					syscall.Kill(kp, syscall.SIGKILL)
				}
				pp.signal(t, syscall.SIGKILL)
				pp.exitCode(t)
				if keeper {
					waitNoneLeft(t, "the killed primary's workers' trees", out)
					waitFor(t, "the keeper to exit", func() bool { return !alive(kp) })
				}
				next := startPrimary(t, pc)
				next.waitLog(t, `msg="worker ready"`, 2)
				waitNoneLeft(t, "the killed primary's workers' trees", out)
				if !keeper {
					next.waitLog(t, "left running when it died", 1)
				}
			})
		}
	})
}

// keeperOf returns the pid of the keeper of primary, or 0.
func keeperOf(primary int) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if string(bytes.TrimRight(cmd, "\x00")) == "herd-keeper" && len(f) > 1 && f[1] == strconv.Itoa(primary) {
			return pid
		}
	}
	return 0
}

// lineWith returns the first line of s containing sub.
func lineWith(s, sub string) string {
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
