package sockets

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Repaired is a listening socket that Repair found no longer listening
// and made listen again, or failed to.
type Repaired struct {
	Name string // the listener's name
	Addr string // its address, as bound
	Err  error  // why it could not listen again; nil when it does
}

// Repair makes every TCP listening socket of the set that stopped
// listening listen again, and reports each one it found.
//
// All workers share the primary's sockets, so one worker that calls
// shutdown(2) on its copy of a listening socket (some servers do on exit)
// stops it for every worker and the primary: connections queued on it are
// reset and new ones refused. The kernel leaves such a socket open, in the
// closed state, so calling listen(2) on the primary's copy puts the same
// socket, in every process that holds it, back to listening. A socket that
// lost its port with the shutdown (one bound to port 0) is first bound
// again to the port it had, which getsockname(2) still shows. Unix and UDP sockets cannot be put back this
// way and are not checked.
//
// Repair costs one getsockopt(2) per TCP socket. Call it whenever the
// epoll instance given to WatchShutdowns reports an event.
func (s *Set) Repair() []Repaired {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	var out []Repaired
	s.eachTCP(func(l *listener, f *os.File) {
		if r, found := s.repair(l, f); found {
			out = append(out, r)
		}
	})
	return out
}

// eachTCP calls fn with every TCP socket of the set; s.mu is held.
func (s *Set) eachTCP(fn func(*listener, *os.File)) {
	for _, l := range s.ls {
		if l.spec.Network != "tcp" {
			continue
		}
		files := l.perSlot
		if !l.reuse {
			files = []*os.File{l.shared}
		}
		for _, f := range files {
			fn(l, f)
		}
	}
}

// repair checks one socket and makes it listen again if it stopped.
func (s *Set) repair(l *listener, f *os.File) (Repaired, bool) {
	fd := fdOf(f)
	listening, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil || listening == 1 {
		return Repaired{}, false
	}
	r := Repaired{Name: l.spec.Name, Addr: l.spec.Addr}
	// A socket bound to port 0 loses its port with the shutdown, though
	// getsockname still shows it: bind it to that port again. One that
	// kept its port refuses the bind with EINVAL.
	addr, err := unix.Getsockname(fd)
	if err != nil {
		r.Err = fmt.Errorf("getsockname: %w", err)
		return r, true
	}
	r.Addr = sockaddrString(addr)
	if err := unix.Bind(fd, addr); err != nil && !errors.Is(err, unix.EINVAL) {
		r.Err = fmt.Errorf("bind: %w", err)
		return r, true
	}
	if err := unix.Listen(fd, s.backlog); err != nil {
		r.Err = fmt.Errorf("listen: %w", err)
	}
	return r, true
}

// WatchShutdowns registers every TCP socket of the set, and every one
// Resize adds later, with the epoll instance ep, edge-triggered and for no
// event but the ones epoll always reports: ep then reports EPOLLHUP once
// when a socket stops listening, and nothing else. New connections do not
// wake it (the kernel filters their wake-up by the registered events), so
// the watch costs nothing while nothing happens. A socket the set closes
// stays registered while a worker still holds it; at worst that gives one
// needless Repair.
func (s *Set) WatchShutdowns(ep int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutdowns, s.watching = ep, true
	var errs []error
	s.eachTCP(func(_ *listener, f *os.File) { errs = append(errs, s.watchShutdown(fdOf(f))) })
	return errors.Join(errs...)
}

// watchShutdown registers fd with the WatchShutdowns epoll instance, if
// there is one; s.mu is held.
func (s *Set) watchShutdown(fd int) error {
	if !s.watching {
		return nil
	}
	ev := unix.EpollEvent{Events: unix.EPOLLET, Fd: int32(fd)}
	if err := unix.EpollCtl(s.shutdowns, unix.EPOLL_CTL_ADD, fd, &ev); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}
