package sockets

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// defaultBacklog is the listen backlog when Bind is given 0. The kernel
// silently caps it at net.core.somaxconn.
const defaultBacklog = 2048

// endpoint is a resolved TCP or UDP address, ready for bind.
type endpoint struct {
	sotype int // unix.SOCK_STREAM or unix.SOCK_DGRAM
	domain int // unix.AF_INET or unix.AF_INET6
	sa     unix.Sockaddr
	v6only bool // IPV6_V6ONLY, for AF_INET6
}

// ipv6Supported reports whether the kernel can create IPv6 sockets.
var ipv6Supported = sync.OnceValue(func() bool {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	_ = unix.Close(fd)
	return true
})

// resolve turns a tcp or udp Spec address into an endpoint.
//
// An empty host means every address: a dual-stack IPv6 socket on [::]
// (IPV6_V6ONLY off, so IPv4 clients arrive as ::ffff:a.b.c.d) when the
// kernel has IPv6, else 0.0.0.0. An explicit IPv4 address, 0.0.0.0
// included, gives an IPv4-only socket; an explicit IPv6 address, [::]
// included, gives an IPv6-only socket, so "0.0.0.0:80" and "[::]:80" can be
// listed together. Names resolve as Go's net package does (IPv4 first).
func resolve(network, addr string) (endpoint, error) {
	var ip net.IP
	var port int
	var zone string
	ep := endpoint{sotype: unix.SOCK_STREAM}
	if network == "udp" {
		ep.sotype = unix.SOCK_DGRAM
		a, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return endpoint{}, err
		}
		ip, port, zone = a.IP, a.Port, a.Zone
	} else {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			return endpoint{}, err
		}
		ip, port, zone = a.IP, a.Port, a.Zone
	}
	switch ip4 := ip.To4(); {
	case ip == nil && ipv6Supported():
		ep.domain = unix.AF_INET6
		ep.sa = &unix.SockaddrInet6{Port: port}
	case ip == nil:
		ep.domain = unix.AF_INET
		ep.sa = &unix.SockaddrInet4{Port: port}
	case ip4 != nil:
		sa := &unix.SockaddrInet4{Port: port}
		copy(sa.Addr[:], ip4)
		ep.domain, ep.sa = unix.AF_INET, sa
	default:
		sa := &unix.SockaddrInet6{Port: port}
		copy(sa.Addr[:], ip.To16())
		id, err := zoneID(zone)
		if err != nil {
			return endpoint{}, err
		}
		sa.ZoneId = id
		ep.domain, ep.sa, ep.v6only = unix.AF_INET6, sa, true
	}
	return ep, nil
}

// zoneID turns an IPv6 zone (interface name or index) into an index.
func zoneID(zone string) (uint32, error) {
	if zone == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, fmt.Errorf("ipv6 zone %q: %w", zone, err)
	}
	return uint32(ifi.Index), nil
}

// port returns the port of an inet endpoint.
func (ep endpoint) port() int {
	switch sa := ep.sa.(type) {
	case *unix.SockaddrInet4:
		return sa.Port
	case *unix.SockaddrInet6:
		return sa.Port
	}
	return 0
}

// withPort returns a copy of ep bound to port.
func (ep endpoint) withPort(port int) endpoint {
	switch sa := ep.sa.(type) {
	case *unix.SockaddrInet4:
		c := *sa
		c.Port = port
		ep.sa = &c
	case *unix.SockaddrInet6:
		c := *sa
		c.Port = port
		ep.sa = &c
	}
	return ep
}

// openInet creates a blocking, close-on-exec socket for ep, bound and (for
// TCP) listening. A bind error is returned as the bare errno, so that
// BindError reads "listen tcp ADDR: address already in use".
func openInet(ep endpoint, reuseport, listen bool, backlog int) (int, error) {
	fd, err := unix.Socket(ep.domain, ep.sotype|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	if err := setupInet(fd, ep, reuseport); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	if err := unix.Bind(fd, ep.sa); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	if listen && ep.sotype == unix.SOCK_STREAM {
		if err := unix.Listen(fd, backlog); err != nil {
			_ = unix.Close(fd)
			return -1, fmt.Errorf("listen: %w", err)
		}
	}
	return fd, nil
}

// setupInet sets the socket options openInet needs before bind.
func setupInet(fd int, ep endpoint, reuseport bool) error {
	if ep.sotype == unix.SOCK_STREAM {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fmt.Errorf("setsockopt SO_REUSEADDR: %w", err)
		}
	}
	if ep.domain == unix.AF_INET6 {
		v := 0
		if ep.v6only {
			v = 1
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v); err != nil {
			return fmt.Errorf("setsockopt IPV6_V6ONLY: %w", err)
		}
	}
	if reuseport {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fmt.Errorf("setsockopt SO_REUSEPORT: %w", err)
		}
	}
	return nil
}

// boundPort returns the port a socket is bound to.
func boundPort(fd int) (int, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, fmt.Errorf("getsockname: %w", err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return sa.Port, nil
	case *unix.SockaddrInet6:
		return sa.Port, nil
	}
	return 0, errors.New("getsockname: not an inet socket")
}

// sockaddrString formats a socket address as "127.0.0.1:8080", "[::]:80"
// or a unix path.
func sockaddrString(sa unix.Sockaddr) string {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)).String()
	case *unix.SockaddrInet6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.ZoneId != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(sa.ZoneId), 10))
		}
		return netip.AddrPortFrom(a, uint16(sa.Port)).String()
	case *unix.SockaddrUnix:
		return sa.Name
	}
	return ""
}

// newFile wraps a blocking fd. os.NewFile leaves blocking descriptors out
// of the runtime poller, which is what the primary wants.
func newFile(fd int, name string) *os.File {
	return os.NewFile(uintptr(fd), name)
}

// fdOf returns f's descriptor without switching it to blocking mode or
// touching the poller (f never is in it).
func fdOf(f *os.File) int {
	return int(f.Fd())
}
