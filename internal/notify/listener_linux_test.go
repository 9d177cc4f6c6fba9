package notify

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/herd-cluster/herd/internal/envvar"
)

const waitTimeout = 10 * time.Second

func listen(t *testing.T) *Listener {
	t.Helper()
	l, err := Listen()
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// receive waits for the next message on l.
func receive(t *testing.T, l *Listener) Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	select {
	case m, ok := <-l.C():
		if !ok {
			t.Fatal("channel closed")
		}
		return m
	case <-ctx.Done():
		t.Fatalf("no message: %v", ctx.Err())
	}
	return Message{}
}

// dial connects to l as a raw datagram client.
func dial(t *testing.T, l *Listener) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: l.Addr(), Net: "unixgram"})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// startHelper starts the test binary in role with NOTIFY_SOCKET set to l and
// returns it with the write end of its stdin; closing it lets helpers exit.
func startHelper(t *testing.T, l *Listener, role string) (*exec.Cmd, io.Closer) {
	t.Helper()
	cmd := helperCommand(role)
	cmd.Env = append(cmd.Env, envvar.NotifySocket+"="+l.Addr())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("stdin pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper: %v", err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, stdin
}

func TestAddr(t *testing.T) {
	l := listen(t)
	dir := filepath.Dir(l.Addr())
	if !filepath.IsAbs(l.Addr()) || len(l.Addr()) > maxPath || !strings.HasPrefix(filepath.Base(dir), "herd-notify-") {
		t.Errorf("Addr() = %q; want a path in a herd-notify-* directory, at most %d bytes", l.Addr(), maxPath)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket directory %s: %v, %v; want mode 0700", dir, fi, err)
	}
	if other := listen(t); other.Addr() == l.Addr() {
		t.Errorf("two listeners share address %q", l.Addr())
	}
	l.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("socket directory after Close: %v; want removed", err)
	}
}

// TestListenDirs checks the choice of the directory: the first given that
// exists and keeps the path short enough, else the temporary directory.
func TestListenDirs(t *testing.T) {
	base := t.TempDir()
	long := filepath.Join(base, strings.Repeat("d", 90))
	if err := os.Mkdir(long, 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := Listen(filepath.Join(base, "missing"), long, base)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := filepath.Dir(filepath.Dir(l.Addr())); got != base {
		t.Errorf("socket in %s; want in %s, the first usable", got, base)
	}
	l2, err := Listen(long)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if !strings.HasPrefix(l2.Addr(), os.TempDir()) {
		t.Errorf("socket %s; want the temporary directory when none given fits", l2.Addr())
	}
}

func TestRoundTripSelf(t *testing.T) {
	l := listen(t)
	t.Setenv(envvar.NotifySocket, l.Addr())
	if ok, err := daemon.SdNotify(false, "READY=1\nSTATUS=hi"); !ok || err != nil {
		t.Fatalf("SdNotify = %v, %v", ok, err)
	}
	m := receive(t, l)
	if m.PID != os.Getpid() || m.UID != os.Getuid() || m.GID != os.Getgid() {
		t.Errorf("credentials = pid %d uid %d gid %d, want %d %d %d",
			m.PID, m.UID, m.GID, os.Getpid(), os.Getuid(), os.Getgid())
	}
	if !m.Ready || m.Stopping || m.Watchdog || m.Status != "hi" || len(m.Fields) != 2 {
		t.Errorf("message = %+v", m)
	}
}

func TestChildCredentials(t *testing.T) {
	l := listen(t)
	cmd, stdin := startHelper(t, l, roleNotify)
	m := receive(t, l)
	if m.PID != cmd.Process.Pid {
		t.Errorf("PID = %d, want child %d", m.PID, cmd.Process.Pid)
	}
	if !m.Ready || m.Status != "child" {
		t.Errorf("message = %+v", m)
	}
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Errorf("helper: %v", err)
	}
}

