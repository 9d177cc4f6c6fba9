package sockets

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestBindSharedTCP(t *testing.T) {
	s := mustBind(t, BalanceShared, 3, "web=127.0.0.1:0", "127.0.0.1:0")
	f0, names := s.Files(0)
	f2, names2 := s.Files(2)
	if len(f0) != 2 || strings.Join(names, ":") != "web:listen1" || strings.Join(names2, ":") != "web:listen1" {
		t.Fatalf("Files = %v %v, want 2 files named web, listen1", f0, names)
	}
	for i := range f0 {
		if f0[i] != f2[i] {
			t.Errorf("shared: slot 0 and 2 got different files for %s", names[i])
		}
	}
	checkBlockingCloexec(t, f0)

	port := s.Port()
	if port == 0 {
		t.Fatal("Port() = 0")
	}
	addrs := s.Addrs()
	if want := fmt.Sprintf("web=tcp://127.0.0.1:%d", port); addrs[0] != want {
		t.Errorf("Addrs()[0] = %q, want %q", addrs[0], want)
	}
	if !strings.HasPrefix(addrs[1], "listen1=tcp://127.0.0.1:") || strings.HasSuffix(addrs[1], ":0") {
		t.Errorf("Addrs()[1] = %q", addrs[1])
	}
	roundTrip(t, "tcp", fmt.Sprintf("127.0.0.1:%d", port), fileListener(t, f0[0]))
}

func TestBindWildcardAndLocalhost(t *testing.T) {
	s := mustBind(t, BalanceShared, 1, ":0", "localhost:0")
	addrs := s.Addrs()
	if !strings.HasPrefix(addrs[0], "listen0=tcp://[::]:") && !strings.HasPrefix(addrs[0], "listen0=tcp://0.0.0.0:") {
		t.Errorf("Addrs()[0] = %q, want the wildcard address", addrs[0])
	}
	if !strings.HasPrefix(addrs[1], "listen1=tcp://127.0.0.1:") {
		t.Errorf("Addrs()[1] = %q, want localhost resolved to 127.0.0.1", addrs[1])
	}
	files, _ := s.Files(0)
	// IPv4 clients reach the dual-stack socket too.
	roundTrip(t, "tcp", fmt.Sprintf("127.0.0.1:%d", s.Port()), fileListener(t, files[0]))
}

func TestBindIPv6(t *testing.T) {
	specs, _ := ParseAll([]string{"[::1]:0"})
	s, err := Bind(specs, BalanceReusePort, 2, 0)
	if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.EAFNOSUPPORT) {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	files, _ := s.Files(1)
	v6only, err := unix.GetsockoptInt(int(files[0].Fd()), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
	if err != nil || v6only != 1 {
		t.Errorf("IPV6_V6ONLY = %d, %v; want 1 for an explicit IPv6 address", v6only, err)
	}
	if want := fmt.Sprintf("listen0=tcp://[::1]:%d", s.Port()); s.Addrs()[0] != want {
		t.Errorf("Addrs() = %q, want %q", s.Addrs(), want)
	}
}

func TestBindReusePortTCP(t *testing.T) {
	const slots, conns = 4, 200
	s := mustBind(t, BalanceReusePort, slots, "127.0.0.1:0")
	port := s.Port()
	seen := map[uint64]bool{}
	var lns []net.Listener
	for i := range slots {
		files, names := s.Files(i)
		if len(files) != 1 || names[0] != "listen0" {
			t.Fatalf("Files(%d) = %v, %v", i, files, names)
		}
		checkBlockingCloexec(t, files)
		seen[inode(t, files[0])] = true
		if p, err := boundPort(int(files[0].Fd())); err != nil || p != port {
			t.Errorf("slot %d bound to port %d (%v), want %d", i, p, err, port)
		}
		lns = append(lns, fileListener(t, files[0]))
	}
	if len(seen) != slots {
		t.Fatalf("%d distinct sockets for %d slots", len(seen), slots)
	}
	if files, _ := s.Files(slots); files != nil {
		t.Errorf("Files(%d) = %v, want nil past the slot count", slots, files)
	}

	counts := acceptAll(t, lns, fmt.Sprintf("127.0.0.1:%d", port), conns)
	for i, n := range counts {
		if n == 0 {
			t.Errorf("slot %d accepted no connection of %d (counts %v)", i, conns, counts)
		}
	}
}

// acceptAll dials addr n times and returns how many connections each
// listener accepted. It closes the listeners.
func acceptAll(t *testing.T, lns []net.Listener, addr string, n int) []int {
	t.Helper()
	accepted := make(chan int, n)
	var wg sync.WaitGroup
	for i, ln := range lns {
		wg.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_ = c.Close()
				accepted <- i
			}
		})
	}
	defer wg.Wait()
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Errorf("dial %s: %v", addr, err)
			return nil
		}
		_ = c.Close()
	}
	counts := make([]int, len(lns))
	for range n {
		counts[<-accepted]++
	}
	return counts
}

