package herd_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-cluster/herd"
)

// TestSystemdProtocol runs a go-systemd app as the worker command: it must
// find its sockets with activation.Listeners and be made ready by
// daemon.SdNotify, unchanged.
func TestSystemdProtocol(t *testing.T) {
	tc := startCluster(t, herd.Config{
		Workers: 2, Listen: []string{"http=127.0.0.1:0"}, Ready: herd.ReadyNotify,
	}, "systemd-app", "")
	ready := tc.ev.waitN(t, 0, 2, "ready", is(herd.EventReady))
	port := tc.stats(t).Slots[0].Port
	if port == 0 {
		t.Fatalf("stats port = 0; want the bound port")
	}
	pids := map[string]bool{}
	for _, e := range ready {
		m := tc.reportOf(t, e.PID)
		env := m["env"].(map[string]any)
		want := map[string]string{
			"LISTEN_PID": strconv.Itoa(e.PID), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "http",
			"HERD_WORKER_ID": strconv.Itoa(e.Slot), "HERD_WORKER_COUNT": "2", "HERD_GENERATION": "1",
			"HERD_PRIMARY_PID": strconv.Itoa(os.Getpid()), "HERD_PORT": strconv.Itoa(port),
		}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("slot %d: %s = %v; want %s", e.Slot, k, env[k], v)
			}
		}
		if ns, _ := env["NOTIFY_SOCKET"].(string); !strings.HasPrefix(ns, "/") {
			t.Errorf("NOTIFY_SOCKET = %q; want a socket path", ns)
		}
		if _, ok := env["HERD_SHIM"]; ok {
			t.Errorf("HERD_SHIM leaked into the worker's environment")
		}
		pids[strconv.Itoa(e.PID)] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	body, err := get(ctx, fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatal(err)
	}
	if !pids[strings.TrimSpace(body)] {
		t.Errorf("served by pid %q; want one of the workers %v", body, pids)
	}
}

// TestBalanceSockets checks which socket each slot gets: one for all in
// shared mode, one per slot in reuseport mode, kept across a respawn.
func TestBalanceSockets(t *testing.T) {
	for _, tt := range []struct {
		balance  herd.Balance
		distinct int
	}{{herd.BalanceShared, 1}, {herd.BalanceReusePort, 3}} {
		t.Run(string(tt.balance), func(t *testing.T) {
			tc := startCluster(t, herd.Config{
				Workers: 3, Listen: []string{"127.0.0.1:0"}, Balance: tt.balance,
				Ready: herd.ReadyNotify, RespawnDelay: time.Millisecond,
			}, "systemd-app", "")
			ready := tc.ev.waitN(t, 0, 3, "ready", is(herd.EventReady))
			inodes := map[int]float64{}
			distinct := map[float64]bool{}
			for _, e := range ready {
				ino := tc.reportOf(t, e.PID)["inode"].(float64)
				inodes[e.Slot] = ino
				distinct[ino] = true
			}
			if len(distinct) != tt.distinct {
				t.Fatalf("%d distinct sockets over 3 slots; want %d", len(distinct), tt.distinct)
			}
			mark := tc.ev.mark()
			if err := syscall.Kill(ready[1].PID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			again := tc.ev.waitN(t, mark, 1, "ready", is(herd.EventReady))[0]
			if again.Slot != ready[1].Slot {
				t.Fatalf("respawned slot %d; want %d", again.Slot, ready[1].Slot)
			}
			if got := tc.reportOf(t, again.PID)["inode"].(float64); got != inodes[again.Slot] {
				t.Errorf("slot %d socket after respawn: inode %v; want the same %v", again.Slot, got, inodes[again.Slot])
			}
		})
	}
}

// TestAddrInUse: a busy address stops everything before any worker starts.
func TestAddrInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, balance := range []herd.Balance{herd.BalanceShared, herd.BalanceReusePort} {
		t.Run(string(balance), func(t *testing.T) {
			tc := startCluster(t, herd.Config{Workers: 2, Listen: []string{busy.Addr().String()}, Balance: balance}, "sleep", "")
			err := tc.wait(t)
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("Run = %v; want EADDRINUSE", err)
			}
			if !strings.Contains(err.Error(), busy.Addr().String()) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q; want one line naming %s", err, busy.Addr())
			}
			if n := tc.ev.count(0, is(herd.EventStarted)); n != 0 {
				t.Errorf("%d workers started; want none", n)
			}
		})
	}
}

// TestReadyTimeout: a worker that never says READY=1 is killed and counted
// as a crash.
func TestReadyTimeout(t *testing.T) {
	tc := startCluster(t, herd.Config{
		Workers: 1, Ready: herd.ReadyNotify, ReadyTimeout: 200 * time.Millisecond,
		RespawnDelay: time.Millisecond, MaxCrashes: 10,
	}, "sleep", "")
	tc.ev.waitN(t, 0, 1, "ready_timeout", is(herd.EventType("ready_timeout")))
	ex := tc.ev.waitN(t, 0, 1, "exited", is(herd.EventExited))[0]
	if !ex.Crash || ex.Signal != "SIGKILL" {
		t.Errorf("exit after ready timeout: crash=%v signal=%q; want a crash by SIGKILL", ex.Crash, ex.Signal)
	}
	tc.ev.waitN(t, 0, 2, "started", is(herd.EventStarted))
}

