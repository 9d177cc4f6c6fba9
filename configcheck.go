package herd

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/sockets"
)

// WorkersLimit is the most worker slots one primary supervises: the
// highest MaxWorkers that Validate accepts.
const WorkersLimit = 4096

// Bounds of the Config fields that size memory, files or syscalls.
const (
	maxListeners  = 128       // sockets bound (each slot's, with reuseport)
	maxLogLines   = 1_000_000 // lines kept per slot
	maxLogFiles   = 1000      // rotated files kept
	maxBacklog    = math.MaxInt32
	maxClusterIdx = math.MaxInt32
	maxSignal     = 64 // SIGRTMAX on Linux
	maxUnixPath   = 107
)

// validateLimits reports the first field of c (after defaults) that is
// out of its bounds, or that conflicts with another, as one line.
func (c Config) validateLimits() error {
	switch {
	case c.MaxWorkers > WorkersLimit:
		return fmt.Errorf("max-workers %d is above the limit of %d", c.MaxWorkers, WorkersLimit)
	case len(c.Listen) > maxListeners:
		return fmt.Errorf("listen: %d addresses, the limit is %d", len(c.Listen), maxListeners)
	case c.MaxSurge > c.MaxWorkers:
		return fmt.Errorf("max-surge %d is above max-workers %d", c.MaxSurge, c.MaxWorkers)
	case c.Backlog > maxBacklog:
		return fmt.Errorf("backlog %d is above %d", c.Backlog, maxBacklog)
	case c.LogLines < 0 || c.LogLines > maxLogLines:
		return fmt.Errorf("log-lines %d is not between 0 and %d", c.LogLines, maxLogLines)
	case c.LogMaxFiles < 0 || c.LogMaxFiles > maxLogFiles:
		return fmt.Errorf("log-max-files %d is not between 0 and %d", c.LogMaxFiles, maxLogFiles)
	case c.LogMaxSize < 0:
		return fmt.Errorf("log-max-size %d is negative", c.LogMaxSize)
	case c.Ready == ReadyDelay && c.ReadyDelay >= c.ReadyTimeout:
		return fmt.Errorf("ready-delay %s must be below ready-timeout %s: no worker could become ready", c.ReadyDelay, c.ReadyTimeout)
	case c.MaxRequestsJitter > math.MaxUint64-c.MaxRequests:
		return fmt.Errorf("max-requests %d plus max-requests-jitter %d overflows", c.MaxRequests, c.MaxRequestsJitter)
	case c.ClusterBase > maxClusterIdx || c.ClusterTotal > maxClusterIdx:
		return fmt.Errorf("cluster-base and cluster-total must be at most %d", maxClusterIdx)
	case c.StopSignal < 1 || c.StopSignal > maxSignal:
		return fmt.Errorf("stop-signal %d is not a signal", int(c.StopSignal))
	case math.IsNaN(c.ScaleUpCPU) || math.IsInf(c.ScaleUpCPU, 0):
		return fmt.Errorf("scale-up-cpu is not a number")
	}
	for _, check := range []func() error{c.checkName, c.checkCommand, c.checkAddrs} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// checkName refuses names that cannot be part of a file name or a log
// line, and names that make the default control socket's path too long
// for a unix socket address.
func (c Config) checkName() error {
	if err := CheckName(c.Name); err != nil {
		return err
	}
	if c.Control == "" {
		if p := control.DefaultSocket(c.Name); len(p) > maxUnixPath {
			return fmt.Errorf("name %.20q…: the control socket %s would be %d bytes long, the limit is %d: give a shorter name (--name) or a control socket path (--control)", c.Name, p, len(p), maxUnixPath)
		}
	} else if c.Control != control.Off && len(c.Control) > maxUnixPath {
		return fmt.Errorf("control: %q is %d bytes long, the limit for a unix socket is %d", c.Control, len(c.Control), maxUnixPath)
	}
	return nil
}

// CheckName reports why name cannot name a cluster: it is empty, "." or
// "..", longer than 200 bytes, or holds a '/' or a control character.
func CheckName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("name %q cannot be used in a file name", name)
	case len(name) > 200:
		return fmt.Errorf("name %.20q… is %d bytes long, the limit is 200", name, len(name))
	case strings.IndexByte(name, '/') >= 0:
		return fmt.Errorf("name %q contains '/'", name)
	case strings.IndexFunc(name, isControl) >= 0:
		return fmt.Errorf("name %q contains a control character", name)
	}
	return nil
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }

