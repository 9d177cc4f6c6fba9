package ipc

import (
	"fmt"
	"os"
	"syscall"
)

// Pair returns the two ends of a connected AF_UNIX stream socket pair, both
// close-on-exec and blocking. The primary keeps primary and gives it to
// Serve; worker goes to the worker process as an inherited fd (for example
// in exec.Cmd.ExtraFiles, which clears close-on-exec in the child) whose
// number is set in HERD_IPC. The primary must close its copy of worker once
// the child has started, so that the worker's death ends the Conn.
func Pair() (primary, worker *os.File, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("ipc: socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "herd-ipc-primary"), os.NewFile(uintptr(fds[1]), "herd-ipc-worker"), nil
}
