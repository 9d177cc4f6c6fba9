package herd

// SetGroupTreesOnly makes the primaries started afterwards track their
// workers' trees by process group, never by cgroup.
func SetGroupTreesOnly(on bool) { groupTreesOnly.Store(on) }
