//go:build !linux

package cpus

import "runtime"

// Logical returns the number of CPUs the process may use, runtime.NumCPU()
// where cgroups and affinity are not read.
func Logical() int { return max(runtime.NumCPU(), 1) }

// Physical returns Logical() where the CPU topology is not read.
func Physical() int { return Logical() }
