package supervisor

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/herd-cluster/herd/internal/proctree"
)

const (
	// drainWait bounds how long an exit report waits for the worker's
	// output pipes to reach EOF, so its last lines are read first. One
	// deadline for all pipes: a descendant that keeps them open delays the
	// report by this much at most.
	drainWait = 20 * time.Millisecond
	// treePoll is how often a tree whose main process ended is looked at
	// until nothing of it is left.
	treePoll = 20 * time.Millisecond
	// killWait bounds how long a killed tree is waited for: a process stuck
	// in the kernel does not hold up the primary forever.
	killWait = 5 * time.Second
)

// OSProcess is a started worker process.
type OSProcess struct {
	pid   int
	pidfd *os.File // nil when the kernel gives no pidfd; closed once reaped
	tree  *proctree.Tree
	// drained, when set, is waited for (briefly) after the process exits, so
	// the last lines it wrote are read before the exit is reported.
	drained []<-chan struct{}

	killOnce sync.Once
	killed   chan struct{} // closed by Kill
}

var _ Process = (*OSProcess)(nil)

// Pid returns the process id.
func (p *OSProcess) Pid() int { return p.pid }

// Signal sends sig to the main process. Through the pidfd, a signal sent
// after the process ended fails with ESRCH and never reaches a process that
// reused its pid.
func (p *OSProcess) Signal(sig syscall.Signal) error {
	if p.pidfd == nil {
		return unix.Kill(p.pid, sig)
	}
	rc, err := p.pidfd.SyscallConn()
	if err != nil {
		return syscall.ESRCH
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.PidfdSendSignal(int(fd), sig, nil, 0) }); err != nil {
		return syscall.ESRCH // the pidfd is closed: the process was reaped
	}
	return serr
}

// Kill sends SIGKILL to the process and to the rest of its tree, so that
// nothing it started outlives it.
func (p *OSProcess) Kill() error {
	p.killOnce.Do(func() { close(p.killed) })
	err := p.Signal(syscall.SIGKILL)
	if p.tree != nil {
		p.tree.Kill()
	} else if gerr := unix.Kill(-p.pid, syscall.SIGKILL); err != nil && gerr == nil {
		err = nil
	}
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// Wait waits for the main process to exit, reaps it and reports how it
// ended. The output pipes are drained by their readers on their own; Wait
// gives them drainWait at most, since a descendant may hold them open.
func (p *OSProcess) Wait() Exit {
	exit := p.reap()
	if p.tree != nil {
		p.tree.MainExited()
	}
	t := time.NewTimer(drainWait)
	defer t.Stop()
	for _, c := range p.drained {
		select {
		case <-c:
		case <-t.C:
			return exit
		}
	}
	return exit
}

// reap waits for the exit through the pidfd, in Go's netpoller, and reaps
// the process with waitid(P_PIDFD): no thread is parked per worker, and
// no other child's exit can be taken by mistake.
func (p *OSProcess) reap() Exit {
	if p.pidfd == nil {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(p.pid, &ws, 0, nil)
			if !errors.Is(err, unix.EINTR) {
				return exitOf(ws, err)
			}
		}
	}
	defer p.pidfd.Close()
	var exit Exit
	rc, err := p.pidfd.SyscallConn()
	if err != nil {
		return Exit{Code: -1, Signal: err.Error()}
	}
	err = rc.Read(func(fd uintptr) bool {
		var done bool
		exit, done = waitPidfd(int(fd), unix.WNOHANG)
		return done
	})
	if err != nil {
		// The pidfd could not join the netpoller: wait blocking.
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetNonblock(int(fd), false)
			exit, _ = waitPidfd(int(fd), 0)
		})
	}
	return exit
}

// waitPidfd reaps the process of pidfd when it has exited.
func waitPidfd(pidfd, flags int) (Exit, bool) {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PIDFD, pidfd, &info, unix.WEXITED|flags, nil)
	for errors.Is(err, unix.EINTR) {
		err = unix.Waitid(unix.P_PIDFD, pidfd, &info, unix.WEXITED|flags, nil)
	}
	switch {
	case errors.Is(err, unix.EAGAIN):
		return Exit{}, false
	case err != nil:
		// ECHILD: something else reaped it.
		return Exit{Code: -1, Signal: err.Error()}, true
	}
	pid, code, status := sigchld(&info)
	switch {
	case pid == 0:
		return Exit{}, false // WNOHANG: still running
	case code == cldExited:
		return Exit{Code: int(status)}, true
	}
	return Exit{Code: -1, Signal: unix.SignalName(syscall.Signal(status))}, true
}

// cldExited is si_code for a child that exited (CLD_EXITED), rather than
// one killed by a signal.
const cldExited = 1

// sigchld reads si_pid, si_code and si_status of a SIGCHLD siginfo, which
// x/sys/unix does not name: the union after the three int32 header fields
// starts at the next pointer-aligned offset.
func sigchld(info *unix.Siginfo) (pid, code, status int32) {
	b := (*[unsafe.Sizeof(unix.Siginfo{})]byte)(unsafe.Pointer(info))
	off := (12 + unsafe.Sizeof(uintptr(0)) - 1) &^ (unsafe.Sizeof(uintptr(0)) - 1)
	pid = *(*int32)(unsafe.Pointer(&b[off]))
	status = *(*int32)(unsafe.Pointer(&b[off+8]))
	return pid, info.Code, status
}

func exitOf(ws unix.WaitStatus, err error) Exit {
	switch {
	case err != nil:
		return Exit{Code: -1, Signal: err.Error()}
	case ws.Signaled():
		return Exit{Code: -1, Signal: unix.SignalName(ws.Signal())}
	}
	return Exit{Code: ws.ExitStatus()}
}

// EndTree sends sig to what is left of the worker's tree now that its main
// process has exited, and returns a channel closed once nothing is left
// (or killWait after a Kill that did not end it all). Kill ends the rest at
// once.
func (p *OSProcess) EndTree(sig syscall.Signal) <-chan struct{} {
	done := make(chan struct{})
	tr := p.tree
	if tr == nil || tr.Poll() {
		if tr != nil {
			tr.Release()
		}
		close(done)
		return done
	}
	tr.Signal(sig)
	go func() {
		defer close(done)
		defer tr.Release()
		tick := time.NewTicker(treePoll)
		defer tick.Stop()
		var giveUp <-chan time.Time
		killed := p.killed
		for !tr.Poll() {
			select {
			case <-tick.C:
			case <-killed:
				killed = nil
				giveUp = time.After(killWait)
			case <-giveUp:
				return
			}
		}
	}()
	return done
}
