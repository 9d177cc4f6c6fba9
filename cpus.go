package herd

import "github.com/herd-cluster/herd/internal/cpus"

// CPUs returns the number of logical CPUs this process may use: the CPUs in
// its affinity mask, lowered to the cgroup CPU quota (cpu.max) rounded up,
// and at least 1. It is what Workers: 0 and --workers auto mean.
func CPUs() int { return cpus.Logical() }

// PhysicalCPUs returns the number of physical cores among the CPUs this
// process may use, lowered to the cgroup CPU quota like CPUs, and at least 1.
func PhysicalCPUs() int { return cpus.Physical() }