func TestAncestorGrandchild(t *testing.T) {
	l := listen(t)
	child, stdin := startHelper(t, l, roleSpawn)
	m := receive(t, l)
	if m.PID == child.Process.Pid || m.PID == os.Getpid() {
		t.Fatalf("message from pid %d, want a grandchild", m.PID)
	}
	// The grandchild blocks on stdin, so the chain is intact here.
	got, ok := Ancestor(m.PID, func(pid int) bool { return pid == child.Process.Pid })
	if !ok || got != child.Process.Pid {
		t.Errorf("Ancestor = %d, %v, want child %d", got, ok, child.Process.Pid)
	}
	got, ok = Ancestor(m.PID, func(pid int) bool { return pid == os.Getpid() })
	if !ok || got != os.Getpid() {
		t.Errorf("Ancestor = %d, %v, want test process %d", got, ok, os.Getpid())
	}
	_ = stdin.Close()
	if err := child.Wait(); err != nil {
		t.Errorf("helper: %v", err)
	}
}

func TestAncestor(t *testing.T) {
	self := os.Getpid()
	if got, ok := Ancestor(self, func(pid int) bool { return pid == self }); !ok || got != self {
		t.Errorf("Ancestor(self) = %d, %v", got, ok)
	}
	parent := os.Getppid()
	if got, ok := Ancestor(self, func(pid int) bool { return pid == parent }); !ok || got != parent {
		t.Errorf("Ancestor(parent) = %d, %v, want %d", got, ok, parent)
	}
	if got, ok := Ancestor(self, func(int) bool { return false }); ok {
		t.Errorf("Ancestor(none) = %d, true", got)
	}
	if got, ok := Ancestor(1<<30, func(int) bool { return false }); ok {
		t.Errorf("Ancestor(missing pid) = %d, true", got)
	}
	steps := 0
	Ancestor(self, func(int) bool { steps++; return false })
	if steps > maxAncestorSteps+1 {
		t.Errorf("known called %d times", steps)
	}
}

func TestDropped(t *testing.T) {
	l := listen(t)
	c := dial(t, l)
	for _, bad := range []string{"garbage", "=1", "STATUS=\xff", ""} {
		if _, err := c.Write([]byte(bad)); err != nil {
			t.Fatalf("write %q: %v", bad, err)
		}
	}
	if _, err := c.Write([]byte("WATCHDOG=1")); err != nil {
		t.Fatal(err)
	}
	// Datagrams are read in order, so the bad ones were handled first.
	if m := receive(t, l); !m.Watchdog {
		t.Errorf("message = %+v, want WATCHDOG=1", m)
	}
	if got := l.Dropped(); got != 4 {
		t.Errorf("Dropped() = %d, want 4", got)
	}
}

func TestFDStoreClosed(t *testing.T) {
	l := listen(t)
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sock)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = unix.Sendmsg(sock, []byte("FDSTORE=1\nFDNAME=x"), unix.UnixRights(int(w.Fd())),
		&unix.SockaddrUnix{Name: l.Addr()}, 0)
	w.Close()
	if err != nil {
		t.Fatalf("send fd: %v", err)
	}
	if m := receive(t, l); m.Fields["FDSTORE"] != "1" {
		t.Errorf("message = %+v", m)
	}
	// The only other write end was the listener's copy: EOF proves it closed.
	if err := r.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("read = %d, %v, want EOF (passed fd leaked)", n, err)
	}
}

func TestCloseWithFullChannel(t *testing.T) {
	l, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, l)
	for range queueLen + 2 {
		if _, err := c.Write([]byte("WATCHDOG=1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	n := 0
	for range l.C() {
		n++
	}
	if n > queueLen {
		t.Errorf("read %d messages after Close, want at most %d", n, queueLen)
	}
}

func TestDecode(t *testing.T) {
	cred := unix.UnixCredentials(&unix.Ucred{Pid: 42, Uid: 1, Gid: 2})
	if m, err := decode([]byte("READY=1"), cred, 0); err != nil || m.PID != 42 || m.UID != 1 || m.GID != 2 || !m.Ready {
		t.Errorf("decode = %+v, %v", m, err)
	}
	bad := []struct {
		name  string
		oob   []byte
		flags int
	}{
		{"no credentials", nil, 0},
		{"pid zero", unix.UnixCredentials(&unix.Ucred{}), 0},
		{"truncated", cred, unix.MSG_TRUNC},
		{"malformed control", []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, 0},
	}
	for _, tt := range bad {
		if _, err := decode([]byte("READY=1"), tt.oob, tt.flags); err == nil {
			t.Errorf("%s: decode succeeded", tt.name)
		}
	}
}