// TestCrashLoop: respawn backs off 1.5x per crash; a slot crashing more
// than MaxCrashes times in the window is disabled; when every slot is
// disabled before any worker was ready, Run fails with the workers' last
// stderr lines.
func TestCrashLoop(t *testing.T) {
	tc := startCluster(t, herd.Config{
		Workers: 2, RespawnDelay: 20 * time.Millisecond, MaxCrashes: 3, CrashWindow: time.Minute,
	}, "crash", "")
	err := tc.wait(t)
	var nr *herd.NoWorkerReadyError
	if !errors.As(err, &nr) {
		t.Fatalf("Run = %v; want *NoWorkerReadyError", err)
	}
	if out := strings.Join(nr.Output, "\n"); !strings.Contains(out, "cannot open /nonexistent/config.yaml") {
		t.Errorf("error output %q; want the workers' stderr", out)
	}
	if n := tc.ev.count(0, is(herd.EventDisabled)); n != 2 {
		t.Errorf("%d disabled events; want 2", n)
	}
	// 4 crashes per slot: 1 start + 3 respawns, with delays 20, 30, 45ms.
	var delays []time.Duration
	for _, e := range tc.ev.snapshot() {
		if e.Type == herd.EventType("respawn_scheduled") && e.Slot == 0 {
			delays = append(delays, e.Delay)
		}
	}
	want := []time.Duration{20 * time.Millisecond, 30 * time.Millisecond, 45 * time.Millisecond}
	if fmt.Sprint(delays) != fmt.Sprint(want) {
		t.Errorf("respawn delays of slot 0 = %v; want %v", delays, want)
	}
}

// TestPIDDir: the pid files follow respawns and go at exit.
func TestPIDDir(t *testing.T) {
	dir := t.TempDir()
	tc := startCluster(t, herd.Config{
		Workers: 2, Ready: herd.ReadyDelay, ReadyDelay: 10 * time.Millisecond, PIDDir: dir,
		RespawnDelay: time.Millisecond,
	}, "sleep", "")
	ready := tc.ev.waitN(t, 0, 2, "ready", is(herd.EventReady))
	readPID := func(name string) int {
		b, err := os.ReadFile(dir + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	if got := readPID("primary.pid"); got != os.Getpid() {
		t.Errorf("primary.pid = %d; want %d", got, os.Getpid())
	}
	for _, e := range ready {
		if got := readPID(fmt.Sprintf("worker-%d.pid", e.Slot)); got != e.PID {
			t.Errorf("worker-%d.pid = %d; want %d", e.Slot, got, e.PID)
		}
	}
	mark := tc.ev.mark()
	syscall.Kill(ready[0].PID, syscall.SIGKILL)
	again := tc.ev.waitN(t, mark, 1, "started", is(herd.EventStarted))[0]
	if got := readPID(fmt.Sprintf("worker-%d.pid", again.Slot)); got != again.PID {
		t.Errorf("after respawn worker-%d.pid = %d; want %d", again.Slot, got, again.PID)
	}
	tc.stop(t)
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("pid dir after exit holds %d files; want none", len(left))
	}
}

// TestSignalWorkers: Signal reaches every worker, or one slot.
func TestSignalWorkers(t *testing.T) {
	tc := startCluster(t, herd.Config{Workers: 2, Ready: herd.ReadyDelay, ReadyDelay: 10 * time.Millisecond}, "sleep", "")
	ready := tc.ev.waitN(t, 0, 2, "ready", is(herd.EventReady))
	for _, e := range ready {
		tc.reportOf(t, e.PID) // the helper has installed its handlers
	}
	ctx := context.Background()
	if err := tc.Signal(ctx, syscall.SIGUSR1, -1); err != nil {
		t.Fatal(err)
	}
	if err := tc.Signal(ctx, syscall.SIGUSR2, 1); err != nil {
		t.Fatal(err)
	}
	var se *herd.SlotError
	if err := tc.Signal(ctx, syscall.SIGUSR1, 7); !errors.As(err, &se) {
		t.Errorf("Signal to slot 7 = %v; want *SlotError", err)
	}
	want := map[string]int{"user defined signal 1": 2, "user defined signal 2": 1}
	deadline := time.Now().Add(waitLimit)
	for {
		got := map[string]int{}
		for _, m := range tc.reports(t) {
			if s, ok := m["signal"].(string); ok {
				got[s]++
			}
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("signals seen by workers %v; want %v", got, want)
		}
		time.Sleep(5 * time.Millisecond) // reports are files of other processes
	}
}

// TestScale: up within bounds, down stops the highest slots, outside the
// bounds is refused and changes nothing.
func TestScale(t *testing.T) {
	tc := startCluster(t, herd.Config{
		Workers: 1, MinWorkers: 1, MaxWorkers: 3, Ready: herd.ReadyDelay, ReadyDelay: 10 * time.Millisecond,
	}, "sleep", "")
	tc.ev.waitN(t, 0, 1, "ready", is(herd.EventReady))
	ctx := context.Background()
	if err := tc.Scale(ctx, 3); err != nil {
		t.Fatal(err)
	}
	tc.ev.waitN(t, 0, 3, "ready", is(herd.EventReady))
	var re *herd.RangeError
	if err := tc.Scale(ctx, 4); !errors.As(err, &re) {
		t.Errorf("Scale(4) = %v; want *RangeError", err)
	}
	if err := tc.Scale(ctx, 0); !errors.As(err, &re) {
		t.Errorf("Scale(0) = %v; want *RangeError", err)
	}
	mark := tc.ev.mark()
	if err := tc.Scale(ctx, 1); err != nil {
		t.Fatal(err)
	}
	exits := tc.ev.waitN(t, mark, 2, "exited", is(herd.EventExited))
	for _, e := range exits {
		if e.Slot == 0 || e.Crash {
			t.Errorf("scale down: %v; want slots 1 and 2 stopped gracefully", e)
		}
	}
	if st := tc.stats(t); st.Workers != 1 || len(st.Slots) != 1 {
		t.Errorf("after scale to 1: workers=%d slots=%d; want 1 and 1", st.Workers, len(st.Slots))
	}
}
