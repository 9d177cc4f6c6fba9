package herd_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-cluster/herd"
)

// pyNotify is a worker in Python that takes NOTIFY_SOCKET as a path, as
// most sd_notify clients outside systemd's own library do: it writes the
// variable to $HERD_TEST_OUT/notify, says READY=1 unless NO_READY is set,
// and says STATUS=after-usr1 on SIGUSR1.
const pyNotify = `
import os, signal, socket, time
addr = os.environ.get("NOTIFY_SOCKET", "")
with open(os.environ["HERD_TEST_OUT"] + "/notify.tmp", "w") as f:
    f.write(addr)
os.rename(os.environ["HERD_TEST_OUT"] + "/notify.tmp", os.environ["HERD_TEST_OUT"] + "/notify")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
signal.signal(signal.SIGUSR1, lambda *a: s.sendto(b"STATUS=after-usr1", addr))
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
if not os.environ.get("NO_READY"):
    s.sendto(b"READY=1", addr)
while True:
    time.sleep(1)
`

func python(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	return p
}

// notifyPath waits for the NOTIFY_SOCKET the Python worker saw.
func notifyPath(t *testing.T, tc *testCluster) string {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(tc.out, "notify")); err == nil {
			return string(b)
		}
		time.Sleep(5 * time.Millisecond) // a file another process writes
	}
	t.Fatal("the worker never wrote its NOTIFY_SOCKET")
	return ""
}

// TestNotifySocketPath runs a Python worker that uses NOTIFY_SOCKET as a
// plain path: it must become ready. The socket must be in a directory of
// mode 0700 owned by herd's user, and gone once the primary stopped.
func TestNotifySocketPath(t *testing.T) {
	py := python(t)
	tc := startClusterWith(t, herd.Config{Workers: 1, Ready: herd.ReadyNotify, ReadyTimeout: waitLimit}, "", "", nil,
		py, "-c", pyNotify)
	tc.ev.waitN(t, 0, 1, "ready", is(herd.EventReady))
	addr := notifyPath(t, tc)
	if !filepath.IsAbs(addr) || len(addr) > 107 {
		t.Fatalf("NOTIFY_SOCKET = %q; want an absolute path that fits a unix socket address", addr)
	}
	fi, err := os.Stat(filepath.Dir(addr))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o700 || int(st.Uid) != os.Geteuid() {
		t.Errorf("socket directory mode %v uid %d; want 0700 and uid %d", fi.Mode().Perm(), st.Uid, os.Geteuid())
	}
	tc.stop(t)
	if _, err := os.Stat(filepath.Dir(addr)); !os.IsNotExist(err) {
		t.Errorf("socket directory after stop: %v; want it removed", err)
	}
}

// TestNotifySocketCredentials sends READY=1 to a worker's NOTIFY_SOCKET
// from a process outside its tree, and from another user: neither may
// make the worker ready. The worker's own STATUS=, sent after them, shows
// that the spoofed datagram was handled before it.
func TestNotifySocketCredentials(t *testing.T) {
	py := python(t)
	tc := startClusterWith(t, herd.Config{Workers: 1, Ready: herd.ReadyNotify, ReadyTimeout: 10 * waitLimit,
		Env: []string{"NO_READY=1"}}, "", "", nil, py, "-c", pyNotify)
	addr := notifyPath(t, tc)
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	if _, err := c.Write([]byte("READY=1")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// Another user needs an interpreter it may run: the system's.
	if _, err := os.Stat("/usr/bin/python3"); err == nil && os.Geteuid() == 0 {
		other := exec.Command("/usr/bin/python3", "-c", `import socket,sys; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", sys.argv[1])`, addr)
		other.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		if out, err := other.CombinedOutput(); err == nil || !strings.Contains(string(out), "PermissionError") {
			t.Errorf("another user's READY=1: %v %s; want refused at the directory", err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := tc.Signal(ctx, syscall.SIGUSR1, 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLimit)
	for tc.stats(t).Slots[0].StatusText != "after-usr1" {
		if time.Now().After(deadline) {
			t.Fatal("the worker's STATUS= never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if ws := tc.stats(t).Slots[0]; ws.Ready || ws.Status != herd.StatusStarting {
		t.Errorf("slot 0 %s, ready %v after a stranger's READY=1; want STARTING", ws.Status, ws.Ready)
	}
}

// TestNotifySocketOnlyWhenUsed checks that workers get no NOTIFY_SOCKET
// when nothing listens for it: ready by delay, without a watchdog.
func TestNotifySocketOnlyWhenUsed(t *testing.T) {
	py := python(t)
	for _, tc := range []struct {
		name string
		cfg  herd.Config
		want bool
	}{
		{"delay", herd.Config{Ready: herd.ReadyDelay, ReadyDelay: 10 * time.Millisecond}, false},
		{"delay-watchdog", herd.Config{Ready: herd.ReadyDelay, ReadyDelay: 10 * time.Millisecond, Watchdog: time.Hour}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Workers = 1
			tc.cfg.Env = []string{"NO_READY=1"}
			c := startClusterWith(t, tc.cfg, "", "", nil, py, "-c", `
import os
with open(os.environ["HERD_TEST_OUT"] + "/notify.tmp", "w") as f:
    f.write(os.environ.get("NOTIFY_SOCKET", ""))
os.rename(os.environ["HERD_TEST_OUT"] + "/notify.tmp", os.environ["HERD_TEST_OUT"] + "/notify")
import time
while True: time.sleep(1)
`)
			if got := notifyPath(t, c); (got != "") != tc.want {
				t.Errorf("NOTIFY_SOCKET = %q; want set: %v", got, tc.want)
			}
		})
	}
}
