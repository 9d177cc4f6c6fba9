package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/herd-cluster/herd/internal/control"
)

// tickScript is a worker that writes a line every 20ms and exits 0 on TERM.
const tickScript = `trap 'exit 0' TERM
while :; do echo "tick $HERD_WORKER_ID"; sleep 0.02 & wait $!; done`

// bigTickScript is tickScript with lines of 1 KB.
const bigTickScript = `trap 'exit 0' TERM
pad=$(printf '%01000d' 0)
while :; do echo "tick $HERD_WORKER_ID $pad"; sleep 0.02 & wait $!; done`

// TestClosedStdout runs herd run | head -1: once the reader is gone, the
// primary and its workers must keep running and serving, the lost lines
// must be counted in the metrics, and the failure said once on stderr.
// Before SIGPIPE was caught, the next worker line killed the primary (exit
// 141) and every worker with it.
func TestClosedStdout(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "c.sock")
	p := startPrimaryOut(t, sock, 2, w, nil, "run", "--workers", "2", "--control", sock, "--ready-delay", "10ms",
		"--startup-delay", "0", "--listen", "127.0.0.1:0", "--", "sh", "-c", tickScript)
	w.Close()
	if line, err := bufio.NewReader(r).ReadString('\n'); err != nil || !strings.Contains(line, "tick") {
		t.Fatalf("first line %q, %v; want a worker's tick", line, err)
	}
	r.Close() // head -1 exits
	pids := workerPIDs(t, sock)
	waitFor(t, func() bool { return dropped(t, sock, "write_error") >= 10 })
	select {
	case err := <-p.exited:
		p.exited <- err
		t.Fatalf("herd exited when its stdout closed: %v\n%s", err, p.stderr.String())
	default:
	}
	if got := workerPIDs(t, sock); !slicesEqual(got, pids) {
		t.Errorf("workers %v after stdout closed; want the same %v, still running", got, pids)
	}
	if n := strings.Count(p.stderr.String(), "writing to stdout failed"); n != 1 {
		t.Errorf("stderr says %d times that stdout failed; want once\n%s", n, p.stderr.String())
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(t); err != nil {
		t.Errorf("herd after SIGTERM: %v; want exit 0\n%s", err, p.stderr.String())
	}
}

// TestWorkerSIGPIPEDefault checks that a command worker starts with SIGPIPE
// at its default disposition: catching it in the primary must not make
// every worker ignore it (an ignored signal survives exec, a caught one
// does not).
func TestWorkerSIGPIPEDefault(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "c.sock")
	out := filepath.Join(t.TempDir(), "status")
	p := startPrimary(t, sock, 1, nil, "run", "--workers", "1", "--control", sock, "--ready-delay", "10ms", "--",
		"sh", "-c", `grep SigIgn /proc/$$/status > `+out+`; trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done`)
	var line string
	waitFor(t, func() bool {
		b, _ := os.ReadFile(out)
		line = string(b)
		return strings.HasSuffix(line, "\n")
	})
	mask, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(line, "SigIgn:")), 16, 64)
	if err != nil {
		t.Fatalf("SigIgn line %q: %v", line, err)
	}
	if pipe := uint64(1) << (syscall.SIGPIPE - 1); mask&pipe != 0 {
		t.Errorf("the worker ignores SIGPIPE (SigIgn %016x); want the default disposition", mask)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t)
}

// TestLogFileDiskFull fills the file system of --log-file: herd must keep
// serving, report the failure once on stderr, count the dropped lines, and
// write again, saying how many lines it lost, once there is room.
func TestLogFileDiskFull(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	log := filepath.Join(mnt, "herd.log")
	sock := filepath.Join(t.TempDir(), "c.sock")
	p := startPrimary(t, sock, 2, nil, "run", "--workers", "2", "--control", sock, "--ready-delay", "10ms",
		"--startup-delay", "0", "--log-file", log, "--", "sh", "-c", bigTickScript)
	pids := workerPIDs(t, sock)
	waitFor(t, func() bool { return dropped(t, sock, "write_error") >= 10 })
	if got := workerPIDs(t, sock); !slicesEqual(got, pids) {
		t.Errorf("workers %v with the disk full; want the same %v", got, pids)
	}
	if n := strings.Count(p.stderr.String(), "writing to log file "+log+" failed"); n != 1 {
		t.Errorf("stderr says %d times that the log file failed; want once\n%s", n, p.stderr.String())
	}
	if err := os.Truncate(log, 0); err != nil { // room again
		t.Fatal(err)
	}
	notice := regexp.MustCompile(`herd: \d+ lines were dropped while writing to log file .* failed`)
	waitFor(t, func() bool {
		b, _ := os.ReadFile(log)
		return notice.Match(b) && strings.Contains(string(b), "tick")
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(t); err != nil {
		t.Errorf("herd after SIGTERM: %v; want exit 0\n%s", err, p.stderr.String())
	}
}

// workerPIDs returns the pids of the active workers, by slot.
func workerPIDs(t *testing.T, sock string) []int {
	t.Helper()
	c, err := control.NewClient(control.Target{Socket: sock})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	doc, err := c.Stats(context.Background())
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	var pids []int
	for _, w := range doc.Workers {
		if w.Status == "ACTIVE" {
			pids = append(pids, w.PID)
		}
	}
	return pids
}

// dropped returns herd_log_lines_dropped_total{reason} from the metrics.
func dropped(t *testing.T, sock, reason string) int {
	t.Helper()
	resp, err := socketClient(sock).Get("http://herd/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`herd_log_lines_dropped_total\{reason="` + reason + `"\} (\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no herd_log_lines_dropped_total{reason=%q} in the metrics", reason)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
