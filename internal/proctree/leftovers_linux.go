package proctree

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// leftoverWait bounds how long EndLeftovers waits for what it killed to be
// gone.
const leftoverWait = 5 * time.Second

// Leftovers is what EndLeftovers found and ended.
type Leftovers struct {
	// Primaries are the pids of the dead primaries whose processes or
	// cgroups were left.
	Primaries []int
	// PIDs are the processes killed.
	PIDs []int
	// Cgroups are the cgroup directories removed.
	Cgroups []string
}

// Found reports whether anything was left.
func (l Leftovers) Found() bool { return len(l.PIDs) > 0 || len(l.Cgroups) > 0 }

// EndLeftovers ends what primaries of cluster name that died without
// stopping their workers left behind: their cgroups beside this process's,
// and every process that carries a dead primary's marks with this name. A
// descendant of a worker that survived its primary keeps the listening
// sockets open, so a new primary calls this before it binds them. It waits
// until the processes it killed are gone.
func EndLeftovers(name string) (Leftovers, error) {
	var l Leftovers
	var errs []error
	if own, err := ownCgroupDir(); err == nil {
		errs = append(errs, l.endCgroups(own, name))
	}
	errs = append(errs, l.endMarked(func(m Marks, st procStat) bool {
		return m.Name == name && primaryGone(m, st.Start)
	}))
	slices.Sort(l.Primaries)
	l.Primaries = slices.Compact(l.Primaries)
	return l, errors.Join(errs...)
}

// endCgroups removes the cgroups of dead primaries of name under own: of
// this pid namespace, where their pid can be looked up.
func (l *Leftovers) endCgroups(own, name string) error {
	ents, err := os.ReadDir(own)
	if err != nil {
		return nil
	}
	self, err := selfID()
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		stem, id, ok := parseCgroupName(e.Name())
		if !ok || !e.IsDir() || stem != cgroupStem(name) || id.pidns != self.pidns {
			continue
		}
		if st, err := readStat(id.pid); err == nil && st.Start == id.start {
			continue // its primary runs
		}
		dir := filepath.Join(own, e.Name())
		l.PIDs = append(l.PIDs, cgroupPIDs(dir)...)
		l.Primaries = append(l.Primaries, id.pid)
		l.Cgroups = append(l.Cgroups, dir)
		errs = append(errs, removeTree(dir, leftoverWait))
	}
	return errors.Join(errs...)
}

// cgroupPIDs lists the processes in dir and below.
func cgroupPIDs(dir string) []int {
	pids := (&cgroup{dir: dir}).procs()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			pids = append(pids, cgroupPIDs(filepath.Join(dir, e.Name()))...)
		}
	}
	return pids
}

// endMarked kills the processes whose marks and stat satisfy left, and
// waits for them to be gone.
func (l *Leftovers) endMarked(left func(Marks, procStat) bool) error {
	all, err := allPIDs()
	if err != nil {
		return err
	}
	self := os.Getpid()
	ns, err := pidNS(self)
	if err != nil {
		return err
	}
	var pidfds []int
	defer func() {
		for _, fd := range pidfds {
			unix.Close(fd)
		}
	}()
	for _, pid := range all {
		if pid == self {
			continue
		}
		m, ok := readMarks(pid)
		if !ok {
			continue
		}
		// Pin the process first, then check it: a pid reused between the
		// check and the signal is never hit.
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue
		}
		// A marked process of another pid namespace (a container) names
		// its primary by a pid that means nothing here.
		st, err := readStat(pid)
		m2, ok2 := readMarks(pid)
		pns, nsErr := pidNS(pid)
		if err != nil || nsErr != nil || pns != ns || !ok2 || m2 != m || st.State == "Z" || !left(m, st) {
			unix.Close(fd)
			continue
		}
		if unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0) != nil {
			unix.Close(fd)
			continue
		}
		pidfds = append(pidfds, fd)
		l.PIDs = append(l.PIDs, pid)
		l.Primaries = append(l.Primaries, m.Primary)
	}
	return waitGone(pidfds, leftoverWait)
}

// waitGone waits until every process of pidfds has exited (its sockets are
// then closed, even if it is not yet reaped).
func waitGone(pidfds []int, limit time.Duration) error {
	if len(pidfds) == 0 {
		return nil
	}
	fds := make([]unix.PollFd, len(pidfds))
	for i, fd := range pidfds {
		fds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	}
	deadline := time.Now().Add(limit)
	for len(fds) > 0 {
		left := time.Until(deadline)
		if left <= 0 {
			return errors.New("processes left by a dead primary did not end")
		}
		if _, err := unix.Poll(fds, int(left.Milliseconds())+1); err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		fds = slices.DeleteFunc(fds, func(p unix.PollFd) bool { return p.Revents != 0 })
	}
	return nil
}
