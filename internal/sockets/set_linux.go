package sockets

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Set is every socket the primary owns, for its whole life. Its methods
// are safe for concurrent use.
type Set struct {
	mu      sync.Mutex
	balance Balance
	backlog int
	slots   int
	ls      []*listener
	closed  bool
	serving []bool // by slot, as last told by Steer; nil before

	shutdowns int  // the epoll instance of WatchShutdowns
	watching  bool // whether there is one
}

// listener is the socket, or the per-slot sockets, of one Spec.
type listener struct {
	spec    Spec
	reuse   bool       // one SO_REUSEPORT socket per slot, in perSlot
	shared  *os.File   // the one socket every slot gets, when !reuse
	perSlot []*os.File // slot i's socket, when reuse
	ep      endpoint   // reuse: address with the actual port, for new slots
	unix    *unixFile  // socket file to remove on Close, or nil
	steered bool       // a steering program is attached to the group

	tcp          *bool  // a listening TCP socket; nil until looked at
	retiredDrops uint64 // connections dropped by sockets closed since
}

// Bind creates, binds and listens on a socket for every spec, in order.
//
// With BalanceShared (or ""), each spec gets one socket that every slot
// shares. With BalanceReusePort, each TCP and UDP spec gets one SO_REUSEPORT
// socket per slot, all on the same port (with port 0 the first socket picks
// it); unix specs stay shared. Before creating a reuseport group on a fixed
// port, Bind binds a probe socket without SO_REUSEPORT, so that a port held
// by another process, even one using SO_REUSEPORT itself, is reported as
// EADDRINUSE instead of being silently joined.
//
// slots must be at least 1; backlog 0 means 2048. Specs without a name get
// "listen<i>". On failure every socket bound by this call is closed and the
// error is a *BindError.
func Bind(specs []Spec, balance Balance, slots, backlog int) (*Set, error) {
	if balance == "" {
		balance = BalanceShared
	}
	if _, err := ParseBalance(string(balance)); err != nil {
		return nil, err
	}
	if slots < 1 {
		return nil, fmt.Errorf("invalid slot count %d: want at least 1", slots)
	}
	if backlog < 0 {
		return nil, fmt.Errorf("invalid backlog %d: want 0 (default) or more", backlog)
	}
	if backlog == 0 {
		backlog = defaultBacklog
	}
	s := &Set{balance: balance, backlog: backlog, slots: slots}
	for i, sp := range specs {
		if sp.Name == "" {
			sp.Name = defaultName(i)
		}
		l, err := s.bind(sp)
		if err != nil {
			_ = s.Close()
			return nil, err
		}
		s.ls = append(s.ls, l)
	}
	return s, nil
}

// bind creates the socket(s) of one spec.
func (s *Set) bind(sp Spec) (*listener, error) {
	l := &listener{spec: sp}
	bindErr := func(err error) error {
		return &BindError{Network: sp.Network, Addr: sp.Addr, Err: err}
	}
	switch sp.Network {
	case "unix":
		fd, uf, err := openUnix(sp, s.backlog)
		if err != nil {
			return nil, bindErr(err)
		}
		l.shared, l.unix = newFile(fd, fileName(sp, -1)), uf
		return l, nil
	case "tcp", "udp":
	default:
		return nil, bindErr(fmt.Errorf("unknown network %q: want tcp, udp or unix", sp.Network))
	}
	ep, err := resolve(sp.Network, sp.Addr)
	if err != nil {
		return nil, bindErr(err)
	}
	if s.balance != BalanceReusePort {
		fd, err := openInet(ep, false, true, s.backlog)
		if err != nil {
			return nil, bindErr(err)
		}
		l.shared = newFile(fd, fileName(sp, -1))
		return l, nil
	}
	if ep.port() != 0 {
		// The probe: without SO_REUSEPORT it fails if anyone holds the
		// port, including a process that would share it with us.
		fd, err := openInet(ep, false, false, 0)
		if err != nil {
			return nil, bindErr(err)
		}
		_ = unix.Close(fd)
	}
	l.reuse, l.ep = true, ep
	if err := s.grow(l, s.slots); err != nil {
		_ = l.close()
		return nil, bindErr(err)
	}
	return l, nil
}

// grow adds reuseport sockets to l until it has n. The first socket of a
// port-0 group fixes the port for the rest.
func (s *Set) grow(l *listener, n int) error {
	for len(l.perSlot) < n {
		fd, err := openInet(l.ep, true, true, s.backlog)
		if err != nil {
			return err
		}
		if l.ep.port() == 0 {
			port, err := boundPort(fd)
			if err != nil {
				_ = unix.Close(fd)
				return err
			}
			l.ep = l.ep.withPort(port)
		}
		l.perSlot = append(l.perSlot, newFile(fd, fileName(l.spec, len(l.perSlot))))
		if l.spec.Network == "tcp" {
			_ = s.watchShutdown(fd) // unwatched, it is still checked at every Repair
		}
	}
	return nil
}

