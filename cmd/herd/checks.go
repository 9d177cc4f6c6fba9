package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// The checks below validate one item of a string or list flag; the flag
// values call them from Set.

// checkListen validates a --listen item: [NAME=]ADDR with ADDR host:port,
// :port, udp:host:port or unix:/path[,mode=0660][,owner=U][,group=G].
func checkListen(s string) error {
	name, addr := splitListen(s)
	switch {
	case name != "" && strings.ContainsAny(name, " \t"):
		return fmt.Errorf("listener name %q contains a space", name)
	case addr == "":
		return errors.New("no address after the name")
	case strings.HasPrefix(addr, "unix:"):
		return checkUnixAddr(strings.TrimPrefix(addr, "unix:"))
	}
	_, port, err := net.SplitHostPort(strings.TrimPrefix(addr, "udp:"))
	if err != nil {
		return errors.New("address must be host:port, :port, udp:host:port or unix:/path")
	}
	if port == "" {
		return errors.New("address has no port")
	}
	return nil
}

// splitListen cuts "NAME=ADDR" into its name and address; an item with no
// name before '=' (such as unix:/p,mode=0600) is all address.
func splitListen(s string) (name, addr string) {
	if i := strings.IndexByte(s, '='); i > 0 && !strings.ContainsAny(s[:i], ":,/[") {
		return s[:i], s[i+1:]
	}
	return "", s
}

// checkUnixAddr validates the part of a unix listener after "unix:".
func checkUnixAddr(s string) error {
	path, opts, _ := strings.Cut(s, ",")
	if path == "" {
		return errors.New("unix address has no path")
	}
	for opt := range strings.SplitSeq(opts, ",") {
		if opt == "" {
			continue
		}
		k, val, _ := strings.Cut(opt, "=")
		switch {
		case k == "mode":
			if m, err := strconv.ParseUint(val, 8, 32); err != nil || m > 0o777 {
				return fmt.Errorf("unix socket mode %q is not octal like 0660", val)
			}
		case (k == "owner" || k == "group") && val != "":
		default:
			return fmt.Errorf("unix socket option %q is not mode=, owner= or group=", opt)
		}
	}
	return nil
}

// splitListenEnv cuts a comma-separated list of listeners, keeping the
// ",mode=…,owner=…,group=…" options with their unix address.
func splitListenEnv(s string) []string {
	var items []string
	for part := range strings.SplitSeq(s, ",") {
		isOpt := strings.HasPrefix(part, "mode=") || strings.HasPrefix(part, "owner=") ||
			strings.HasPrefix(part, "group=")
		if isOpt && len(items) > 0 {
			items[len(items)-1] += "," + part
			continue
		}
		items = append(items, part)
	}
	return items
}

// checkEnv validates a --env item, KEY=VALUE.
func checkEnv(s string) error {
	k, _, ok := strings.Cut(s, "=")
	switch {
	case !ok:
		return errors.New("must be KEY=VALUE")
	case k == "" || strings.ContainsAny(k, " \t\x00"):
		return fmt.Errorf("bad variable name %q", k)
	case strings.IndexByte(s, 0) >= 0:
		return errors.New("contains a NUL byte")
	}
	return nil
}

// splitEnvEnv cuts a comma-separated list of KEY=VALUE items; a piece with
// no '=' belongs to the value before it (A=x,y,B=z is A=x,y and B=z).
func splitEnvEnv(s string) []string {
	var items []string
	for part := range strings.SplitSeq(s, ",") {
		if !strings.Contains(part, "=") && len(items) > 0 {
			items[len(items)-1] += "," + part
			continue
		}
		items = append(items, part)
	}
	return items
}

// checkName refuses cluster names that cannot be part of a file name.
func checkName(s string) error {
	if strings.ContainsAny(s, "/\x00") || s == "." || s == ".." {
		return fmt.Errorf("%q cannot be used in a file name", s)
	}
	return nil
}

// checkDir requires an existing directory.
func checkDir(s string) error {
	if s == "" {
		return nil
	}
	fi, err := os.Stat(s)
	if err != nil {
		return fmt.Errorf("cannot use it: %w", err)
	}
	if !fi.IsDir() {
		return errors.New("not a directory")
	}
	return nil
}
