package cpus

import (
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

const (
	cgroupRoot  = "/sys/fs/cgroup"
	sysfsCPUDir = "/sys/devices/system/cpu"
)

// Logical returns the number of CPUs in the process's affinity mask
// (sched_getaffinity), lowered to its cgroup CPU quota rounded up, and at
// least 1.
func Logical() int {
	n := runtime.NumCPU()
	if cpus, err := affinity(); err == nil {
		n = len(cpus)
	}
	return limit(n)
}

// Physical returns the number of distinct physical cores (pairs of physical
// package id and core id from sysfs topology) among the CPUs in the
// process's affinity mask, lowered to its cgroup CPU quota like Logical, and
// at least 1. When the topology cannot be read it returns Logical().
func Physical() int {
	cpus, err := affinity()
	if err != nil {
		return Logical()
	}
	n, err := countCores(sysfsCPUDir, cpus)
	if err != nil || n == 0 {
		return Logical()
	}
	return limit(n)
}

// affinity lists the CPUs in the process's affinity mask.
func affinity() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, err
	}
	var cpus []int
	for i := range len(set) * 64 {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}

// limit lowers n to the cgroup CPU quota and returns at least 1.
func limit(n int) int {
	if q, ok := quota(); ok && q < n {
		n = q
	}
	return max(n, 1)
}

// quota returns this process's cgroup CPU quota rounded up.
func quota() (int, bool) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	return cgroupQuota(cgroupRoot, f)
}
