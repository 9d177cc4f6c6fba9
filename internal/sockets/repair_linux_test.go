package sockets

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// shutDown does what a worker that calls shutdown(2) on its copy of a
// listening socket does: it duplicates f's fd, as a worker inherits it,
// and shuts the copy down for reading.
func shutDown(t *testing.T, fd int) {
	t.Helper()
	dup, err := unix.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dup)
	if err := unix.Shutdown(dup, unix.SHUT_RD); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func TestRepairShutDownListener(t *testing.T) {
	for _, tc := range []struct {
		name    string
		balance Balance
		addr    func(t *testing.T) string
	}{
		{"fixed-port", BalanceShared, func(t *testing.T) string { return freePort(t) }},
		{"port-0", BalanceShared, func(*testing.T) string { return "127.0.0.1:0" }},
		{"reuseport", BalanceReusePort, func(*testing.T) string { return "127.0.0.1:0" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustBind(t, tc.balance, 2, "web="+tc.addr(t))
			if got := s.Repair(); len(got) != 0 {
				t.Fatalf("Repair() of listening sockets = %+v; want none", got)
			}
			files, _ := s.Files(1)
			addr := fmt.Sprintf("127.0.0.1:%d", s.Port())
			shutDown(t, fdOf(files[0]))
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				if tc.balance != BalanceReusePort { // the other slot's socket may take it
					t.Fatalf("dial %s after shutdown: connected; want refused", addr)
				}
			}
			got := s.Repair()
			if len(got) != 1 || got[0].Err != nil || got[0].Name != "web" || !strings.HasSuffix(got[0].Addr, addr[strings.LastIndex(addr, ":"):]) {
				t.Fatalf("Repair() = %+v; want web on %s listening again", got, addr)
			}
			if v, _ := unix.GetsockoptInt(fdOf(files[0]), unix.SOL_SOCKET, unix.SO_ACCEPTCONN); v != 1 {
				t.Fatalf("SO_ACCEPTCONN after Repair = %d; want 1", v)
			}
			if tc.balance != BalanceReusePort { // the kernel picks which socket of a group gets a connection
				// The same socket listens again, in every process holding it.
				roundTrip(t, "tcp", addr, fileListener(t, files[0]))
			}
			if got := s.Repair(); len(got) != 0 {
				t.Errorf("Repair() after the repair = %+v; want none", got)
			}
		})
	}
}

func TestRepairLeavesUnixAndUDP(t *testing.T) {
	dir := t.TempDir()
	s := mustBind(t, BalanceShared, 1, "unix:"+dir+"/s.sock", "udp:127.0.0.1:0")
	files, _ := s.Files(0)
	for _, f := range files {
		// A UDP socket reports ENOTCONN, but the kernel marks it shut
		// down all the same.
		_ = unix.Shutdown(fdOf(f), unix.SHUT_RD)
	}
	if got := s.Repair(); len(got) != 0 {
		t.Errorf("Repair() = %+v; want unix and UDP sockets left alone", got)
	}
}

// freePort returns a loopback address whose port was free a moment ago.
func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestWatchShutdowns(t *testing.T) {
	s := mustBind(t, BalanceReusePort, 2, "127.0.0.1:0")
	s.Repair()
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	if err := s.WatchShutdowns(ep); err != nil {
		t.Fatal(err)
	}
	if err := s.Resize(3); err != nil { // a socket added later is watched too
		t.Fatal(err)
	}
	events := make([]unix.EpollEvent, 4)
	wait := func(ms int) int {
		t.Helper()
		for {
			n, err := unix.EpollWait(ep, events, ms)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	// Connections do not wake the watch: it costs nothing per request.
	for range 3 {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port()))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if n := wait(100); n != 0 {
		t.Fatalf("epoll reported %d events for connections; want none", n)
	}
	files, _ := s.Files(2)
	shutDown(t, fdOf(files[0]))
	if n := wait(5000); n != 1 || events[0].Events&unix.EPOLLHUP == 0 {
		t.Fatalf("after a shutdown, epoll reported %d events (%#x); want one EPOLLHUP", n, events[0].Events)
	}
	if got := s.Repair(); len(got) != 1 || got[0].Err != nil {
		t.Fatalf("Repair() = %+v; want the socket listening again", got)
	}
	if n := wait(0); n != 0 {
		t.Errorf("after the repair, epoll reported %d more events; want none (edge-triggered)", n)
	}
}
