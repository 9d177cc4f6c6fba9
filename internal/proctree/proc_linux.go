package proctree

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/herd-cluster/herd/internal/envvar"
)

// Marks are what a worker's processes carry in their environment, inherited
// from the worker: which primary started the worker, and which worker.
type Marks struct {
	Name      string // HERD_NAME
	Primary   int    // HERD_PRIMARY_PID
	Slot, Gen int    // HERD_WORKER_ID, HERD_GENERATION
}

// readMarks returns the marks in pid's environment; ok is false when it
// carries no HERD_PRIMARY_PID or cannot be read (another user's process,
// or one that is gone).
func readMarks(pid int) (m Marks, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return Marks{}, false
	}
	for kv := range bytes.SplitSeq(b, []byte{0}) {
		k, v, _ := bytes.Cut(kv, []byte{'='})
		switch string(k) {
		case envvar.Name:
			m.Name = string(v)
		case envvar.PrimaryPID:
			m.Primary, _ = strconv.Atoi(string(v))
		case envvar.WorkerID:
			m.Slot, _ = strconv.Atoi(string(v))
		case envvar.Generation:
			m.Gen, _ = strconv.Atoi(string(v))
		}
	}
	return m, m.Primary > 0
}

// procStat is what /proc/<pid>/stat says of a process that the package
// needs.
type procStat struct {
	State string // "Z" for a zombie
	PPID  int
	Start uint64 // clock ticks after boot
}

func readStat(pid int) (procStat, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return procStat{}, err
	}
	st, err := p.Stat()
	if err != nil {
		return procStat{}, err
	}
	return procStat{State: st.State, PPID: st.PPID, Start: st.Starttime}, nil
}

// children returns the pids of this process's children. A child belongs to
// the thread that forked it (or, for an orphan handed to a subreaper, to
// any of its threads), so every thread's list is read. Without the
// children files (CONFIG_PROC_CHILDREN off) it scans every process.
func children() ([]int, error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", t.Name(), "children"))
		if errors.Is(err, os.ErrNotExist) && len(pids) == 0 {
			return childrenByScan()
		}
		for f := range strings.FieldsSeq(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids, nil
}

func childrenByScan() ([]int, error) {
	self := os.Getpid()
	all, err := allPIDs()
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, pid := range all {
		if st, err := readStat(pid); err == nil && st.PPID == self {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// allPIDs lists every process /proc shows.
func allPIDs() ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// pidfdHeld reports whether a descriptor of this process other than own is
// a pidfd of pid. Go's os/exec holds one for every child it starts until
// Wait has reaped it, so a child with a pidfd is one some code here will
// wait for: reaping it would steal its exit status.
func pidfdHeld(pid, own int) bool {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return true // cannot tell: leave it
	}
	want := "Pid:\t" + strconv.Itoa(pid) + "\n"
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd == own {
			continue
		}
		if link, err := os.Readlink("/proc/self/fd/" + e.Name()); err != nil || link != "anon_inode:[pidfd]" {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err == nil && strings.Contains(string(info), want) {
			return true
		}
	}
	return false
}

// primaryGone reports whether the primary m.Primary that marked a process
// started at start no longer runs: its pid is free, or now belongs to a
// process younger than the marked one.
func primaryGone(m Marks, start uint64) bool {
	st, err := readStat(m.Primary)
	if err != nil {
		return true
	}
	return st.Start > start
}

// killPID sends sig to pid through a pidfd when it can, so a pid reused
// meanwhile is never hit; it ignores a process already gone.
func killPID(pid int, sig unix.Signal) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			_ = unix.Kill(pid, sig)
		}
		return
	}
	_ = unix.PidfdSendSignal(fd, sig, nil, 0)
	unix.Close(fd)
}
