//go:build !linux

package procstat

import (
	"errors"
	"fmt"
)

type treeUsage struct {
	Usage
	start uint64
}

type reader struct{}

func newReader(bool) (*reader, error) {
	return nil, fmt.Errorf("procstat: %w", errors.ErrUnsupported)
}

func (*reader) tree(pid int) (treeUsage, error) { return treeUsage{}, notFound(pid) }

func (*reader) trees([]int) map[int]treeUsage { return nil }
