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
// again to the port it had: Repair remembers the address of every socket
// it sees listening. Unix and UDP sockets cannot be put back this
// way and are not checked.
//
// Repair costs one getsockopt(2) per TCP socket: call it periodically.
func (s *Set) Repair() []Repaired {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if s.bound == nil {
		s.bound = map[*os.File]unix.Sockaddr{}
	}
	var out []Repaired
	seen := map[*os.File]bool{}
	for _, l := range s.ls {
		if l.spec.Network != "tcp" {
			continue
		}
		files := l.perSlot
		if !l.reuse {
			files = []*os.File{l.shared}
		}
		for _, f := range files {
			seen[f] = true
			if r, found := s.repair(l, f); found {
				out = append(out, r)
			}
		}
	}
	for f := range s.bound {
		if !seen[f] {
			delete(s.bound, f) // closed by Resize
		}
	}
	return out
}

// repair checks one socket and makes it listen again if it stopped. It
// remembers the address of each socket it sees listening, so that one
// whose shutdown lost its port can be bound to it again.
func (s *Set) repair(l *listener, f *os.File) (Repaired, bool) {
	fd := fdOf(f)
	listening, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil {
		return Repaired{}, false
	}
	addr, known := s.bound[f]
	if listening == 1 {
		if !known {
			if sa, err := unix.Getsockname(fd); err == nil {
				s.bound[f] = sa
			}
		}
		return Repaired{}, false
	}
	r := Repaired{Name: l.spec.Name, Addr: l.spec.Addr}
	if known {
		r.Addr = sockaddrString(addr)
	}
	// A socket bound to port 0 loses its port with the shutdown, though
	// getsockname still shows it: bind it to that port again. One that
	// kept its port refuses the bind with EINVAL.
	if !known {
		r.Err = errors.New("herd never saw it listening, so cannot tell its address")
		return r, true
	}
	if err := unix.Bind(fd, addr); err != nil && !errors.Is(err, unix.EINVAL) {
		r.Err = fmt.Errorf("bind: %w", err)
		return r, true
	}
	if err := unix.Listen(fd, s.backlog); err != nil {
		r.Err = fmt.Errorf("listen: %w", err)
	}
	return r, true
}
