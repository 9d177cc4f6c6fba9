package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/herd-cluster/herd"
	"github.com/herd-cluster/herd/internal/sockets"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// The checks below validate one item of a string or list flag; the flag
// values call them from Set.

// checkListen validates a --listen item: [NAME=]ADDR with ADDR host:port,
// :port, udp:host:port or unix:/path[,mode=0660][,owner=U][,group=G], as
// the primary will parse it.
func checkListen(s string) error {
	if _, err := sockets.Parse(s); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), fmt.Sprintf("invalid listen address %q: ", s)))
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

// checkName refuses cluster names that cannot be part of a file name or
// a log line.
func checkName(s string) error {
	if s == "" {
		return nil // the default
	}
	if err := herd.CheckName(s); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "name "))
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

// checkPIDDir refuses an existing --pid-dir where another user could
// plant links; one that does not exist yet is created by the primary.
func checkPIDDir(s string) error {
	if s == "" {
		return nil
	}
	if _, err := os.Lstat(s); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return supervisor.CheckPIDDir(s)
}
