package supervisor

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/herd-cluster/herd/internal/proctree"
)

// ProcSpec says how to start one worker process.
type ProcSpec struct {
	Path string
	Args []string // Args[0] is the program name
	Env  []string
	Dir  string
	// Files become fds 3, 4, … of the worker.
	Files []*os.File
	// Stdout and Stderr are the write ends the worker's output goes to
	// (nil: /dev/null); Start closes the primary's copies once the process
	// has them.
	Stdout, Stderr *os.File
	// Tree, if set, follows the worker's descendants; the worker starts in
	// its cgroup when it has one.
	Tree *proctree.Tree
}

// reserveFDs is how many descriptors the spawner keeps open in reserve:
// enough for one start (the output pipes, the IPC channel, the pidfd, the
// fork's own error pipe) when every other descriptor is taken, for
// instance by a flood of connections to the control API.
const reserveFDs = 16

// spawnThreads is how many processes a Spawner starts at once. A start
// waits until the child has exec'd; a few threads overlap those waits when
// many workers start together.
const spawnThreads = 4

// Spawner starts processes from spawnThreads OS threads that stay locked
// for their whole life. Linux sends a child's PR_SET_PDEATHSIG when the
// *thread* that forked it exits, and Go may end an idle thread; forking
// from locked threads that never exit makes Pdeathsig mean "when the
// primary dies".
type Spawner struct {
	reqs    chan func()
	done    chan struct{}
	devNull *os.File // every worker's stdin

	mu      sync.Mutex
	reserve []*os.File
}

// NewSpawner starts the spawning threads and takes the descriptor
// reserve; Close ends them.
func NewSpawner() (*Spawner, error) {
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	s := &Spawner{reqs: make(chan func()), done: make(chan struct{}), devNull: devNull}
	s.retakeReserve()
	var threads sync.WaitGroup
	for range spawnThreads {
		threads.Go(func() {
			runtime.LockOSThread() // never unlocked: the thread ends with it
			for f := range s.reqs {
				f()
			}
		})
	}
	go func() { threads.Wait(); close(s.done) }()
	return s, nil
}

// Close ends the spawning threads. Processes they started get their
// Pdeathsig then, so call it only once they are gone.
func (s *Spawner) Close() {
	close(s.reqs)
	<-s.done
	s.devNull.Close()
	s.mu.Lock()
	closeAll(s.reserve...)
	s.reserve = nil
	s.mu.Unlock()
}

// releaseReserve closes the reserved descriptors so a start can use them;
// it reports whether there were any.
func (s *Spawner) releaseReserve() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	closeAll(s.reserve...)
	n := len(s.reserve)
	s.reserve = nil
	return n > 0
}

// retakeReserve reopens the reserve, as far as descriptors are free.
func (s *Spawner) retakeReserve() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.reserve) < reserveFDs {
		f, err := os.Open(os.DevNull)
		if err != nil {
			return
		}
		s.reserve = append(s.reserve, f)
	}
}

// forkExec starts the process from the spawning thread.
func (s *Spawner) forkExec(spec ProcSpec, attr *syscall.ProcAttr) (pid int, err error) {
	done := make(chan struct{})
	s.reqs <- func() {
		defer close(done)
		pid, err = syscall.ForkExec(spec.Path, spec.Args, attr)
	}
	<-done
	runtime.KeepAlive(spec)
	return pid, err
}

// cgroupRefused reports whether a start into a cgroup failed for the
// cgroup's sake: a kernel without clone3 or CLONE_INTO_CGROUP, no right to
// move a process there, or a cgroup that cannot hold processes.
func cgroupRefused(err error) bool {
	for _, e := range []error{syscall.ENOSYS, syscall.E2BIG, syscall.EINVAL, syscall.EACCES, syscall.EPERM, syscall.EBUSY, syscall.EOPNOTSUPP} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Start starts spec as a new process group, with SIGKILL as its parent-death
// signal, and a pidfd to learn its exit from.
func (s *Spawner) Start(spec ProcSpec) (*OSProcess, error) {
	defer func() {
		for _, f := range []*os.File{spec.Stdout, spec.Stderr} {
			if f != nil && f != os.Stdout && f != os.Stderr {
				f.Close()
			}
		}
	}()
	files := []uintptr{s.devNull.Fd(), s.devNull.Fd(), s.devNull.Fd()}
	if spec.Stdout != nil {
		files[1] = spec.Stdout.Fd()
	}
	if spec.Stderr != nil {
		files[2] = spec.Stderr.Fd()
	}
	for _, f := range spec.Files {
		files = append(files, f.Fd()) // Fd makes it blocking, as workers expect
	}
	pidfd := -1
	sys := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, PidFD: &pidfd}
	if fd := spec.Tree.CgroupFD(); fd >= 0 {
		sys.UseCgroupFD, sys.CgroupFD = true, fd
	}
	attr := &syscall.ProcAttr{Dir: spec.Dir, Env: spec.Env, Files: files, Sys: sys}
	pid, err := s.forkExec(spec, attr)
	if err != nil && sys.UseCgroupFD && cgroupRefused(err) {
		// The kernel would not start it in its cgroup (clone3 refused,
		// or the cgroup takes no process): run it tracked by its
		// process group rather than not at all.
		spec.Tree.DropCgroup(err)
		sys.UseCgroupFD, sys.CgroupFD = false, 0
		pid, err = s.forkExec(spec, attr)
	}
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Path, err)
	}
	p := &OSProcess{pid: pid, tree: spec.Tree, killed: make(chan struct{})}
	if pidfd >= 0 {
		// Non-blocking, the pidfd joins Go's netpoller: waiting for the
		// exit parks no thread.
		if err := unix.SetNonblock(pidfd, true); err != nil {
			unix.Close(pidfd)
		} else {
			p.pidfd = os.NewFile(uintptr(pidfd), fmt.Sprintf("pidfd %d", pid))
		}
	}
	if spec.Tree != nil {
		spec.Tree.Started(pid)
	}
	return p, nil
}