func TestBindAddrInUse(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	checkInUse(t, "tcp", held.Addr().String())
}

func TestBindAddrInUseByReusePort(t *testing.T) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}}
	held, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	checkInUse(t, "tcp", held.Addr().String())

	heldUDP, err := lc.ListenPacket(context.Background(), "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer heldUDP.Close()
	checkInUse(t, "udp", heldUDP.LocalAddr().String())
}

// checkInUse binds network:addr in both modes and wants EADDRINUSE.
func checkInUse(t *testing.T, network, addr string) {
	t.Helper()
	for _, b := range []Balance{BalanceShared, BalanceReusePort} {
		specs, err := ParseAll([]string{network + ":" + addr})
		if err != nil {
			t.Fatal(err)
		}
		s, err := Bind(specs, b, 2, 0)
		if err == nil {
			s.Close()
			t.Errorf("%s: Bind(%s %s) succeeded on a port in use", b, network, addr)
			continue
		}
		var be *BindError
		if !errors.Is(err, syscall.EADDRINUSE) || !errors.As(err, &be) {
			t.Errorf("%s: error %v (%T), want a *BindError with EADDRINUSE", b, err, err)
		}
		if want := "listen " + network + " " + addr + ": address already in use"; err.Error() != want {
			t.Errorf("%s: error %q, want %q", b, err, want)
		}
	}
}

func TestBindFailureClosesEverything(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	path := t.TempDir() + "/s.sock"
	for _, b := range []Balance{BalanceShared, BalanceReusePort} {
		before := openFDs(t)
		specs, _ := ParseAll([]string{"unix:" + path, "127.0.0.1:0", held.Addr().String()})
		if _, err := Bind(specs, b, 3, 0); !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("%s: Bind error %v, want EADDRINUSE", b, err)
		}
		if after := openFDs(t); after != before {
			t.Errorf("%s: %d fds open before Bind, %d after the failed Bind", b, before, after)
		}
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Errorf("%s: unix socket file left behind: %v", b, err)
		}
	}
}

func TestBindInvalid(t *testing.T) {
	ok := []Spec{{Network: "tcp", Addr: "127.0.0.1:0"}}
	for _, tt := range []struct {
		specs          []Spec
		balance        Balance
		slots, backlog int
		want           string
	}{
		{ok, "roundrobin", 1, 0, "invalid balance"},
		{ok, BalanceShared, 0, 0, "invalid slot count 0"},
		{ok, BalanceShared, 1, -1, "invalid backlog -1"},
		{[]Spec{{Network: "sctp", Addr: ":1"}}, BalanceShared, 1, 0, `listen sctp :1: unknown network "sctp"`},
		{[]Spec{{Network: "tcp", Addr: "no-such-host.invalid:80"}}, BalanceShared, 1, 0, "listen tcp no-such-host.invalid:80: "},
	} {
		if _, err := Bind(tt.specs, tt.balance, tt.slots, tt.backlog); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Bind(%v, %q, %d, %d) error %v, want %q", tt.specs, tt.balance, tt.slots, tt.backlog, err, tt.want)
		}
	}
}

func TestBindUDP(t *testing.T) {
	s := mustBind(t, BalanceReusePort, 3, "dns=udp:127.0.0.1:0")
	if p := s.Port(); p != 0 {
		t.Errorf("Port() = %d with no TCP listener, want 0", p)
	}
	files, names := s.Files(2)
	if names[0] != "dns" {
		t.Errorf("names %v", names)
	}
	checkBlockingCloexec(t, files)
	if typ, err := unix.GetsockoptInt(int(files[0].Fd()), unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_DGRAM {
		t.Errorf("SO_TYPE = %d, %v; want SOCK_DGRAM", typ, err)
	}
	addr := strings.TrimPrefix(s.Addrs()[0], "dns=udp://")
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addrs() = %q", s.Addrs())
	}
	for i := range 3 {
		f, _ := s.Files(i)
		if p, _ := boundPort(int(f[0].Fd())); fmt.Sprint("127.0.0.1:", p) != addr {
			t.Errorf("slot %d on port %d, want %s", i, p, addr)
		}
	}

	// With one slot the kernel has one socket to deliver to.
	one := mustBind(t, BalanceShared, 1, "udp:127.0.0.1:0")
	files, _ = one.Files(0)
	pc, err := net.FilePacketConn(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, err := net.Dial("udp", strings.TrimPrefix(one.Addrs()[0], "listen0=udp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, _, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Errorf("ReadFrom = %q, %v; want ping", buf[:n], err)
	}
}
