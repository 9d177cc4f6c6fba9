package main

import (
	"github.com/herd-cluster/herd"

	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
)

// Exit statuses of herd, as documented in herd run --help.
const (
	exitOK        = 0
	exitFailure   = 1
	exitUsage     = 2
	exitAddrInUse = 98
	exitExec      = 127
)

// usageError is bad input: a flag, argument, environment variable or config
// file herd cannot use. herd exits 2 without starting anything.
type usageError struct{ err error }

// Error returns the underlying message.
func (e *usageError) Error() string { return e.err.Error() }

// Unwrap returns the underlying error.
func (e *usageError) Unwrap() error { return e.err }

// usageErrorf returns a *usageError formatted like fmt.Errorf.
func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// execError is a worker command that cannot be executed. herd exits 127.
type execError struct{ err error }

// Error returns the underlying message.
func (e *execError) Error() string { return e.err.Error() }

// Unwrap returns the underlying error.
func (e *execError) Unwrap() error { return e.err }

// exitCode maps the error of a command line to herd's exit status.
func exitCode(err error) int {
	var ue *usageError
	var ee *execError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ee):
		return exitExec
	case errors.Is(err, syscall.EADDRINUSE):
		return exitAddrInUse
	}
	return exitFailure
}

// errorLine formats err as the one line herd prints: "herd: <err>",
// without doubling a "herd: " the library already put in.
func errorLine(err error) string {
	msg := strings.TrimPrefix(err.Error(), "herd: ")
	msg = strings.ReplaceAll(strings.TrimSpace(msg), "\n", "; ")
	return "herd: " + msg
}

// printError writes errorLine(err) to w, followed, when no worker ever
// became ready, by the last lines the workers wrote to stderr.
func printError(w io.Writer, err error) {
	fmt.Fprintln(w, errorLine(err))
	var nr *herd.NoWorkerReadyError
	if errors.As(err, &nr) && len(nr.Output) > 0 {
		fmt.Fprintln(w, "herd: the workers' last lines on stderr:")
		for _, l := range nr.Output {
			fmt.Fprintln(w, "  "+l)
		}
	}
}
