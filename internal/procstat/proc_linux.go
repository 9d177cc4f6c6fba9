package procstat

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/prometheus/procfs"
)

// userHZ is the unit of the times in /proc/<pid>/stat: USER_HZ, 100 on
// every architecture Linux exports it for (procfs assumes the same).
const userHZ = 100

// maxTreeProcs bounds a walk, should pid reuse ever make /proc look cyclic.
const maxTreeProcs = 1 << 16

// haveChildren reports whether the kernel has /proc/<pid>/task/<tid>/children
// (CONFIG_PROC_CHILDREN).
var haveChildren = sync.OnceValue(func() bool {
	_, err := os.Stat(filepath.Join(procfs.DefaultMountPoint, "thread-self", "children"))
	return err == nil
})

// stat is what one /proc/<pid>/stat tells.
type stat struct {
	pid, ppid, threads int
	start              uint64 // ticks since boot
	usage              Usage
}

// treeUsage is the usage of a tree and the start time of its root, which
// tells a reused pid apart.
type treeUsage struct {
	Usage
	start uint64
}

// reader reads /proc for one call. Without children files it scans every
// process once, on first use, and answers from that snapshot.
type reader struct {
	fs      procfs.FS
	scan    bool
	stats   map[int]stat  // scan mode: every live process
	byPPID  map[int][]int // scan mode: children by parent
	scanned bool
	buf     []byte // for readSmall
}

// newReader returns a reader that walks children files, or that scans
// /proc once when scan is true or the kernel has no children files.
func newReader(scan bool) (*reader, error) {
	fs, err := procfs.NewFS(procfs.DefaultMountPoint)
	if err != nil {
		return nil, fmt.Errorf("procstat: open /proc: %w", err)
	}
	return &reader{fs: fs, scan: scan || !haveChildren()}, nil
}

// trees returns the usage of the tree of every pid that runs.
func (r *reader) trees(pids []int) map[int]treeUsage {
	out := make(map[int]treeUsage, len(pids))
	for _, pid := range pids {
		if t, err := r.tree(pid); err == nil {
			out[pid] = t
		}
	}
	return out
}

// tree walks pid and its descendants breadth first.
func (r *reader) tree(pid int) (treeUsage, error) {
	root, ok := r.stat(pid)
	if !ok {
		return treeUsage{}, notFound(pid)
	}
	t := treeUsage{start: root.start}
	seen := map[int]struct{}{pid: {}}
	queue := []stat{root}
	for len(queue) > 0 && t.Procs < maxTreeProcs {
		s := queue[0]
		queue = queue[1:]
		t.RSS += s.usage.RSS
		t.CPUSeconds += s.usage.CPUSeconds
		t.Procs++
		for _, c := range r.children(s) {
			if _, dup := seen[c]; dup {
				continue
			}
			seen[c] = struct{}{}
			if cs, ok := r.stat(c); ok && cs.ppid == s.pid {
				queue = append(queue, cs)
			}
		}
	}
	return t, nil
}

// stat reads one live process; zombies and vanished pids are not.
func (r *reader) stat(pid int) (stat, bool) {
	if r.scan {
		r.scanAll()
		s, ok := r.stats[pid]
		return s, ok
	}
	p, err := r.fs.Proc(pid)
	if err != nil {
		return stat{}, false
	}
	return readStat(p)
}

func readStat(p procfs.Proc) (stat, bool) {
	ps, err := p.Stat()
	if err != nil || ps.State == "Z" || ps.State == "X" {
		return stat{}, false
	}
	waited := float64(max(ps.CUTime, 0)+max(ps.CSTime, 0)) / userHZ
	return stat{
		pid:     p.PID,
		ppid:    ps.PPID,
		threads: ps.NumThreads,
		start:   ps.Starttime,
		usage: Usage{
			RSS:        uint64(max(ps.ResidentMemory(), 0)),
			CPUSeconds: ps.CPUTime() + waited,
		},
	}, true
}

// children lists the children of s, from the children file of each of its
// threads, or from the scan.
func (r *reader) children(s stat) []int {
	if r.scan {
		return r.byPPID[s.pid]
	}
	task := filepath.Join(procfs.DefaultMountPoint, strconv.Itoa(s.pid), "task")
	tids := []string{strconv.Itoa(s.pid)}
	if s.threads > 1 {
		d, err := os.Open(task)
		if err != nil {
			return nil
		}
		tids, err = d.Readdirnames(-1)
		_ = d.Close()
		if err != nil {
			return nil
		}
	}
	var out []int
	for _, tid := range tids {
		b, err := readSmall(filepath.Join(task, tid, "children"), &r.buf)
		if err != nil {
			continue // the thread ended
		}
		for f := range strings.FieldsSeq(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// scanAll reads every /proc/<pid>/stat once.
func (r *reader) scanAll() {
	if r.scanned {
		return
	}
	r.scanned = true
	r.stats, r.byPPID = map[int]stat{}, map[int][]int{}
	procs, err := r.fs.AllProcs()
	if err != nil {
		return
	}
	for _, p := range procs {
		if s, ok := readStat(p); ok {
			r.stats[p.PID] = s
			r.byPPID[s.ppid] = append(r.byPPID[s.ppid], p.PID)
		}
	}
}

// readSmall reads a small /proc file into *buf with three system calls,
// where os.ReadFile makes six (it registers the file with the poller and
// stats it first); the children files are read for every thread of a tree.
func readSmall(path string, buf *[]byte) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	if *buf == nil {
		*buf = make([]byte, 4096)
	}
	n := 0
	for {
		m, err := syscall.Read(fd, (*buf)[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			return (*buf)[:n], nil
		}
		if n += m; n == len(*buf) {
			*buf = append(*buf, make([]byte, len(*buf))...)
		}
	}
}
