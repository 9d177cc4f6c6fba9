package supervisor

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/herd-cluster/herd/internal/envvar"
	"github.com/herd-cluster/herd/internal/proctree"
)

// Sockets is what the launcher needs of the primary's listening sockets.
type Sockets interface {
	// Files returns the sockets of slot's worker, in fd order, and their
	// names.
	Files(slot int) ([]*os.File, []string)
	// Resize makes per-slot sockets match the number of slots.
	Resize(slots int) error
}

// ExecLauncher starts workers as real processes.
type ExecLauncher struct {
	// Path and Args are the program each worker runs (Args[0] is its name).
	Path string
	Args []string
	Dir  string
	// Env is the environment every worker starts from; Launch adds the
	// per-worker variables.
	Env []string
	// Name, NotifySocket and Port are passed on as HERD_NAME, NOTIFY_SOCKET
	// and HERD_PORT. Empty or zero leaves them out.
	Name         string
	NotifySocket string
	Port         int
	// Sockets, if set, are passed to the workers as fds 3...
	Sockets Sockets
	// Capture, if set, reads a worker's stdout (stderr false) or stderr
	// until EOF and returns a channel closed when it has; nil sends the
	// output to the primary's own stdout and stderr unprefixed.
	Capture func(slot, pid int, stderr bool, r io.Reader) <-chan struct{}
	// ExtraEnv, if set, adds variables to the environment of slot's
	// worker at its start (the cluster-wide index).
	ExtraEnv func(slot int) []string
	// Channel, if set, opens a worker's IPC channel: Launch passes the file
	// it returns as the worker's last fd, named by HERD_IPC, and calls
	// started with the worker's pid once it runs, or with 0 when the start
	// failed.
	Channel func(slot, gen int) (f *os.File, started func(pid int), err error)
	// Spawner starts the processes.
	Spawner *Spawner
	// Trees, if set, follows each worker's descendants (its cgroup, or its
	// process group and marked orphans) so none outlives it; nil tracks
	// the process group only.
	Trees *proctree.Trees
}

var _ Launcher = (*ExecLauncher)(nil)

// Launch starts the worker of slot. When the primary is out of
// descriptors, it releases the spawner's reserve and tries once more, then
// takes the reserve back as far as it can.
func (l *ExecLauncher) Launch(slot, gen, count int) (Process, error) {
	proc, err := l.launch(slot, gen, count)
	if err != nil && fdShortage(err) && l.Spawner.releaseReserve() {
		proc, err = l.launch(slot, gen, count)
		l.Spawner.retakeReserve()
	}
	return proc, err
}

func (l *ExecLauncher) launch(slot, gen, count int) (Process, error) {
	var files []*os.File
	var names []string
	if l.Sockets != nil {
		files, names = l.Sockets.Files(slot)
	}
	spec := ProcSpec{
		Path: l.Path, Args: l.Args, Dir: l.Dir, Files: files,
		Env: l.env(slot, gen, count, names),
	}
	started := func(int) {}
	if l.Channel != nil {
		f, fn, err := l.Channel(slot, gen)
		if err != nil {
			return nil, fmt.Errorf("ipc channel: %w", err)
		}
		defer f.Close() // the worker has its copy once started
		spec.Files = append(spec.Files[:len(spec.Files):len(spec.Files)], f)
		spec.Env = append(spec.Env, envvar.IPC+"="+strconv.Itoa(3+len(spec.Files)-1))
		started = fn
	}
	readers, err := l.output(&spec)
	if err != nil {
		started(0)
		return nil, err
	}
	tree, err := l.Trees.New(slot, gen)
	if err != nil {
		closeAll(readers[:]...)
		closeAll(spec.Stdout, spec.Stderr)
		started(0)
		return nil, fmt.Errorf("worker cgroup: %w", err)
	}
	spec.Tree = tree
	proc, err := l.Spawner.Start(spec)
	if err != nil {
		closeAll(readers[:]...)
		started(0)
		tree.Abandon()
		return nil, err
	}
	started(proc.Pid())
	if l.Capture != nil {
		for i, r := range readers {
			done := l.Capture(slot, proc.Pid(), i == 1, r)
			proc.drained = append(proc.drained, done)
			go func() { <-done; r.Close() }()
		}
	}
	return proc, nil
}

var _ batchLauncher = (*ExecLauncher)(nil)

// LaunchAll starts the workers of reqs at once, at most spawnThreads
// forks at a time, and returns their outcomes in order.
func (l *ExecLauncher) LaunchAll(reqs []LaunchRequest) []LaunchResult {
	out := make([]LaunchResult, len(reqs))
	sem := make(chan struct{}, spawnThreads)
	var wg sync.WaitGroup
	for i, r := range reqs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i].Proc, out[i].Err = l.Launch(r.Slot, r.Gen, r.Count)
		})
	}
	wg.Wait()
	return out
}

// output sets the worker's stdout and stderr: pipes whose read ends it
// returns for Capture, or the primary's own.
func (l *ExecLauncher) output(spec *ProcSpec) ([2]*os.File, error) {
	var readers [2]*os.File
	if l.Capture == nil {
		spec.Stdout, spec.Stderr = os.Stdout, os.Stderr
		return readers, nil
	}
	for i, w := range []**os.File{&spec.Stdout, &spec.Stderr} {
		r, wr, err := os.Pipe()
		if err != nil {
			closeAll(readers[:]...)
			closeAll(spec.Stdout, spec.Stderr)
			return readers, err
		}
		readers[i], *w = r, wr
	}
	return readers, nil
}

// Resize passes the new number of slots on to the sockets.
func (l *ExecLauncher) Resize(slots int) error {
	if l.Sockets == nil {
		return nil
	}
	return l.Sockets.Resize(slots)
}

func (l *ExecLauncher) env(slot, gen, count int, names []string) []string {
	env := append([]string(nil), l.Env...)
	add := func(k, v string) { env = append(env, k+"="+v) }
	add(envvar.WorkerID, strconv.Itoa(slot))
	add(envvar.WorkerCount, strconv.Itoa(count))
	add(envvar.Generation, strconv.Itoa(gen))
	add(envvar.PrimaryPID, strconv.Itoa(os.Getpid()))
	if l.Name != "" {
		add(envvar.Name, l.Name)
	}
	if l.Port != 0 {
		add(envvar.Port, strconv.Itoa(l.Port))
	}
	if l.NotifySocket != "" {
		add(envvar.NotifySocket, l.NotifySocket)
	}
	if len(names) > 0 {
		add(envvar.ListenFDs, strconv.Itoa(len(names)))
		add(envvar.ListenFDNames, strings.Join(names, ":"))
	}
	if l.ExtraEnv != nil {
		env = append(env, l.ExtraEnv(slot)...)
	}
	return env
}

// BaseEnv returns environ without the variables herd sets per worker or
// that belong to herd's own parent (LISTEN_*, NOTIFY_SOCKET, WATCHDOG_*),
// followed by extra.
func BaseEnv(environ, extra []string) []string {
	drop := map[string]bool{
		envvar.WorkerID: true, envvar.WorkerCount: true, envvar.Generation: true,
		envvar.PrimaryPID: true, envvar.Port: true, envvar.Name: true,
		envvar.ListenFDs: true, envvar.ListenFDNames: true, envvar.ListenPID: true,
		envvar.NotifySocket: true, envvar.WatchdogUSec: true, envvar.WatchdogPID: true,
		envvar.Shim: true, envvar.IPC: true, envvar.Keeper: true,
		envvar.ClusterIndex: true, envvar.ClusterTotal: true, envvar.ClusterEpoch: true,
	}
	var env []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}
