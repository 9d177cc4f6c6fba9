package herd_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/herd-cluster/herd"
	"github.com/herd-cluster/herd/internal/testkit"
)

// health returns the status of GET /health on the control socket sock.
func health(t *testing.T, sock string) int {
	t.Helper()
	api := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := api.Get("http://herd/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestCrashLoopRules: workers that never become ready, and workers that
// stop themselves in a loop, disable their slot however long each try
// takes, and the cluster is then reported unhealthy.
func TestCrashLoopRules(t *testing.T) {
	for _, tt := range []struct {
		name, helper string
		slots        int // disabled
		cfg          herd.Config
		reason, log  string
	}{
		{
			// Each try lasts the ready timeout, longer than the window.
			name: "never-ready", helper: "slot0-ready", slots: 1,
			cfg:    herd.Config{ReadyTimeout: 200 * time.Millisecond, CrashWindow: 100 * time.Millisecond, MaxCrashes: 2},
			reason: "READY=1 never came", log: "--ready delay",
		},
		{
			// A window wide enough that a slow start under load does
			// not spread the crashes out of it.
			name: "stopping-loop", helper: "stop-loop", slots: 2,
			cfg:    herd.Config{CrashWindow: time.Minute, MaxCrashes: 3},
			reason: "4 crashes within 1m0s", log: "stopped itself again",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			sock := filepath.Join(t.TempDir(), "c.sock")
			logs := &testkit.Buffer{}
			cfg.Workers, cfg.Control, cfg.Ready, cfg.RespawnDelay = 2, sock, herd.ReadyNotify, 10*time.Millisecond
			cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
			tc := startCluster(t, cfg, tt.helper, "")
			dis := tc.ev.waitN(t, 0, tt.slots, "disabled", is(herd.EventDisabled))
			for _, e := range dis {
				if !strings.Contains(e.Reason, tt.reason) {
					t.Errorf("slot %d disabled: %q; want %q in the reason", e.Slot, e.Reason, tt.reason)
				}
			}
			if !strings.Contains(logs.String(), tt.log) {
				t.Errorf("log says nothing of %q:\n%s", tt.log, logs)
			}
			if code := health(t, sock); code != http.StatusServiceUnavailable {
				t.Errorf("GET /health = %d; want 503", code)
			}
			started := tc.ev.count(0, is(herd.EventStarted))
			if max := 2 * (cfg.MaxCrashes + 2); started > max {
				t.Errorf("%d workers started; want at most %d", started, max)
			}
		})
	}
}

// TestSpawnOutOfFDs: while the primary has no descriptor left, starts fail
// and are retried without counting as crashes; the slot is never disabled
// and comes back once descriptors are free again.
func TestSpawnOutOfFDs(t *testing.T) {
	pp := startPrimary(t, primaryConfig{Workers: 1, Helper: "sleep"})
	pp.waitLog(t, `msg="worker ready"`, 1)
	primary := pp.cmd.Process.Pid
	var old unix.Rlimit
	if err := unix.Prlimit(primary, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatal(err)
	}
	tight := unix.Rlimit{Cur: 3, Max: old.Max} // no new descriptor, even with the reserve freed
	if err := unix.Prlimit(primary, unix.RLIMIT_NOFILE, &tight, nil); err != nil {
		t.Skipf("cannot lower another process's RLIMIT_NOFILE here: %v", err)
	}
	if err := syscall.Kill(pp.workerPIDs()[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	pp.waitLog(t, "for want of resources", 6) // more than --max-crashes 3 within --crash-window
	if err := unix.Prlimit(primary, unix.RLIMIT_NOFILE, &old, nil); err != nil {
		t.Fatal(err)
	}
	pp.waitLog(t, `msg="worker ready"`, 2)
	if log := pp.stderr.String(); strings.Contains(log, "respawn disabled") || strings.Contains(log, "event=disabled") {
		t.Errorf("the slot was disabled:\n%s", log)
	}
	if !strings.Contains(lineWith(pp.stderr.String(), "for want of resources"), "too many open files") {
		t.Errorf("the failed start does not say why: %s", lineWith(pp.stderr.String(), "for want of resources"))
	}
}
