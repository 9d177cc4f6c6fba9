package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// ErrInUse is returned by New when a live primary already serves the
// socket: a second primary with the same name must not start.
var ErrInUse = errors.New("another herd primary is already running there")

// maxSocketPath is the longest unix socket path Linux takes (sun_path
// less its terminating NUL).
const maxSocketPath = 107

// listenUnix binds the API's unix socket at path with mode 0600. A missing
// parent directory is created with mode 0700 (and the default directory is
// checked to be ours and private). A socket a live process still accepts
// on is refused with ErrInUse; a stale one (connection refused) is
// replaced. The socket is bound under a temporary name, made private and
// renamed into place, so it is never reachable with a wider mode.
func listenUnix(path string) (*net.UnixListener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("control: socket path %s is longer than %d bytes", path, maxSocketPath)
	}
	if err := socketDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := checkStale(path); err != nil {
		return nil, err
	}
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
	_ = os.Remove(tmp)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	l.SetUnlinkOnClose(false) // the socket lives at path, removed by Server
	if err := os.Chmod(tmp, 0o600); err != nil {
		l.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("control: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		l.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("control: %w", err)
	}
	return l, nil
}

// socketDir makes sure dir exists; a directory it creates, and the
// default directory, are mode 0700 and owned by this user.
func socketDir(dir string) error {
	err := os.Mkdir(dir, 0o700)
	switch {
	case err == nil:
		return os.Chmod(dir, 0o700) // whatever the umask
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return fmt.Errorf("control: socket directory: %w", err)
		}
		return socketDir(dir)
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("control: socket directory: %w", err)
	}
	if dir != DefaultSocketDir() {
		return nil // the operator's own directory, as it is
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("control: socket directory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("control: socket directory %s is not a directory", dir)
	case ok && int(st.Uid) != os.Getuid():
		return fmt.Errorf("control: socket directory %s belongs to uid %d, not to us", dir, st.Uid)
	case fi.Mode().Perm() != 0o700:
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("control: socket directory: %w", err)
		}
	}
	return nil
}

// checkStale returns ErrInUse when path is a socket something accepts on,
// removes it when it is a stale socket, and refuses to touch anything that
// is not a socket.
func checkStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control: %s exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("control: %s: %w", path, ErrInUse)
	case errors.Is(err, syscall.ECONNREFUSED):
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("control: removing stale socket: %w", err)
		}
		return nil
	case errors.Is(err, syscall.ENOENT):
		return nil
	}
	return fmt.Errorf("control: checking %s: %w", path, err)
}

// listenTCP binds a TCP address.
func listenTCP(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	return l, nil
}
