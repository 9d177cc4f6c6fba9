package sockets

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"

	"golang.org/x/sys/unix"
)

// errNotSocket is returned when a unix listener's path exists and is not a
// socket.
var errNotSocket = errors.New("path exists and is not a socket; refusing to remove it")

// unixFile identifies the socket file a Set created, so Close removes that
// file and not one someone put in its place since.
type unixFile struct {
	path     string
	dev, ino uint64
}

// openUnix creates a blocking unix stream socket listening on sp.Addr,
// removing a stale socket file first and applying sp's mode and owner. It
// returns the file to remove on Close (nil for abstract sockets).
func openUnix(sp Spec, backlog int) (int, *unixFile, error) {
	path := sp.Addr
	abstract := path != "" && path[0] == '@'
	if !abstract {
		if err := removeStale(path); err != nil {
			return -1, nil, err
		}
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, fmt.Errorf("socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		_ = unix.Close(fd)
		return -1, nil, err
	}
	var uf *unixFile
	if !abstract {
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			_ = unix.Close(fd)
			return -1, nil, fmt.Errorf("stat after bind: %w", err)
		}
		uf = &unixFile{path: path, dev: st.Dev, ino: st.Ino}
		// Permissions go on before listen: until then connects are refused.
		if err := applyOwnership(sp); err != nil {
			_ = unix.Close(fd)
			_ = uf.remove()
			return -1, nil, err
		}
	}
	if err := unix.Listen(fd, backlog); err != nil {
		_ = unix.Close(fd)
		_ = uf.remove()
		return -1, nil, fmt.Errorf("listen: %w", err)
	}
	return fd, uf, nil
}

// removeStale removes path if it is a socket nobody accepts on. A live
// socket gives EADDRINUSE (its server sees one empty connection: the
// probe); any other file gives errNotSocket.
func removeStale(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("stat: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return errNotSocket
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
	_ = unix.Close(fd)
	switch {
	case errors.Is(err, unix.ECONNREFUSED):
		// Stale: the file outlived its socket.
		if err := unix.Unlink(path); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove stale socket: %w", err)
		}
		return nil
	case err == nil, errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EPROTOTYPE):
		// Accepting, backlog full, or a live socket of another type.
		return unix.EADDRINUSE
	default:
		return fmt.Errorf("probe existing socket: %w", err)
	}
}

// applyOwnership applies sp's mode, owner and group to the socket file.
func applyOwnership(sp Spec) error {
	if sp.Owner != "" || sp.Group != "" {
		uid, gid := -1, -1
		var err error
		if sp.Owner != "" {
			if uid, err = lookupID(sp.Owner, lookupUser); err != nil {
				return err
			}
		}
		if sp.Group != "" {
			if gid, err = lookupID(sp.Group, lookupGroup); err != nil {
				return err
			}
		}
		if err := unix.Chown(sp.Addr, uid, gid); err != nil {
			return fmt.Errorf("chown %d:%d: %w", uid, gid, err)
		}
	}
	if sp.Mode != 0 {
		if err := unix.Chmod(sp.Addr, uint32(sp.Mode.Perm())); err != nil {
			return fmt.Errorf("chmod %#o: %w", sp.Mode.Perm(), err)
		}
	}
	return nil
}

// lookupID returns the numeric id of a user or group given by id or name.
func lookupID(s string, byName func(string) (string, error)) (int, error) {
	if n, err := strconv.ParseUint(s, 10, 31); err == nil {
		return int(n), nil
	}
	id, err := byName(s)
	if err != nil {
		return -1, err
	}
	n, err := strconv.ParseUint(id, 10, 31)
	if err != nil {
		return -1, fmt.Errorf("id %q of %q is not numeric", id, s)
	}
	return int(n), nil
}

func lookupUser(name string) (string, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return "", fmt.Errorf("owner: %w", err)
	}
	return u.Uid, nil
}

func lookupGroup(name string) (string, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return "", fmt.Errorf("group: %w", err)
	}
	return g.Gid, nil
}

// remove unlinks the socket file if it is still the one created. It is a
// no-op on a nil receiver.
func (u *unixFile) remove() error {
	if u == nil {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(u.path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("stat %s: %w", u.path, err)
	}
	if st.Dev != u.dev || st.Ino != u.ino {
		return nil // replaced by someone else: not ours to remove
	}
	if err := unix.Unlink(u.path); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s: %w", u.path, err)
	}
	return nil
}
