package sockets

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// dialNoWait starts a TCP handshake with addr and returns the socket
// without waiting for it to complete: a connection to a full queue does
// not complete.
func dialNoWait(t *testing.T, port int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	err = unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
	if err != nil && err != unix.EINPROGRESS {
		t.Fatal(err)
	}
}

// somaxconn is the kernel's cap on a listen backlog.
func somaxconn(t *testing.T) int {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitQueue polls q until cond holds, for up to 5s.
func waitQueue(t *testing.T, s *Set, cond func([]ListenerQueue) bool) []ListenerQueue {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		qs := s.Queues(nil, true)
		if cond(qs) {
			return qs
		}
		if time.Now().After(deadline) {
			t.Fatalf("queues never reached the condition; last %+v", qs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestQueuesShared(t *testing.T) {
	specs, _ := ParseAll([]string{"web=127.0.0.1:0", "udp:127.0.0.1:0", "unix:" + t.TempDir() + "/s"})
	s, err := Bind(specs, BalanceShared, 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	qs := s.Queues(nil, true)
	if len(qs) != 1 || qs[0].Name != "web" || len(qs[0].Sockets) != 1 || qs[0].Sockets[0].Slot != -1 {
		t.Fatalf("Queues = %+v, want one shared TCP listener named web", qs)
	}
	if q := qs[0]; q.Depth() != 0 || q.Limit() != 4 || q.Drops != 0 {
		t.Fatalf("idle queue: depth %d limit %d drops %d; want 0, 4, 0", q.Depth(), q.Limit(), q.Drops)
	}
	for range 3 {
		dialNoWait(t, s.Port())
	}
	waitQueue(t, s, func(qs []ListenerQueue) bool { return qs[0].Depth() == 3 })
	// The queue holds limit+1; the connections past it are dropped.
	for range 4 {
		dialNoWait(t, s.Port())
	}
	qs = waitQueue(t, s, func(qs []ListenerQueue) bool { return qs[0].Drops > 0 })
	if d := qs[0].Depth(); d != 5 {
		t.Errorf("full queue: depth %d, want 5 (limit 4, plus one)", d)
	}
}

func TestQueuesReusePort(t *testing.T) {
	s := mustBind(t, BalanceReusePort, 3, "127.0.0.1:0")
	files, _ := s.Files(1)
	// Only slot 1's socket gets connections.
	if err := s.Steer([]bool{false, true, false}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		dialNoWait(t, s.Port())
	}
	qs := waitQueue(t, s, func(qs []ListenerQueue) bool { return qs[0].Depth() == 2 })
	got := ""
	for _, sq := range qs[0].Sockets {
		got += fmt.Sprintf("%d:%d/%d ", sq.Slot, sq.Depth, sq.Limit)
	}
	limit := min(defaultBacklog, somaxconn(t))
	if want := fmt.Sprintf("0:0/%[1]d 1:2/%[1]d 2:0/%[1]d ", limit); got != want {
		t.Errorf("sockets %q, want %q", got, want)
	}
	l, err := net.FileListener(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 2 {
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if d := s.Queues(nil, false)[0].Depth(); d != 0 {
		t.Errorf("after accepting both: depth %d, want 0", d)
	}
}
