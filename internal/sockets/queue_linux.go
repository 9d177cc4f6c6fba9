package sockets

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Accept queues.
//
// The primary owns every listening socket, so it can see what no worker
// can: connections the kernel has completed and queued that no worker has
// accepted yet. For a listening TCP socket, TCP_INFO reports the accept
// queue's length as tcpi_unacked and its limit (the listen backlog, capped
// at net.core.somaxconn) as tcpi_sacked. SO_MEMINFO's drop count of a
// listening socket counts the connections it refused: chiefly because its
// accept queue was full (the kernel's ListenOverflows, which it also
// counts per network namespace), and SYNs dropped for want of memory. Both
// are one getsockopt each, with no lock the kernel's accept path takes.

// SocketQueue is the accept queue of one listening TCP socket.
type SocketQueue struct {
	// Slot is the slot whose own socket this is (reuseport), or -1 for a
	// socket every slot shares.
	Slot int
	// Depth is how many connections wait to be accepted; Limit how many
	// may wait before the kernel drops new ones.
	Depth, Limit int
	// Drops counts the connections this socket dropped (0 unless asked).
	Drops uint64
}

// ListenerQueue is the accept queue of one TCP listener: its socket, or
// the sockets of its reuseport group in slot order.
type ListenerQueue struct {
	Name    string
	Sockets []SocketQueue
	// Drops counts the connections every socket of the listener dropped,
	// those since closed included (0 unless asked).
	Drops uint64
}

// Depth is the connections waiting on every socket of the listener.
func (q ListenerQueue) Depth() int {
	n := 0
	for _, s := range q.Sockets {
		n += s.Depth
	}
	return n
}

// Limit is the sum of the sockets' limits.
func (q ListenerQueue) Limit() int {
	n := 0
	for _, s := range q.Sockets {
		n += s.Limit
	}
	return n
}

// Queues reads the accept queue of every listening TCP socket, appending
// one ListenerQueue per TCP listener to dst (UDP and unix listeners have
// none to read). With drops, it reads the drop counts too, which costs a
// second system call per socket.
func (s *Set) Queues(dst []ListenerQueue, drops bool) []ListenerQueue {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return dst
	}
	for _, l := range s.ls {
		if !l.isTCPListener() {
			continue
		}
		q := ListenerQueue{Name: l.spec.Name}
		if drops {
			q.Drops = l.retiredDrops
		}
		add := func(slot int, f *os.File) {
			sq := SocketQueue{Slot: slot}
			sq.Depth, sq.Limit = acceptQueue(fdOf(f))
			if drops {
				sq.Drops = socketDrops(fdOf(f))
				q.Drops += sq.Drops
			}
			q.Sockets = append(q.Sockets, sq)
		}
		if l.reuse {
			for i, f := range l.perSlot {
				add(i, f)
			}
		} else if l.shared != nil {
			add(-1, l.shared)
		}
		dst = append(dst, q)
	}
	return dst
}

// isTCPListener reports whether l is a listening TCP socket (or group):
// bound here from a tcp spec, or inherited as one.
func (l *listener) isTCPListener() bool {
	if l.tcp != nil {
		return *l.tcp
	}
	ok := false
	if f := l.first(); f != nil {
		fd := fdOf(f)
		proto, err1 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
		listening, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		ok = err1 == nil && err2 == nil && proto == unix.IPPROTO_TCP && listening == 1
	}
	l.tcp = &ok
	return ok
}

// acceptQueue returns the length and the limit of a listening TCP
// socket's accept queue, or zeros when the kernel does not say.
func acceptQueue(fd int) (depth, limit int) {
	ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil || ti.State != tcpListen {
		return 0, 0
	}
	return int(ti.Unacked), int(ti.Sacked)
}

// tcpListen is TCP_LISTEN, the state of a listening socket in tcpi_state.
const tcpListen = 10

// skMeminfoDrops is the index of the drop count in SO_MEMINFO's array
// (SK_MEMINFO_DROPS), and skMeminfoVars its length in Linux 4.6 and later.
const (
	skMeminfoDrops = 8
	skMeminfoVars  = 9
)

// socketDrops returns the drop count of a socket from SO_MEMINFO, or 0.
// x/sys/unix has no typed wrapper for this option, which returns an array
// of u32: the call is made raw.
func socketDrops(fd int) uint64 {
	var mem [skMeminfoVars]uint32
	size := uint32(unsafe.Sizeof(mem))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&mem[0])), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 || size < (skMeminfoDrops+1)*4 {
		return 0
	}
	return uint64(mem[skMeminfoDrops])
}
