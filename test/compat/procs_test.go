package compat

import (
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/prometheus/procfs"
)

// proc identifies a process across pid reuse: its pid and start time.
type proc struct {
	PID   int
	Start uint64
	Comm  string
}

// procTable is one reading of /proc: every live process (zombies are left
// out: they hold nothing but their pid) and its parent.
type procTable struct {
	procs  map[int]proc
	parent map[int]int
}

// readProcs reads /proc.
func readProcs() procTable {
	tab := procTable{procs: map[int]proc{}, parent: map[int]int{}}
	all, err := procfs.AllProcs()
	if err != nil {
		return tab
	}
	for _, p := range all {
		st, err := p.Stat()
		if err != nil || st.State == "Z" {
			continue
		}
		tab.procs[p.PID] = proc{PID: p.PID, Start: st.Starttime, Comm: st.Comm}
		tab.parent[p.PID] = st.PPID
	}
	return tab
}

// children returns the live children of pid, in pid order.
func (tab procTable) children(pid int) []proc {
	var out []proc
	for p, pp := range tab.parent {
		if pp == pid {
			out = append(out, tab.procs[p])
		}
	}
	slices.SortFunc(out, func(a, b proc) int { return a.PID - b.PID })
	return out
}

// descendants returns pid's live descendants, not pid itself.
func (tab procTable) descendants(pid int) []proc {
	var out []proc
	queue := []int{pid}
	for len(queue) > 0 {
		for _, c := range tab.children(queue[0]) {
			out = append(out, c)
			queue = append(queue, c.PID)
		}
		queue = queue[1:]
	}
	return out
}

// alive reports whether p still runs (same pid, same start time).
func (tab procTable) alive(p proc) bool {
	q, ok := tab.procs[p.PID]
	return ok && q.Start == p.Start
}

// marked returns the live processes whose environment carries marker in
// markerVar: the processes of one cluster, wherever they were reparented.
func marked(marker string) []proc {
	tab := readProcs()
	want := markerVar + "=" + marker
	var out []proc
	for pid, p := range tab.procs {
		env, err := procfs.NewProc(pid)
		if err != nil {
			continue
		}
		vars, err := env.Environ()
		if err != nil {
			continue
		}
		for _, v := range vars {
			if v == want {
				out = append(out, p)
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b proc) int { return a.PID - b.PID })
	return out
}

// killMarked sends SIGKILL to every process of the cluster marked with
// marker, by pid: the cleanup of a test that failed and left some.
func killMarked(marker string) {
	for _, p := range marked(marker) {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
}

// names returns the processes as "pid(comm)" for messages.
func names(ps []proc) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strings.TrimSpace(p.Comm) + "(" + strconv.Itoa(p.PID) + ")"
	}
	return strings.Join(s, " ")
}
