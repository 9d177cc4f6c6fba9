package sockets

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// staleSocket leaves a socket file at path with nothing listening on it.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	_ = ln.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("stale socket not in place: %v", err)
	}
}

func TestUnixStaleRemoved(t *testing.T) {
	path := t.TempDir() + "/s.sock"
	staleSocket(t, path)
	s := mustBind(t, BalanceReusePort, 2, "adm=unix:"+path+",mode=0600")
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket file mode %v, want a socket with 0600", fi.Mode())
	}
	f0, _ := s.Files(0)
	f1, _ := s.Files(1)
	if f0[0] != f1[0] {
		t.Error("unix socket not shared between slots in reuseport mode")
	}
	checkBlockingCloexec(t, f0)
	if want := "adm=unix://" + path; s.Addrs()[0] != want {
		t.Errorf("Addrs() = %q, want %q", s.Addrs(), want)
	}
	roundTrip(t, "unix", path, fileListener(t, f0[0]))

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("Close left the socket file: %v", err)
	}
}

func TestUnixLiveRefused(t *testing.T) {
	path := t.TempDir() + "/s.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	specs, _ := ParseAll([]string{"unix:" + path})
	_, err = Bind(specs, BalanceShared, 1, 0)
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Bind on a live socket: %v, want EADDRINUSE", err)
	}
	if want := "listen unix " + path + ": address already in use"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	// The liveness probe's connection reaches the live server as an empty
	// connection; after it, the server works as before.
	probe, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	_ = probe.Close()
	roundTrip(t, "unix", path, ln)
}

func TestUnixNotASocket(t *testing.T) {
	path := t.TempDir() + "/file"
	if err := os.WriteFile(path, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	specs, _ := ParseAll([]string{"unix:" + path})
	_, err := Bind(specs, BalanceShared, 1, 0)
	var be *BindError
	if !errors.Is(err, errNotSocket) || !errors.As(err, &be) || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Bind on a regular file: %v, want a BindError saying not a socket", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "keep" {
		t.Errorf("file changed: %q, %v", b, err)
	}
}

func TestUnixOwnership(t *testing.T) {
	dir := t.TempDir()
	uid, gid := os.Getuid(), os.Getgid()
	group := strconv.Itoa(gid)
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name // by name when the system knows it
	}
	path := dir + "/own.sock"
	mustBind(t, BalanceShared, 1, fmt.Sprintf("unix:%s,owner=%d,group=%s,mode=0660", path, uid, group))
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid || fi.Mode().Perm() != 0o660 {
		t.Errorf("owner %d:%d mode %v, want %d:%d 0660", st.Uid, st.Gid, fi.Mode().Perm(), uid, gid)
	}

	bad := dir + "/bad.sock"
	specs, _ := ParseAll([]string{"unix:" + bad + ",owner=no-such-user-herd-test"})
	_, err = Bind(specs, BalanceShared, 1, 0)
	if err == nil || !strings.Contains(err.Error(), "no-such-user-herd-test") {
		t.Errorf("Bind with an unknown owner: %v", err)
	}
	if _, err := os.Lstat(bad); !os.IsNotExist(err) {
		t.Errorf("failed Bind left its socket file: %v", err)
	}
}

func TestUnixAbstract(t *testing.T) {
	name := fmt.Sprintf("@herd-sockets-test-%d", os.Getpid())
	s := mustBind(t, BalanceShared, 1, "unix:"+name)
	if want := "listen0=unix://" + name; s.Addrs()[0] != want {
		t.Errorf("Addrs() = %q, want %q", s.Addrs(), want)
	}
	files, _ := s.Files(0)
	roundTrip(t, "unix", name, fileListener(t, files[0]))
}

func TestUnixCloseKeepsReplacedFile(t *testing.T) {
	path := t.TempDir() + "/s.sock"
	specs, _ := ParseAll([]string{"unix:" + path})
	s, err := Bind(specs, BalanceShared, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "new" {
		t.Errorf("Close removed a file it did not create: %q, %v", b, err)
	}
}
