package herd

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/herd-cluster/herd/internal/envvar"
	"github.com/herd-cluster/herd/internal/proctree"
)

// ExecShim replaces this process with the worker command when it was started
// as the exec shim of a Command worker, and returns nil at once otherwise.
//
// The primary cannot set LISTEN_PID to a child's pid before the child
// exists, so it starts the command through a shim that sets LISTEN_PID to
// its own pid, which the command keeps across exec. The shim is /bin/sh
// where the system has it; elsewhere the primary starts this executable
// again with HERD_SHIM=1 and the command as arguments, and this function
// is the shim. It also runs the primary's keeper process. Programs that set
// Config.Command call ExecShim (or New) first thing in main.
func ExecShim() error {
	if proctree.IsKeeper() {
		// Like the shim, the keeper is a process of herd's own that never
		// returns to the program: once its primary is gone and the
		// primary's leftovers are ended, it exits.
		if err := proctree.RunKeeper(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			unix.Exit(1)
		}
		unix.Exit(0)
	}
	if os.Getenv(envvar.Shim) == "" {
		return nil
	}
	os.Unsetenv(envvar.Shim)
	if len(os.Args) < 2 {
		return errors.New("herd: exec shim started without a command")
	}
	// The primary set our parent-death signal; if it died before that took
	// hold, give up rather than run an orphan.
	if ppid, _ := strconv.Atoi(os.Getenv(envvar.PrimaryPID)); ppid != 0 && os.Getppid() != ppid {
		return errors.New("herd: exec shim: the primary is gone")
	}
	pid := strconv.Itoa(os.Getpid())
	if os.Getenv(envvar.ListenFDs) != "" {
		os.Setenv(envvar.ListenPID, pid)
	}
	if os.Getenv(envvar.WatchdogUSec) != "" {
		os.Setenv(envvar.WatchdogPID, pid)
	}
	path, err := exec.LookPath(os.Args[1])
	if err != nil {
		return fmt.Errorf("herd: %w", err)
	}
	if err := unix.Exec(path, os.Args[1:], os.Environ()); err != nil {
		return fmt.Errorf("herd: exec %s: %w", path, err)
	}
	return nil
}
