// Package procstat measures the memory and CPU time of a worker's whole
// process tree (the worker and every live descendant) from /proc.
//
// Tree finds the descendants of one pid through the children files
// (/proc/<pid>/task/<tid>/children), which costs a few reads per process of
// the tree, whatever else runs on the host. Sampler.SampleAll, which
// measures many trees, reads every /proc/<pid>/stat once per call and
// links parents to children from that snapshot: its cost grows with the
// host's processes rather than with the threads of the workers, and does
// not multiply by the number of workers. Without children files
// (CONFIG_PROC_CHILDREN off), Tree scans too. Figures are only as current
// as /proc was during the walk: a process born or reaped meanwhile may be
// missed.
package procstat

import (
	"errors"
	"fmt"
)

// ErrNotFound is returned (wrapped) for a pid that does not run: it never
// existed, it was reaped, or it is a zombie waiting to be.
var ErrNotFound = errors.New("process not found")

// Usage is the resource use of a process tree.
type Usage struct {
	// RSS is the resident set size in bytes, summed over the live
	// processes of the tree; pages they share are counted once per process.
	RSS uint64
	// CPUSeconds is the user and system CPU time of the live processes of
	// the tree, plus that of the children they have waited for, so that it
	// does not drop when a short-lived child is reaped.
	CPUSeconds float64
	// Procs is the number of live processes in the tree, the root included.
	Procs int
	// CPUPercent is 100 * ΔCPUSeconds / Δwall since the previous sample of
	// the same root pid by the same Sampler; it is 0 from Tree and on the
	// first sample of a pid.
	CPUPercent float64
}

// Tree returns the usage of pid and all its live descendants. It fails
// with ErrNotFound when pid does not run.
func Tree(pid int) (Usage, error) {
	r, err := newReader(false)
	if err != nil {
		return Usage{}, err
	}
	t, err := r.tree(pid)
	if err != nil {
		return Usage{}, err
	}
	return t.Usage, nil
}

// notFound is the error for a pid that does not run.
func notFound(pid int) error {
	return fmt.Errorf("procstat: pid %d: %w", pid, ErrNotFound)
}
