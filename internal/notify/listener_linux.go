package notify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

const (
	// rcvBuf is the socket receive buffer asked for, so bursts of
	// notifications from many workers are not lost.
	rcvBuf = 1 << 20
	// queueLen is the capacity of the channel returned by C.
	queueLen = 256
	// maxFDs is SCM_MAX_FD, the most descriptors one message can carry.
	maxFDs = 253
)

// Listener receives sd_notify datagrams on a unix datagram socket whose
// path is in a directory of its own, readable and writable by herd's user
// only, as systemd's own NOTIFY_SOCKET is a plain path: clients that take
// the variable as a path, and do not know Linux's abstract "@" names, work
// unchanged.
type Listener struct {
	conn    *net.UnixConn
	addr    string
	dir     string // removed with the socket by Close
	c       chan Message
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	err     error
	dropped atomic.Uint64
}

// socketName is the socket's file name in its directory.
const socketName = "notify"

// maxPath is the longest path that fits sockaddr_un.sun_path with its
// terminating NUL.
const maxPath = 107

// Listen creates a private directory (mode 0700, a new random name
// starting "herd-notify-") in the first of dirs that exists and where the
// socket path fits a unix socket address, else in os.TempDir(); binds a
// datagram socket with SO_PASSCRED set in it; and starts reading
// datagrams. Only herd's user (and root) can reach the socket; Close
// removes it with its directory.
func Listen(dirs ...string) (*Listener, error) {
	dir, err := privateDir(append(dirs, os.TempDir()))
	if err != nil {
		return nil, err
	}
	addr := filepath.Join(dir, socketName)
	conn, err := listenUnixgram(addr)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	l := &Listener{
		conn: conn,
		addr: addr,
		dir:  dir,
		c:    make(chan Message, queueLen),
		done: make(chan struct{}),
	}
	l.wg.Add(1)
	go l.run()
	return l, nil
}

// privateDir makes a new directory of mode 0700 in the first usable of
// parents.
func privateDir(parents []string) (string, error) {
	var last error
	for _, parent := range parents {
		if parent == "" {
			continue
		}
		// The random part of the name is 10 digits at most.
		if len(filepath.Join(parent, "herd-notify-0123456789", socketName)) > maxPath {
			last = fmt.Errorf("notify: %s: the socket path would be too long", parent)
			continue
		}
		dir, err := os.MkdirTemp(parent, "herd-notify-")
		if err != nil {
			last = fmt.Errorf("notify: socket directory: %w", err)
			continue
		}
		return dir, nil
	}
	return "", last
}

// listenUnixgram creates the socket and sets its options before binding it,
// so no datagram can arrive without credentials.
func listenUnixgram(addr string) (*net.UnixConn, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("notify: socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), addr)
	defer f.Close()
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		return nil, fmt.Errorf("notify: set SO_PASSCRED: %w", err)
	}
	// A bigger buffer only helps; SO_RCVBUFFORCE needs CAP_NET_ADMIN.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: addr}); err != nil {
		return nil, fmt.Errorf("notify: bind %s: %w", addr, err)
	}
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	conn, ok := pc.(*net.UnixConn)
	if !ok {
		pc.Close()
		return nil, fmt.Errorf("notify: unexpected connection type %T", pc)
	}
	return conn, nil
}

// Addr returns the socket's address, the value for NOTIFY_SOCKET; "" for
// a nil Listener.
func (l *Listener) Addr() string {
	if l == nil {
		return ""
	}
	return l.addr
}

// C returns the channel of received messages, in arrival order. It is
// closed after Close.
func (l *Listener) C() <-chan Message { return l.c }

// Dropped returns how many datagrams were dropped because they had no
// usable credentials, were truncated or failed to parse.
func (l *Listener) Dropped() uint64 { return l.dropped.Load() }

// Close stops the reader goroutine, closes the socket and then closes the
// channel returned by C. Messages not yet read from C stay readable. Close
// may be called more than once; later calls return the first result.
func (l *Listener) Close() error {
	if l == nil {
		return nil
	}
	l.once.Do(func() {
		close(l.done)
		if err := l.conn.Close(); err != nil {
			l.err = fmt.Errorf("notify: close: %w", err)
		}
		l.wg.Wait()
		if err := os.RemoveAll(l.dir); err != nil && l.err == nil {
			l.err = fmt.Errorf("notify: remove socket: %w", err)
		}
	})
	return l.err
}

// run reads datagrams until the socket is closed.
func (l *Listener) run() {
	defer l.wg.Done()
	defer close(l.c)
	buf := make([]byte, MaxDatagram)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(maxFDs*4))
	for {
		n, oobn, flags, _, err := l.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if l.closing() || errors.Is(err, net.ErrClosed) {
				return
			}
			l.dropped.Add(1)
			continue
		}
		msg, err := decode(buf[:n], oob[:oobn], flags)
		if err != nil {
			l.dropped.Add(1)
			continue
		}
		select {
		case l.c <- msg:
		case <-l.done:
			return
		}
	}
}

// closing reports whether Close has been called.
func (l *Listener) closing() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// decode turns one received datagram into a Message. It closes every file
// descriptor passed with SCM_RIGHTS (such as FDSTORE=1), whatever the outcome.
func decode(data, oob []byte, flags int) (Message, error) {
	cred, credErr := control(oob)
	switch {
	case credErr != nil:
		return Message{}, credErr
	case flags&unix.MSG_TRUNC != 0:
		return Message{}, errors.New("notify: datagram truncated")
	case cred == nil:
		return Message{}, errors.New("notify: no credentials")
	case cred.Pid <= 0:
		return Message{}, errors.New("notify: sender pid not visible")
	}
	fields, err := Parse(data)
	if err != nil {
		return Message{}, fmt.Errorf("notify: %w", err)
	}
	return newMessage(fields, int(cred.Pid), int(cred.Uid), int(cred.Gid)), nil
}

// control parses the ancillary data of a datagram, closing any passed file
// descriptors, and returns the sender's credentials if present.
func control(oob []byte) (*unix.Ucred, error) {
	cmsgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("notify: control message: %w", err)
	}
	var cred *unix.Ucred
	for i := range cmsgs {
		m := &cmsgs[i]
		if m.Header.Level != unix.SOL_SOCKET {
			continue
		}
		switch m.Header.Type {
		case unix.SCM_RIGHTS:
			fds, _ := unix.ParseUnixRights(m)
			for _, fd := range fds {
				_ = unix.Close(fd)
			}
		case unix.SCM_CREDENTIALS:
			if c, err := unix.ParseUnixCredentials(m); err == nil {
				cred = c
			}
		}
	}
	return cred, nil
}