// checkCommand refuses a command, environment entries or a directory that
// execve could not take.
func (c Config) checkCommand() error {
	if len(c.Command) > 0 && c.Command[0] == "" {
		return errors.New("command: empty program name")
	}
	for _, a := range c.Command {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("command: argument %q contains a NUL byte", a)
		}
	}
	for _, kv := range c.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.IndexByte(kv, 0) >= 0 {
			return fmt.Errorf("env: %q is not KEY=VALUE", kv)
		}
	}
	if strings.IndexByte(c.Dir, 0) >= 0 {
		return errors.New("dir contains a NUL byte")
	}
	return nil
}

// checkAddrs parses Listen and refuses two sockets that could not both be
// bound: the same unix path, or the same TCP or UDP port on the same host
// or on a wildcard host, among Listen and the control, ECV and metrics
// addresses. Port 0 never conflicts.
func (c Config) checkAddrs() error {
	specs, err := sockets.ParseAll(c.Listen)
	if err != nil {
		return err
	}
	type bound struct{ what, network, host, port string }
	var seen []bound
	add := func(what, network, addr string) error {
		b := bound{what: what, network: network}
		if network == "unix" {
			b.host = addr
		} else {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if n, err := strconv.ParseUint(port, 10, 16); err != nil {
				return fmt.Errorf("%s: port %q is not a number from 0 to 65535", what, port)
			} else if n == 0 {
				return nil
			}
			b.host, b.port = host, port
		}
		for _, o := range seen {
			if o.network == b.network && o.port == b.port && hostsOverlap(o.host, b.host) {
				return fmt.Errorf("%s and %s cannot both bind %s %s", o.what, b.what, network, addr)
			}
		}
		seen = append(seen, b)
		return nil
	}
	for i, sp := range specs {
		if err := add(fmt.Sprintf("listen %q", c.Listen[i]), sp.Network, sp.Addr); err != nil {
			return err
		}
	}
	for _, a := range []struct{ what, addr string }{
		{"control-addr", c.ControlAddr}, {"ecv-addr", c.ECVAddr}, {"metrics-addr", c.MetricsAddr},
	} {
		if a.addr == "" {
			continue
		}
		addr, err := control.NormalizeAddr(a.addr)
		if err != nil {
			return fmt.Errorf("%s: %w", a.what, err)
		}
		if err := add(a.what+" "+a.addr, "tcp", addr); err != nil {
			return err
		}
	}
	return nil
}

// hostsOverlap reports whether sockets on hosts a and b and one port
// surely cannot both be bound: the same host, an empty host or "::" (both
// bind every IPv4 and IPv6 address) beside any other, or 0.0.0.0 beside an
// IPv4 address. Host names are not resolved: the bind decides for them.
func hostsOverlap(a, b string) bool {
	if a == b {
		return true
	}
	for _, p := range [][2]string{{a, b}, {b, a}} {
		w, o := p[0], p[1]
		if !wildcard(w) {
			continue
		}
		if wip := net.ParseIP(w); w == "" || wip.To4() == nil {
			return true
		}
		if oip := net.ParseIP(o); oip != nil && oip.To4() != nil {
			return true
		}
	}
	return false
}

// wildcard reports whether host binds every address: empty, 0.0.0.0 or ::.
func wildcard(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// allInterfaces reports whether a control-addr value listens on every
// interface rather than on one address.
func allInterfaces(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" { // a bare :port is loopback
		return false
	}
	return wildcard(host) || host == "*"
}
