package sockets

import (
	"errors"
	"fmt"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Steering a reuseport group.
//
// With one SO_REUSEPORT socket per slot, the kernel spreads new TCP
// connections over every socket of the group, whether or not a worker
// accepts on it: a slot whose worker is starting, has crashed, is DISABLED
// or is being scaled away would still get its share, and the connections
// queued on a socket when it is closed are reset. Steer attaches a classic
// BPF program to the group (SO_ATTACH_REUSEPORT_CBPF, which needs no
// privilege) that gives each new connection to one of the serving slots,
// picked at random; the other sockets stay open and their queues are served
// by their worker, or by the next one of the slot.
//
// The program returns an index into the group's array of sockets, which
// holds them in the order they started listening, a closed one being
// replaced by the last. The Set keeps slot i's socket at index i: sockets
// are created in slot order and closed from the highest slot down.

// Steer sets which slots get new TCP connections on reuseport listeners:
// those whose serving[i] is true (slots past the end of serving are not
// serving). Until Steer is first called, and whenever every slot or none
// is serving, the kernel spreads connections over all sockets as usual.
// Slots added by Resize are not serving until Steer says so. With shared
// sockets Steer does nothing. An error means the kernel refused the
// program: connections are then spread as before.
func (s *Set) Steer(serving []bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.balance != BalanceReusePort {
		return nil
	}
	s.serving = append(s.serving[:0:0], serving...)
	return s.steerAll()
}

// steerAll applies the serving slots to every steerable listener; s.mu is
// held.
func (s *Set) steerAll() error {
	if s.serving == nil {
		return nil
	}
	var errs []error
	for _, l := range s.ls {
		if err := l.steer(s.serving); err != nil {
			errs = append(errs, fmt.Errorf("steering %s: %w", l.spec.Name, err))
		}
	}
	return errors.Join(errs...)
}

// steerable reports whether l is a group of per-slot TCP sockets.
func (l *listener) steerable() bool {
	return l.reuse && l.ep.sotype == unix.SOCK_STREAM && len(l.perSlot) > 0
}

// steer attaches the program that picks among the serving slots, or
// detaches it when there is no choice to make.
func (l *listener) steer(serving []bool) error {
	if !l.steerable() {
		return nil
	}
	var idx []uint32
	for i := range l.perSlot {
		if i < len(serving) && serving[i] {
			idx = append(idx, uint32(i))
		}
	}
	fd := fdOf(l.perSlot[0]) // any socket of the group sets the group's program
	if len(idx) == 0 || len(idx) == len(l.perSlot) {
		if !l.steered {
			return nil
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_REUSEPORT_BPF, 0); err != nil {
			// Kernels before 5.3 cannot detach: pick among all instead.
			idx = idx[:0]
			for i := range l.perSlot {
				idx = append(idx, uint32(i))
			}
			return l.attach(fd, idx)
		}
		l.steered = false
		return nil
	}
	return l.attach(fd, idx)
}

// attach sets the group's program to pick one of the sockets idx.
func (l *listener) attach(fd int, idx []uint32) error {
	prog, err := steerProgram(idx)
	if err != nil {
		return err
	}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, prog); err != nil {
		return fmt.Errorf("setsockopt SO_ATTACH_REUSEPORT_CBPF: %w", err)
	}
	l.steered = true
	return nil
}

// steerProgram returns a classic BPF program that returns one of idx
// (ascending) at random: A = random % len(idx), then A is mapped to idx[A]
// run by run of consecutive indices, so that the usual sets (the first k
// slots, or all but a few) take a handful of instructions.
func steerProgram(idx []uint32) (*unix.SockFprog, error) {
	prog := []bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtRand},
		bpf.ALUOpConstant{Op: bpf.ALUOpMod, Val: uint32(len(idx))},
	}
	for j := 0; j < len(idx); {
		end := j + 1 // idx[j:end] is a run of consecutive indices
		for end < len(idx) && idx[end] == idx[end-1]+1 {
			end++
		}
		if end < len(idx) {
			prog = append(prog, bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: uint32(end), SkipTrue: 2})
		}
		prog = append(prog, bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: idx[j] - uint32(j)}, bpf.RetA{})
		j = end
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("steering program: %w", err)
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}, nil
}

// Queued returns how many connections wait to be accepted on the sockets
// of slot's own (reuseport TCP sockets), and whether slot has any: with
// shared sockets it returns 0, false.
func (s *Set) Queued(slot int) (n int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, false
	}
	for _, l := range s.ls {
		if !l.steerable() || slot < 0 || slot >= len(l.perSlot) {
			continue
		}
		ok = true
		// For a listening socket the kernel reports its accept queue's
		// length as tcpi_unacked.
		if ti, err := unix.GetsockoptTCPInfo(fdOf(l.perSlot[slot]), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			n += int(ti.Unacked)
		}
	}
	return n, ok
}
