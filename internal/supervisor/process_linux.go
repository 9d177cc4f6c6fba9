package supervisor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ProcSpec says how to start one worker process.
type ProcSpec struct {
	Path string
	Args []string // Args[0] is the program name
	Env  []string
	Dir  string
	// Files become fds 3, 4, … of the worker.
	Files []*os.File
	// Stdout and Stderr are the write ends the worker's output goes to;
	// Start closes the primary's copies once the process has them.
	Stdout, Stderr *os.File
}

// Spawner starts processes from one OS thread that stays locked for its
// whole life. Linux sends a child's PR_SET_PDEATHSIG when the *thread* that
// forked it exits, and Go may end an idle thread; forking from a locked
// thread that never exits makes Pdeathsig mean "when the primary dies".
type Spawner struct {
	reqs chan func()
	done chan struct{}
}

// NewSpawner starts the spawning thread; Close ends it.
func NewSpawner() *Spawner {
	s := &Spawner{reqs: make(chan func()), done: make(chan struct{})}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with it
		defer close(s.done)
		for f := range s.reqs {
			f()
		}
	}()
	return s
}

// Close ends the spawning thread. Processes it started get their Pdeathsig
// then, so call it only once they are gone.
func (s *Spawner) Close() {
	close(s.reqs)
	<-s.done
}

// Start starts spec as a new process group, with SIGKILL as its parent-death
// signal.
func (s *Spawner) Start(spec ProcSpec) (*OSProcess, error) {
	cmd := &exec.Cmd{
		Path:       spec.Path,
		Args:       spec.Args,
		Env:        spec.Env,
		Dir:        spec.Dir,
		ExtraFiles: spec.Files,
		Stdout:     spec.Stdout,
		Stderr:     spec.Stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
		},
	}
	errc := make(chan error, 1)
	s.reqs <- func() { errc <- cmd.Start() }
	err := <-errc
	for _, f := range []*os.File{spec.Stdout, spec.Stderr} {
		if f != nil {
			f.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Path, err)
	}
	return &OSProcess{cmd: cmd}, nil
}

// OSProcess is a started worker process.
type OSProcess struct {
	cmd *exec.Cmd
	// drained, when set, is waited for (briefly) after the process exits, so
	// the last lines it wrote are read before the exit is reported.
	drained []<-chan struct{}
}

var _ Process = (*OSProcess)(nil)

// Pid returns the process id.
func (p *OSProcess) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *OSProcess) Signal(sig syscall.Signal) error {
	return unix.Kill(p.Pid(), sig)
}

// Kill sends SIGKILL to the process and to its process group, so that
// nothing it started outlives it.
func (p *OSProcess) Kill() error {
	err := unix.Kill(-p.Pid(), syscall.SIGKILL)
	if kerr := unix.Kill(p.Pid(), syscall.SIGKILL); err != nil && kerr == nil {
		err = nil
	}
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// drainWait bounds how long an exit report waits for the output pipes.
const drainWait = 250 * time.Millisecond

// Wait waits for the process and its output, and reports how it ended.
func (p *OSProcess) Wait() Exit {
	err := p.cmd.Wait()
	t := time.NewTimer(drainWait)
	defer t.Stop()
	for _, c := range p.drained {
		select {
		case <-c:
		case <-t.C:
		}
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return Exit{Code: -1, Signal: err.Error()}
	}
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return Exit{Code: -1, Signal: unix.SignalName(ws.Signal())}
	}
	return Exit{Code: p.cmd.ProcessState.ExitCode()}
}