// shrink closes l's reuseport sockets of slots n and above, the highest
// first, so that the kernel keeps every other socket at its index in the
// group (see Steer).
func (l *listener) shrink(n int) error {
	var errs []error
	for i := len(l.perSlot) - 1; i >= n; i-- {
		if l.isTCPListener() {
			l.retiredDrops += socketDrops(fdOf(l.perSlot[i]))
		}
		errs = append(errs, l.perSlot[i].Close())
		l.perSlot[i] = nil
	}
	if n < len(l.perSlot) {
		l.perSlot = l.perSlot[:n]
	}
	return errors.Join(errs...)
}

// close closes all of l's sockets and removes the socket file it created.
func (l *listener) close() error {
	var errs []error
	if l.shared != nil {
		errs = append(errs, l.shared.Close())
		l.shared = nil
	}
	errs = append(errs, l.shrink(0), l.unix.remove())
	l.unix = nil
	return errors.Join(errs...)
}

// first returns one of l's sockets (slot 0's, for reuseport), or nil.
func (l *listener) first() *os.File {
	if !l.reuse {
		return l.shared
	}
	if len(l.perSlot) == 0 {
		return nil
	}
	return l.perSlot[0]
}

// fileName names an *os.File for error messages; slot -1 means shared.
func fileName(sp Spec, slot int) string {
	name := sp.Name + ":" + sp.Network + ":" + sp.Addr
	if slot >= 0 {
		name += "#" + strconv.Itoa(slot)
	}
	return name
}

// Files returns what the worker in slot gets, in order, as fd 3+i, and the
// names for LISTEN_FDNAMES: one socket per listener, slot's own socket for
// reuseport listeners. It returns nil if the Set is closed or slot has no
// sockets (negative, or past the slot count with reuseport). The files stay
// open until Close, or until Resize removes the slot: pass them to
// exec.Cmd.ExtraFiles as often as needed, but do not close them.
func (s *Set) Files(slot int) (files []*os.File, names []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || slot < 0 || (s.balance == BalanceReusePort && slot >= s.slots) {
		return nil, nil
	}
	for _, l := range s.ls {
		f := l.shared
		if l.reuse {
			f = l.perSlot[slot]
		}
		files = append(files, f)
		names = append(names, l.spec.Name)
	}
	return files, names
}

// Port returns the port of the first TCP listener, as bound (so a ":0"
// listener gives the port the kernel picked), or 0 if there is none.
func (s *Set) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.ls {
		if l.spec.Network != "tcp" {
			continue
		}
		f := l.first()
		if f == nil {
			return 0
		}
		port, err := boundPort(fdOf(f))
		if err != nil {
			return 0
		}
		return port
	}
	return 0
}

// Addrs describes every listener as bound, for a start-up log line:
// "web=tcp://127.0.0.1:8080", "admin=unix:///run/herd.sock".
func (s *Set) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.ls))
	for _, l := range s.ls {
		addr := l.spec.Addr
		if f := l.first(); f != nil {
			if sa, err := unix.Getsockname(fdOf(f)); err == nil {
				addr = sockaddrString(sa)
			}
		}
		network := l.spec.Network
		if network == "" {
			network = "fd"
		}
		out = append(out, l.spec.Name+"="+network+"://"+addr)
	}
	return out
}

// Resize sets the number of slots. With reuseport it creates sockets for
// new slots, on the same ports, and closes those of slots >= slots (a
// connection still queued on a closed socket is reset, unless the kernel
// migrates it with net.ipv4.tcp_migrate_req: steer connections away from
// a slot, let its worker drain its queue, and shrink only once the worker
// is gone). New slots are not serving for Steer. With shared sockets it
// does nothing. On failure the sockets created by this call are closed and
// the error is a *BindError.
func (s *Set) Resize(slots int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("resize: socket set is closed")
	}
	if slots < 1 {
		return fmt.Errorf("resize: invalid slot count %d: want at least 1", slots)
	}
	if s.balance != BalanceReusePort {
		return nil
	}
	var errs []error
	for i, l := range s.ls {
		if !l.reuse {
			continue
		}
		if slots < s.slots {
			errs = append(errs, l.shrink(slots))
			continue
		}
		if err := s.grow(l, slots); err != nil {
			for _, done := range s.ls[:i+1] {
				_ = done.shrink(s.slots)
			}
			return &BindError{Network: l.spec.Network, Addr: l.spec.Addr, Err: err}
		}
	}
	s.slots = slots
	if s.serving != nil {
		s.serving = append(s.serving, make([]bool, max(0, slots-len(s.serving)))...)[:slots]
	}
	errs = append(errs, s.steerAll())
	return errors.Join(errs...)
}

// Close closes every socket and removes the unix socket files the Set
// created. Workers keep their own copies. Later calls do nothing.
func (s *Set) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, l := range s.ls {
		errs = append(errs, l.close())
	}
	return errors.Join(errs...)
}
