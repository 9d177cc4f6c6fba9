package control_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/control/controltest"
)

func TestDefaultSocket(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	if got := control.DefaultSocket("app"); got != "/run/user/1000/herd/app.sock" {
		t.Errorf("with XDG_RUNTIME_DIR: %s", got)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	want := filepath.Join(os.TempDir(), "herd-"+strconv.Itoa(os.Getuid()), "app.sock")
	if got := control.DefaultSocket("app"); got != want {
		t.Errorf("without XDG_RUNTIME_DIR: %s; want %s", got, want)
	}
}

// mode returns the permission bits of path.
func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestSocketPermissions checks the default directory is 0700 and the
// socket 0600 whatever the umask, and that Serve removes the socket.
func TestSocketPermissions(t *testing.T) {
	runtime := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", runtime)
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	srv, err := control.New(control.Config{Name: "perm"}, controltest.New(1, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(runtime, "herd", "perm.sock")
	if m := mode(t, filepath.Dir(path)); m != 0o700 {
		t.Errorf("directory mode %v; want 0700", m)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("socket mode %v; want 0600", m)
	}
	if leftovers, _ := filepath.Glob(path + ".tmp*"); len(leftovers) != 0 {
		t.Errorf("temporary sockets left: %v", leftovers)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket still there after Serve returned: %v", err)
	}

	// An existing default directory with a wider mode is made private.
	if err := os.Chmod(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	srv, err = control.New(control.Config{Name: "perm"}, controltest.New(1, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if m := mode(t, filepath.Dir(path)); m != 0o700 {
		t.Errorf("directory mode %v after reuse; want 0700", m)
	}
}

// TestSecondPrimary checks a live socket is refused with ErrInUse and a
// stale one (nothing accepting) is replaced.
func TestSecondPrimary(t *testing.T) {
	s := serve(t, control.Config{Name: "one"}, controltest.New(1, 1, 1))
	_, err := control.New(control.Config{Name: "one", Socket: s.socket}, controltest.New(1, 1, 1))
	if !errors.Is(err, control.ErrInUse) || !strings.Contains(err.Error(), s.socket) {
		t.Fatalf("second New on a live socket = %v; want ErrInUse naming the socket", err)
	}
	if a := s.do(t, "GET", "/health", ""); a.code != 200 {
		t.Errorf("the first primary no longer answers: %d", a.code)
	}

	stale := filepath.Join(t.TempDir(), "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close() // a primary killed with SIGKILL leaves this behind
	srv, err := control.New(control.Config{Name: "two", Socket: stale}, controltest.New(1, 1, 1))
	if err != nil {
		t.Fatalf("New on a stale socket: %v", err)
	}
	srv.Close()

	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := control.New(control.Config{Socket: file}, controltest.New(1, 1, 1)); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("New on a regular file = %v; want refused", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Error("the regular file was touched")
	}
	long := filepath.Join(t.TempDir(), strings.Repeat("x", 120)+".sock")
	if _, err := control.New(control.Config{Socket: long}, controltest.New(1, 1, 1)); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("New with a long path = %v", err)
	}
}

// TestBindFailureReleases checks a failing TCP bind releases the socket
// bound before it.
func TestBindFailureReleases(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	sock := filepath.Join(t.TempDir(), "c.sock")
	_, err = control.New(control.Config{Socket: sock, ECVAddr: busy.Addr().String()}, controltest.New(1, 1, 1))
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("New with a busy ECV address = %v; want EADDRINUSE", err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left after a failed New: %v", err)
	}
}
