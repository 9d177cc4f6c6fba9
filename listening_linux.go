package herd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/herd-cluster/herd/internal/sockets"
)

// listenRetry is how often a socket that could not listen again is tried
// again.
const listenRetry = time.Second

// keepListening puts back to listening every TCP socket of set that a
// worker shuts down: one shutdown(2) on a worker's copy of the shared
// socket stops it for every worker, and without this the cluster would
// refuse every connection from then on. The kernel tells of a shutdown
// through an epoll instance (sockets.Set.WatchShutdowns), so nothing runs
// while nothing happens and no request pays for it; the wait takes one
// thread, blocked in epoll_wait(2), which Go's poller cannot do for a
// listening socket without waking for every connection. Each repair is
// logged at error level; a socket that cannot listen again is reported
// once and tried every second until it does. The returned stop ends it.
func (c *Cluster) keepListening(set *sockets.Set) (stop func(), err error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("herd: epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(ep)
		return nil, fmt.Errorf("herd: eventfd: %w", err)
	}
	closeAll := func() { unix.Close(ep); unix.Close(wake) }
	err = unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)})
	if err == nil {
		err = set.WatchShutdowns(ep)
	}
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("herd: watching the listening sockets: %w", err)
	}
	done := make(chan struct{})
	go func() { defer close(done); c.repairLoop(set, ep, wake) }()
	return func() {
		_, _ = unix.Write(wake, binary.NativeEndian.AppendUint64(nil, 1))
		<-done
		closeAll()
	}, nil
}

// repairLoop waits for the epoll instance ep and repairs set's sockets,
// until the eventfd wake is written.
func (c *Cluster) repairLoop(set *sockets.Set, ep, wake int) {
	failing := map[string]bool{}
	events := make([]unix.EpollEvent, 16)
	for {
		timeout := -1
		if len(failing) > 0 {
			timeout = int(listenRetry / time.Millisecond)
		}
		n, err := unix.EpollWait(ep, events, timeout)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			c.cfg.Logger.Error("watching the listening sockets failed; a worker that shuts one down will not be repaired", "err", err)
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == int32(wake) {
				return
			}
		}
		c.repair(set, failing)
	}
}

// repair makes set's shut-down sockets listen again and logs each one;
// failing holds the names of those that could not, said once each.
func (c *Cluster) repair(set *sockets.Set, failing map[string]bool) {
	for _, r := range set.Repair() {
		if r.Err != nil {
			if !failing[r.Name] {
				c.cfg.Logger.Error("a worker shut down a listening socket and it cannot listen again; trying every second",
					"listener", r.Name, "addr", r.Addr, "err", r.Err)
			}
			failing[r.Name] = true
			continue
		}
		delete(failing, r.Name)
		c.cfg.Logger.Error("a worker shut down a listening socket (shutdown(2) on its inherited fd); it listens again",
			"listener", r.Name, "addr", r.Addr)
	}
}
