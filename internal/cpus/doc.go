// Package cpus counts the CPUs a process may use.
//
// Both counts start from the process's CPU affinity mask and are lowered to
// the CPU quota of its cgroup (cgroup v2 cpu.max, or v1 cpu.cfs_quota_us over
// cpu.cfs_period_us, the tightest along the path to the root), rounded up.
package cpus
