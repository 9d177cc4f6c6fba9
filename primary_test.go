package herd_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/testkit"
)

// primaryProc is a primary running in a process of its own.
type primaryProc struct {
	cmd    *exec.Cmd
	pidDir string
	out    string
	stderr *testkit.Buffer
	exited chan struct{}
}

// startPrimary runs the test binary as a primary configured by pc.
func startPrimary(t *testing.T, pc primaryConfig) *primaryProc {
	t.Helper()
	return startPrimaryVia(t, pc)
}

// startPrimaryVia runs the test binary as a primary configured by pc,
// through the command line via (such as unshare's) when given.
func startPrimaryVia(t *testing.T, pc primaryConfig, via ...string) *primaryProc {
	t.Helper()
	pp := &primaryProc{pidDir: t.TempDir(), out: t.TempDir(), stderr: &testkit.Buffer{}, exited: make(chan struct{})}
	pc.PIDDir, pc.Out = pp.pidDir, pp.out
	if pc.ShutdownTimeout == 0 {
		pc.ShutdownTimeout = 10 * time.Second
	}
	b, _ := json.Marshal(pc)
	argv := append(via[:len(via):len(via)], os.Args[0], "-test.run=^$")
	pp.cmd = exec.Command(argv[0], argv[1:]...)
	pp.cmd.Env = append(os.Environ(), primaryEnv+"="+string(b), "GORACE=atexit_sleep_ms=0")
	pp.cmd.Stderr = pp.stderr
	if err := pp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { pp.cmd.Wait(); close(pp.exited) }()
	t.Cleanup(func() {
		pids := pp.workerPIDs()
		pp.cmd.Process.Kill()
		<-pp.exited
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL) // orphans are reaped by init
		}
		if t.Failed() {
			t.Logf("primary stderr:\n%s", pp.stderr.String())
		}
	})
	return pp
}

// workerPIDs reads the worker pid files.
func (pp *primaryProc) workerPIDs() map[int]int {
	files, _ := filepath.Glob(filepath.Join(pp.pidDir, "worker-*.pid"))
	pids := map[int]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		slot, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "worker-"), ".pid"))
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		pids[slot] = pid
	}
	return pids
}

// waitFor polls cond, which reads state other processes write (pid files,
// /proc), until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitLog waits until the primary's log has n lines containing s.
func (pp *primaryProc) waitLog(t *testing.T, s string, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d log lines with %q", n, s), func() bool {
		return strings.Count(pp.stderr.String(), s) >= n
	})
}

// exitCode waits for the primary to exit and returns its status.
func (pp *primaryProc) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-pp.exited:
	case <-time.After(waitLimit):
		t.Fatalf("primary did not exit within %s", waitLimit)
	}
	return pp.cmd.ProcessState.ExitCode()
}

