package herd_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herd-cluster/herd"
)

// waitLimit bounds every wait of these tests; a condition not met by then
// is a failure.
const waitLimit = 30 * time.Second

// recorder keeps every event of a cluster and lets a test wait for one.
type recorder struct {
	mu     sync.Mutex
	events []herd.Event
	wake   chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) add(e herd.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// mark returns a position; waitFrom(mark, …) looks only at later events.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// count returns how many events since from match.
func (r *recorder) count(from int, match func(herd.Event) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events[from:] {
		if match(e) {
			n++
		}
	}
	return n
}

// waitN waits until n events since from match, and returns them.
func (r *recorder) waitN(t *testing.T, from, n int, what string, match func(herd.Event) bool) []herd.Event {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		var got []herd.Event
		for _, e := range r.events[from:] {
			if match(e) {
				got = append(got, e)
			}
		}
		r.mu.Unlock()
		if len(got) >= n {
			return got[:n]
		}
		select {
		case <-r.wake:
		case <-deadline.C:
			t.Fatalf("waiting for %d %s events: got %d", n, what, len(got))
		}
	}
}

func is(typ herd.EventType) func(herd.Event) bool {
	return func(e herd.Event) bool { return e.Type == typ }
}

// testCluster is a primary running in the test process.
type testCluster struct {
	*herd.Cluster
	ev   *recorder
	out  string // directory the workers report to
	done chan error

	stopOnce sync.Once
}

// startCluster runs cfg's primary in the background. Workers run this test
// binary: as the exec shim of helper when it is set, else as Go work.
func startCluster(t *testing.T, cfg herd.Config, helper, work string) *testCluster {
	t.Helper()
	return startClusterWith(t, cfg, helper, work, nil)
}

// startClusterWith is startCluster with a hook that sets up the Cluster
// (its delegation handlers) before it runs.
func startClusterWith(t *testing.T, cfg herd.Config, helper, work string, setup func(*herd.Cluster), command ...string) *testCluster {
	t.Helper()
	tc := &testCluster{ev: newRecorder(), out: t.TempDir(), done: make(chan error, 1)}
	cfg.Env = append(cfg.Env, outEnv+"="+tc.out)
	var w herd.Work
	if len(command) > 0 {
		cfg.Command = command
	} else if helper != "" {
		cfg.Command = []string{os.Args[0]}
		cfg.Env = append(cfg.Env, helperEnv+"="+helper)
	} else {
		cfg.Env = append(cfg.Env, workEnv+"="+work)
		w = works[work]
	}
	cfg.OnEvent = tc.ev.add
	if cfg.Stdout == nil {
		cfg.Stdout = testLogOutput()
	}
	if cfg.Stderr == nil {
		cfg.Stderr = testLogOutput()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testLogOutput(), nil))
	}
	if cfg.StartupDelay == 0 {
		cfg.StartupDelay = -1
	}
	if cfg.Control == "" {
		cfg.Control = "-" // tests run side by side under one name
	}
	c, err := herd.New(cfg, w)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tc.Cluster = c
	if setup != nil {
		setup(c)
	}
	go func() { tc.done <- c.Run(context.Background()) }()
	t.Cleanup(func() { tc.stop(t) })
	return tc
}

// stop stops the cluster and makes sure every worker it started is gone.
func (tc *testCluster) stop(t *testing.T) {
	tc.stopOnce.Do(func() { tc.stopNow(t) })
}

func (tc *testCluster) stopNow(t *testing.T) {
	tc.Stop()
	select {
	case <-tc.done:
	case <-time.After(waitLimit):
		t.Errorf("cluster did not stop within %s", waitLimit)
	}
	for _, e := range tc.ev.snapshot() {
		if e.Type == herd.EventStarted {
			if err := syscall.Kill(e.PID, syscall.SIGKILL); err == nil {
				t.Errorf("worker pid %d outlived its primary", e.PID)
			}
		}
	}
}

func (r *recorder) snapshot() []herd.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]herd.Event(nil), r.events...)
}

// wait waits for Run to return and gives its error.
func (tc *testCluster) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-tc.done:
		tc.done <- err // for stop
		return err
	case <-time.After(waitLimit):
		t.Fatalf("Run did not return within %s", waitLimit)
		return nil
	}
}

// reports reads every JSON line the workers wrote.
func (tc *testCluster) reports(t *testing.T) []map[string]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(tc.out, "*.json"))
	var all []map[string]any
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("bad report %q: %v", sc.Text(), err)
			}
			all = append(all, m)
		}
		fh.Close()
	}
	return all
}

// reportOf returns the first report of pid, waiting for it.
func (tc *testCluster) reportOf(t *testing.T, pid int) map[string]any {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		for _, m := range tc.reports(t) {
			if int(m["pid"].(float64)) == pid {
				return m
			}
		}
		// Reports are files written by other processes: nothing to wait
		// on but the file itself.
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no report from pid %d", pid)
	return nil
}

func (tc *testCluster) stats(t *testing.T) herd.Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	st, err := tc.Stats(ctx)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st
}

func isErrno(err error, errno syscall.Errno) bool { return errors.Is(err, errno) }

// testLogOutput is where test primaries log: nowhere, unless HERD_TEST_LOG
// is set.
func testLogOutput() io.Writer {
	if os.Getenv("HERD_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(testLogOutput(), nil)) }
