//go:build !linux

package ipc

import (
	"errors"
	"fmt"
	"os"
)

// Pair is only implemented on Linux; elsewhere it returns an error matching
// errors.ErrUnsupported.
func Pair() (primary, worker *os.File, err error) {
	return nil, nil, fmt.Errorf("ipc: socket pair: %w", errors.ErrUnsupported)
}
