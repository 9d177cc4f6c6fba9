package proctree

import (
	"errors"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"
)

// rescanEvery is how often the reaper looks for zombies without a SIGCHLD:
// the children lists it reads are not guaranteed complete while processes
// come and go, so one may be missed until the next look.
const rescanEvery = 10 * time.Second

// Reaper reaps the zombie children of the primary that nothing else waits
// for, and kills the processes that carry the marks of a worker whose tree
// is gone. It runs when the primary is PID 1 or a child subreaper, where
// orphans come back to it.
//
// The primary may be a Go program that starts children of its own with
// os/exec; a blanket wait(-1) would steal their exit status. So the reaper
// reaps only a zombie for which this process holds no other pidfd: Go's
// os/exec holds one for every child it starts until Wait has reaped it, and
// the supervisor holds one for each worker. Children started by other
// means (syscall.ForkExec, cgo) that are waited for by pid are reaped here
// too, and their own wait then fails with ECHILD.
type Reaper struct {
	trees *Trees
	quit  chan struct{}
	done  chan struct{}
	sigs  chan os.Signal
}

func startReaper(t *Trees) *Reaper {
	r := &Reaper{trees: t, quit: make(chan struct{}), done: make(chan struct{}), sigs: make(chan os.Signal, 1)}
	signal.Notify(r.sigs, unix.SIGCHLD)
	go r.run()
	return r
}

func (r *Reaper) run() {
	defer close(r.done)
	tick := time.NewTicker(rescanEvery)
	defer tick.Stop()
	for {
		r.scan()
		select {
		case <-r.quit:
			return
		case <-r.sigs: // several SIGCHLD may arrive as one: scan them all
		case <-tick.C:
		}
	}
}

func (r *Reaper) stop() {
	signal.Stop(r.sigs)
	close(r.quit)
	<-r.done
}

// scan reaps the zombies among the primary's children and kills the live
// ones whose worker is gone.
func (r *Reaper) scan() {
	kids, err := children()
	if err != nil {
		return
	}
	self := os.Getpid()
	for _, pid := range kids {
		if r.trees.isMain(pid) {
			continue // its supervisor reaps it
		}
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		if st.State == "Z" {
			reap(pid)
			continue
		}
		if m, ok := readMarks(pid); ok && m.Primary == self && r.trees.owner(m) == nil {
			// An orphan of a worker whose tree has been ended.
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
}

// reap waits for the zombie child pid unless another pidfd of it is held.
func reap(pid int) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			// No pidfds: os/exec waits by pid too and cannot be told
			// apart, so leave it.
			return
		}
		return // reaped meanwhile
	}
	defer unix.Close(fd)
	if pidfdHeld(pid, fd) {
		return
	}
	var info unix.Siginfo
	_ = unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED|unix.WNOHANG, nil)
}
