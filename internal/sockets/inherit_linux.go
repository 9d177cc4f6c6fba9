package sockets

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/herd-cluster/herd/internal/envvar"
)

// listenFDsStart is the first fd of the socket-activation protocol.
const listenFDsStart = 3

// Inherited returns the sockets herd itself was given by socket activation
// (systemd, or any parent speaking the protocol): when LISTEN_PID is this
// process and LISTEN_FDS > 0, fds 3 .. 3+LISTEN_FDS-1 are wrapped, named
// from LISTEN_FDNAMES (missing or empty names become "listen<i>"), made
// close-on-exec and blocking, and returned as a shared Set with ok true.
// Otherwise ok is false and the Set nil.
//
// Like sd_listen_fds(1), Inherited removes LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES from the environment whenever LISTEN_PID or LISTEN_FDS is
// set, so they do not leak to workers. The returned Set never removes unix
// socket files: they belong to whoever created them.
func Inherited() (*Set, bool, error) {
	names, present, err := listenEnv(os.Getpid(), os.LookupEnv)
	if present {
		for _, k := range []string{envvar.ListenPID, envvar.ListenFDs, envvar.ListenFDNames} {
			_ = os.Unsetenv(k)
		}
	}
	if err != nil || len(names) == 0 {
		return nil, false, err
	}
	s := &Set{balance: BalanceShared, backlog: defaultBacklog}
	for i, name := range names {
		l, err := inherit(listenFDsStart+i, name)
		if err != nil {
			_ = s.Close()
			return nil, false, err
		}
		s.ls = append(s.ls, l)
	}
	return s, true, nil
}

// listenEnv reads the socket-activation variables through lookup and
// returns one name per fd passed to process pid (none if the variables are
// absent or meant for another process). present reports whether LISTEN_PID
// or LISTEN_FDS is set at all.
func listenEnv(pid int, lookup func(string) (string, bool)) (names []string, present bool, err error) {
	pidStr, hasPID := lookup(envvar.ListenPID)
	fdsStr, hasFDs := lookup(envvar.ListenFDs)
	present = hasPID || hasFDs
	if !hasPID || !hasFDs {
		return nil, present, nil
	}
	p, err := strconv.Atoi(pidStr)
	if err != nil || p <= 0 {
		return nil, present, fmt.Errorf("invalid %s=%q: want a process id", envvar.ListenPID, pidStr)
	}
	if p != pid {
		return nil, present, nil
	}
	n, err := strconv.Atoi(fdsStr)
	if err != nil || n < 0 {
		return nil, present, fmt.Errorf("invalid %s=%q: want a count of file descriptors", envvar.ListenFDs, fdsStr)
	}
	var given []string
	if s, _ := lookup(envvar.ListenFDNames); s != "" {
		given = strings.Split(s, ":")
	}
	names = make([]string, n)
	for i := range names {
		if i < len(given) && given[i] != "" {
			names[i] = given[i]
		} else {
			names[i] = defaultName(i)
		}
	}
	return names, present, nil
}

// inherit wraps one inherited fd: close-on-exec, blocking, described with
// getsockname.
func inherit(fd int, name string) (*listener, error) {
	wrap := func(what string, err error) error {
		return fmt.Errorf("inherited fd %d (%s): %s: %w", fd, name, what, err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return nil, wrap("set close-on-exec", err)
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return nil, wrap("get flags", err)
	}
	if flags&unix.O_NONBLOCK != 0 {
		// Workers expect blocking sockets, and os.NewFile must not hand a
		// non-blocking one to the runtime poller.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags&^unix.O_NONBLOCK); err != nil {
			return nil, wrap("set blocking", err)
		}
	}
	sp := Spec{Name: name}
	sp.Network, sp.Addr = describe(fd)
	return &listener{spec: sp, shared: newFile(fd, fileName(sp, -1))}, nil
}

// describe returns the Spec network and address of an inherited fd: "tcp",
// "udp" or "unix" and its bound address, or "" and the fd number for
// anything else.
func describe(fd int) (network, addr string) {
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return "", strconv.Itoa(fd)
	}
	sotype, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return "", strconv.Itoa(fd)
	}
	switch {
	case domain == unix.AF_UNIX:
		network = "unix"
	case (domain == unix.AF_INET || domain == unix.AF_INET6) && sotype == unix.SOCK_STREAM:
		network = "tcp"
	case (domain == unix.AF_INET || domain == unix.AF_INET6) && sotype == unix.SOCK_DGRAM:
		network = "udp"
	default:
		return "", strconv.Itoa(fd)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return network, strconv.Itoa(fd)
	}
	return network, sockaddrString(sa)
}
