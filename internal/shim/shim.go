// Package shim starts a command worker through the exec shim: a process
// that sets LISTEN_PID (and WATCHDOG_PID) to its own pid, which only it can
// know, and then replaces itself with the command, which keeps that pid.
//
// The shim is /bin/sh running a four-line script where the system has a
// shell: dash or bash start in well under a millisecond. Without one (a
// container image with no shell), it is the primary's own executable run
// with HERD_SHIM=1, whose main calls herd.ExecShim first; a Go program that
// links herd, Prometheus and etcd runs a few milliseconds of package
// initialisation before it gets there (BENCHMARKS.md, "The exec shim").
package shim

import (
	"os"

	"github.com/herd-cluster/herd/internal/envvar"
)

// Shell is the shell the exec shim runs in when it is an executable file.
const Shell = "/bin/sh"

// script is the shim. $0 is the command and "$@" its arguments, so no
// argument is ever parsed by the shell. It gives up, as the Go shim does,
// when its parent is no longer the primary: the primary died before the
// parent-death signal it set took hold.
const script = `[ "$PPID" = "$` + envvar.PrimaryPID + `" ] || { echo "herd: exec shim: the primary is gone" >&2; exit 127; }
[ -z "$` + envvar.ListenFDs + `" ] || export ` + envvar.ListenPID + `=$$
[ -z "$` + envvar.WatchdogUSec + `" ] || export ` + envvar.WatchdogPID + `=$$
exec "$0" "$@"`

// Command returns how to start cmd through the exec shim: the
// program to run, its arguments (the first being its name), and what to
// add to its environment. self is the primary's own executable, used when
// the system has no shell; it must call herd.ExecShim first in main.
func Command(cmd []string, self string) (path string, args, env []string) {
	return command(Shell, cmd, self)
}

// command is Command with the shell to use when it is usable.
func command(shell string, cmd []string, self string) (path string, args, env []string) {
	if usable(shell) {
		return shell, append([]string{"herd-shim", "-c", script}, cmd...), nil
	}
	return self, append([]string{self}, cmd...), []string{envvar.Shim + "=1"}
}

// usable reports whether path is a regular file someone may execute.
func usable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
