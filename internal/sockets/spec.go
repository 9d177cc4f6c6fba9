// Package sockets parses --listen values, binds the listening sockets once in
// the primary and hands them to workers the way systemd socket activation
// does (fds from 3, with LISTEN_FDS and LISTEN_FDNAMES).
//
// Sockets are created with raw syscalls in blocking mode and are never given
// to Go's network poller: their open file description is shared with every
// worker, and a worker in any language expects a blocking socket, as systemd
// would hand it over.
package sockets

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// Spec is one parsed --listen value.
type Spec struct {
	// Name is the listener's name, from "NAME=ADDR"; ParseAll gives unnamed
	// listeners "listen<i>", i being their position. Workers see it in
	// LISTEN_FDNAMES.
	Name string
	// Network is "tcp", "udp" or "unix".
	Network string
	// Addr is "host:port" (host may be empty, a name or an address; IPv6
	// addresses in brackets) for tcp and udp, or the socket path for unix
	// (a leading "@" names a Linux abstract socket).
	Addr string
	// Mode is the permission bits given to a unix socket file after bind;
	// 0 leaves them as created.
	Mode os.FileMode
	// Owner and Group are the user and group (name or numeric id) a unix
	// socket file is given after bind; "" leaves them as created.
	Owner, Group string
}

// Balance says how connections are spread over workers.
type Balance string

const (
	// BalanceShared gives every worker the same listening socket; the
	// kernel wakes whichever worker is waiting in accept.
	BalanceShared Balance = "shared"
	// BalanceReusePort gives every worker slot its own SO_REUSEPORT socket
	// on the same address (TCP and UDP); the kernel hashes each connection
	// to one of them. Unix sockets stay shared.
	BalanceReusePort Balance = "reuseport"
)

// ParseBalance checks a --balance value.
func ParseBalance(s string) (Balance, error) {
	switch b := Balance(s); b {
	case BalanceShared, BalanceReusePort:
		return b, nil
	}
	return "", fmt.Errorf("invalid balance %q: want %q or %q", s, BalanceShared, BalanceReusePort)
}

// maxUnixPath is the longest path that fits sockaddr_un.sun_path with its
// terminating NUL.
const maxUnixPath = 107

// addrForms is the help text appended to errors about the address syntax.
const addrForms = "want [NAME=]HOST:PORT, :PORT, tcp:HOST:PORT, udp:HOST:PORT or unix:PATH[,mode=0660][,owner=USER][,group=GROUP]"

// Parse parses one --listen value, "[NAME=]ADDR", where ADDR is host:port,
// :port, tcp:host:port, udp:host:port or unix:/path with optional
// ",mode=0660", ",owner=USER" and ",group=GROUP". Host names are resolved
// later, by Bind. Name is left empty when the value has none.
func Parse(s string) (Spec, error) {
	sp, err := parse(s)
	if err != nil {
		return Spec{}, fmt.Errorf("invalid listen address %q: %w", s, err)
	}
	return sp, nil
}

func parse(s string) (Spec, error) {
	var sp Spec
	rest := s
	// A name comes before the first "=", and never contains ":" or "/",
	// which every address form does before any "=" of its options.
	if i := strings.IndexByte(s, '='); i >= 0 && !strings.ContainsAny(s[:i], ":/[") {
		sp.Name, rest = s[:i], s[i+1:]
		if err := checkName(sp.Name); err != nil {
			return Spec{}, err
		}
	}
	if rest == "" {
		return Spec{}, errors.New("empty address; " + addrForms)
	}
	var err error
	switch {
	case strings.HasPrefix(rest, "unix:"):
		sp.Network = "unix"
		err = parseUnix(&sp, rest[len("unix:"):])
	case strings.HasPrefix(rest, "tcp:"):
		sp.Network = "tcp"
		sp.Addr, err = parseInet(rest[len("tcp:"):])
	case strings.HasPrefix(rest, "udp:"):
		sp.Network = "udp"
		sp.Addr, err = parseInet(rest[len("udp:"):])
	default:
		sp.Network = "tcp"
		sp.Addr, err = parseInet(rest)
	}
	if err != nil {
		return Spec{}, err
	}
	return sp, nil
}