func (pp *primaryProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := pp.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie is dead, only not yet reaped.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// TestPrimarySignals drives a primary with the signals an operator sends.
func TestPrimarySignals(t *testing.T) {
	t.Run("TERM-graceful", func(t *testing.T) {
		pp := startPrimary(t, primaryConfig{Workers: 2, Helper: "sleep"})
		pp.waitLog(t, `msg="worker ready"`, 2)
		pp.signal(t, syscall.SIGTERM)
		if code := pp.exitCode(t); code != 0 {
			t.Errorf("exit status %d after SIGTERM; want 0", code)
		}
		if strings.Contains(pp.stderr.String(), "crash=true") {
			t.Errorf("a worker crashed during a graceful stop:\n%s", pp.stderr)
		}
	})
	t.Run("second-TERM-kills", func(t *testing.T) {
		pp := startPrimary(t, primaryConfig{Workers: 2, Helper: "sleep", IgnoreTerm: true, ShutdownTimeout: time.Minute})
		pp.waitLog(t, `msg="worker ready"`, 2)
		pp.waitReports(t, 2) // their signal handlers are in place
		pp.signal(t, syscall.SIGTERM)
		pp.waitLog(t, `reason=shutdown`, 2)
		pp.signal(t, syscall.SIGINT)
		if code := pp.exitCode(t); code != 0 {
			t.Errorf("exit status %d; want 0", code)
		}
		if n := strings.Count(pp.stderr.String(), "signal=SIGKILL"); n != 2 {
			t.Errorf("%d workers killed; want 2 killed at once by the second signal", n)
		}
	})
	t.Run("USR2-rolls", func(t *testing.T) {
		pp := startPrimary(t, primaryConfig{Workers: 2, Helper: "sleep"})
		pp.waitLog(t, `msg="worker ready"`, 2)
		pp.signal(t, syscall.SIGUSR2)
		pp.waitLog(t, `rolling restart finished`, 1)
		if n := strings.Count(pp.stderr.String(), "reason=rollout"); n < 4 {
			t.Errorf("%d rollout starts and stops; want 2 of each", n)
		}
	})
	t.Run("TTIN-TTOU-scale", func(t *testing.T) {
		pp := startPrimary(t, primaryConfig{Workers: 1, Helper: "sleep"})
		pp.waitLog(t, `msg="worker ready"`, 1)
		pp.signal(t, syscall.SIGTTIN)
		pp.waitLog(t, `msg="worker ready"`, 2)
		waitFor(t, "2 worker pid files", func() bool { return len(pp.workerPIDs()) == 2 })
		pp.signal(t, syscall.SIGTTOU)
		pp.waitLog(t, `reason=scale`, 2) // stopping and exited
		waitFor(t, "1 worker pid file", func() bool { return len(pp.workerPIDs()) == 1 })
	})
	for _, hup := range []string{"forward", "reload"} {
		t.Run("HUP-"+hup, func(t *testing.T) {
			pp := startPrimary(t, primaryConfig{Workers: 1, Helper: "sleep", Hup: hup})
			pp.waitLog(t, `msg="worker ready"`, 1)
			pid := pp.workerPIDs()[0]
			pp.waitReports(t, 1)
			pp.signal(t, syscall.SIGHUP)
			if hup == "reload" {
				pp.waitLog(t, `rolling restart finished`, 1)
				return
			}
			waitFor(t, "the worker to see SIGHUP", func() bool {
				b, _ := os.ReadFile(filepath.Join(pp.out, fmt.Sprintf("%d.json", pid)))
				return bytes.Contains(b, []byte("hangup"))
			})
		})
	}
}

// TestPrimaryKilled: workers die with their primary, even by SIGKILL.
func TestPrimaryKilled(t *testing.T) {
	for _, tt := range []struct{ name, helper, work string }{{"command", "sleep", ""}, {"go-work", "", "http"}} {
		t.Run(tt.name, func(t *testing.T) {
			pp := startPrimary(t, primaryConfig{Workers: 3, Helper: tt.helper, Work: tt.work, Listen: []string{"127.0.0.1:0"}})
			pp.waitLog(t, `msg="worker ready"`, 3)
			pids := pp.workerPIDs()
			if len(pids) != 3 {
				t.Fatalf("%d worker pid files; want 3", len(pids))
			}
			pp.signal(t, syscall.SIGKILL)
			pp.exitCode(t)
			waitFor(t, "every worker to die", func() bool {
				for _, pid := range pids {
					if alive(pid) {
						return false
					}
				}
				return true
			})
		})
	}
}

// TestSocketActivated: a primary started with sockets (systemd socket
// activation) passes those on instead of binding.
func TestSocketActivated(t *testing.T) {
	l, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	pc := primaryConfig{Workers: 1, Helper: "systemd-app"}
	pp := &primaryProc{pidDir: t.TempDir(), out: t.TempDir(), stderr: &testkit.Buffer{}, exited: make(chan struct{})}
	pc.PIDDir, pc.Out, pc.ShutdownTimeout = pp.pidDir, pp.out, 10*time.Second
	b, _ := json.Marshal(pc)
	// LISTEN_PID must be the primary's own pid: sh's $$, kept by exec.
	pp.cmd = exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" -test.run='^$'`, os.Args[0])
	pp.cmd.Env = append(os.Environ(), primaryEnv+"="+string(b), "LISTEN_FDS=1", "LISTEN_FDNAMES=web", "GORACE=atexit_sleep_ms=0")
	pp.cmd.ExtraFiles = []*os.File{f}
	pp.cmd.Stderr = pp.stderr
	if err := pp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	go func() { pp.cmd.Wait(); close(pp.exited) }()
	t.Cleanup(func() { pp.cmd.Process.Kill(); <-pp.exited })
	pp.waitLog(t, `msg="worker ready"`, 1)
	pid := pp.workerPIDs()[0]
	var rep map[string]any
	waitFor(t, "the worker's report", func() bool {
		b, err := os.ReadFile(filepath.Join(pp.out, fmt.Sprintf("%d.json", pid)))
		return err == nil && json.Unmarshal(bytes.SplitN(b, []byte("\n"), 2)[0], &rep) == nil
	})
	env := rep["env"].(map[string]any)
	if env["LISTEN_FDNAMES"] != "web" || env["LISTEN_FDS"] != "1" || env["LISTEN_PID"] != strconv.Itoa(pid) {
		t.Errorf("worker env %v; want the inherited socket named web, for pid %d", env, pid)
	}
	pp.signal(t, syscall.SIGTERM)
	if code := pp.exitCode(t); code != 0 {
		t.Errorf("exit %d; want 0", code)
	}
}

// waitReports waits until n workers have written a report.
func (pp *primaryProc) waitReports(t *testing.T, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d worker reports", n), func() bool {
		files, _ := filepath.Glob(filepath.Join(pp.out, "*.json"))
		return len(files) >= n
	})
}

func netListen() (*net.TCPListener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return l.(*net.TCPListener), nil
}
