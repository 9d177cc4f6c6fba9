package notify

import "github.com/prometheus/procfs"

// maxAncestorSteps bounds the walk up the process tree in Ancestor.
const maxAncestorSteps = 32

// Ancestor walks the parent chain of pid, reading each parent pid from
// /proc/<pid>/stat, and returns the first pid for which known returns true,
// starting with pid itself and following at most 32 parents. It lets a
// worker's child process notify on the worker's behalf. It returns false
// when no such pid is found or the chain cannot be read (for example because
// a process in it has exited). Pids can be reused, so the answer is only as
// current as /proc was during the walk.
func Ancestor(pid int, known func(pid int) bool) (int, bool) {
	fs, err := procfs.NewFS(procfs.DefaultMountPoint)
	if err != nil {
		return 0, false
	}
	for step := 0; step <= maxAncestorSteps && pid > 0; step++ {
		if known(pid) {
			return pid, true
		}
		p, err := fs.Proc(pid)
		if err != nil {
			return 0, false
		}
		stat, err := p.Stat()
		if err != nil {
			return 0, false
		}
		pid = stat.PPID
	}
	return 0, false
}