// checkName returns an error unless name can be a listener name: 1 to 255
// printable ASCII characters other than space, ":" (the LISTEN_FDNAMES
// separator) and "=".
func checkName(name string) error {
	if name == "" {
		return errors.New("empty listener name before \"=\"")
	}
	if len(name) > 255 {
		return fmt.Errorf("listener name %.20q... is longer than 255 characters", name)
	}
	for _, c := range []byte(name) {
		if c <= ' ' || c > '~' || c == ':' || c == '=' {
			return fmt.Errorf("listener name %q: character %q not allowed (want printable ASCII without space, ':' or '=')", name, c)
		}
	}
	return nil
}

// parseInet checks "host:port" and returns it unchanged.
func parseInet(addr string) (string, error) {
	if addr == "" {
		return "", errors.New("missing host:port; " + addrForms)
	}
	if strings.Contains(addr, ",") {
		return "", errors.New("options (\",...\") are only allowed on unix sockets")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return "", fmt.Errorf("%s; %s", ae.Err, addrForms)
		}
		return "", fmt.Errorf("%w; %s", err, addrForms)
	}
	if port == "" {
		return "", errors.New("missing port after \":\"")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("invalid port %q: want a number from 0 to 65535", port)
	}
	if strings.ContainsAny(host, " \t/") {
		return "", fmt.Errorf("invalid host %q", host)
	}
	return addr, nil
}

// parseUnix parses "PATH[,opt=value...]" into sp.
func parseUnix(sp *Spec, rest string) error {
	path, opts, _ := strings.Cut(rest, ",")
	if path == "" {
		return errors.New("missing socket path: want unix:/path/to/socket")
	}
	if len(path) > maxUnixPath {
		return fmt.Errorf("unix socket path is %d bytes long, the limit is %d", len(path), maxUnixPath)
	}
	sp.Addr = path
	if opts == "" {
		if strings.HasSuffix(rest, ",") {
			return errors.New("empty option after \",\"")
		}
		return nil
	}
	if path[0] == '@' {
		return errors.New("mode, owner and group do not apply to abstract (@) unix sockets")
	}
	seen := map[string]bool{}
	for _, opt := range strings.Split(opts, ",") {
		k, v, ok := strings.Cut(opt, "=")
		if !ok || v == "" {
			return fmt.Errorf("invalid option %q: want mode=OCTAL, owner=USER or group=GROUP", opt)
		}
		if seen[k] {
			return fmt.Errorf("option %q given twice", k)
		}
		seen[k] = true
		switch k {
		case "mode":
			m, err := strconv.ParseUint(v, 8, 32)
			if err != nil || m == 0 || m > 0o777 {
				return fmt.Errorf("invalid mode %q: want octal permission bits like 0660", v)
			}
			sp.Mode = os.FileMode(m)
		case "owner":
			sp.Owner = v
		case "group":
			sp.Group = v
		default:
			return fmt.Errorf("unknown option %q: want mode, owner or group", k)
		}
	}
	return nil
}

// ParseAll parses every --listen value, names unnamed listeners "listen<i>"
// (i is the value's position, from 0) and rejects duplicate names.
func ParseAll(ss []string) ([]Spec, error) {
	specs := make([]Spec, 0, len(ss))
	byName := map[string]int{}
	for i, s := range ss {
		sp, err := Parse(s)
		if err != nil {
			return nil, err
		}
		if sp.Name == "" {
			sp.Name = defaultName(i)
		}
		if j, dup := byName[sp.Name]; dup {
			return nil, fmt.Errorf("duplicate listener name %q: listen addresses %q and %q", sp.Name, ss[j], s)
		}
		byName[sp.Name] = i
		specs = append(specs, sp)
	}
	return specs, nil
}

// defaultName is the name of the unnamed listener at position i.
func defaultName(i int) string {
	return "listen" + strconv.Itoa(i)
}

// BindError reports a socket that could not be created, bound or listened on.
type BindError struct {
	// Network is "tcp", "udp" or "unix".
	Network string
	// Addr is the address as written in the Spec.
	Addr string
	// Err is the cause, often a syscall.Errno such as EADDRINUSE.
	Err error
}

// Error returns "listen NETWORK ADDR: CAUSE".
func (e *BindError) Error() string {
	return fmt.Sprintf("listen %s %s: %v", e.Network, e.Addr, e.Err)
}

// Unwrap returns the cause, so errors.Is(err, syscall.EADDRINUSE) works.
func (e *BindError) Unwrap() error { return e.Err }
