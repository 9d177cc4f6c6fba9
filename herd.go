package herd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/envvar"
	"github.com/herd-cluster/herd/internal/procstat"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// Work is the code a Go worker runs. It should serve until ctx is done (the
// primary asked the worker to stop), then finish in-flight work and return;
// w gives it its sockets and identity and lets it say it is ready.
type Work func(ctx context.Context, w *Worker) error

// Errors callers tell apart.
var (
	// ErrNotPrimary is returned by the primary-only methods of a Cluster
	// when called in a worker or in single-process mode.
	ErrNotPrimary = errors.New("herd: not the primary")
	// ErrNotRunning is returned by the primary-only methods before Run has
	// started the workers or after it returned.
	ErrNotRunning = supervisor.ErrNotRunning
	// ErrShutdown refuses requests made while the cluster stops.
	ErrShutdown = supervisor.ErrShutdown
	// ErrRolloutInProgress refuses a rolling restart while one runs.
	ErrRolloutInProgress = supervisor.ErrRolloutInProgress
)

// NoWorkerReadyError is returned by Run when every slot failed before any
// worker was ever ready. Output holds the last lines the workers wrote to
// stderr, oldest first, each prefixed with its slot; when a long
// backtrace followed the error, the line that names it (the first line of
// the last worker's output, or one naming an error, exception, panic or
// errno) comes first, then a line counting those left out.
type NoWorkerReadyError struct {
	Reason string
	Output []string
}

func (e *NoWorkerReadyError) Error() string {
	return "herd: no worker ever became ready: " + e.Reason
}

// RangeError refuses a scale outside MinWorkers and MaxWorkers.
type RangeError = supervisor.RangeError

// SlotError names a slot that does not exist.
type SlotError = supervisor.SlotError

// Cluster is one herd cluster as seen from this process, which is either its
// primary, one of its workers, or (SingleProcess) both at once.
type Cluster struct {
	cfg  Config
	work Work
	exe  string // the program Go workers run: this executable's path

	pool     atomic.Pointer[supervisor.Pool] // set while the primary runs
	advice   atomic.Pointer[advisor]         // set while the primary runs
	stop     chan struct{}                   // closed by Stop
	stopOnce sync.Once

	handlersMu sync.RWMutex
	handlers   map[string]HandlerFunc // delegated types
	channels   *channels              // the primary's worker channels
	sampler    *procstat.Sampler      // RSS and CPU of the workers
	control    atomic.Pointer[control.Server]
}

// New returns the cluster described by cfg. In a process started as the exec
// shim of a Command worker it does not return: it replaces the process with
// the command (and returns an error only if that fails).
func New(cfg Config, work Work) (*Cluster, error) {
	if err := ExecShim(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("herd: %w", err)
	}
	switch {
	case work == nil && len(cfg.Command) == 0:
		return nil, errors.New("herd: neither work nor a command to run")
	case work != nil && len(cfg.Command) > 0:
		return nil, errors.New("herd: both work and a command given; choose one")
	}
	c := &Cluster{cfg: cfg.withDefaults(), work: work, stop: make(chan struct{})}
	c.channels = &channels{c: c, conns: make(map[int]workerChannel)}
	c.sampler = procstat.NewSampler()
	if work != nil && !c.cfg.SingleProcess && !IsWorker() {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("herd: finding this executable to start workers: %w", err)
		}
		c.exe = exe
	}
	return c, nil
}

// Run runs the cluster: in the primary it binds the sockets, starts the
// workers and supervises them until ctx is done or a SIGTERM or SIGINT
// arrives, then stops them gracefully; in a worker it runs the work until
// the primary asks it to stop. It returns nil after a clean stop.
func (c *Cluster) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	switch {
	case c.cfg.SingleProcess:
		return c.runSingle(ctx)
	case c.work != nil && IsWorker():
		return c.runWorker(ctx)
	case runtime.GOOS != "linux":
		return fmt.Errorf("herd: the primary runs on Linux only, not %s", runtime.GOOS)
	}
	return c.runPrimary(ctx)
}

// Run is New followed by Cluster.Run.
func Run(ctx context.Context, cfg Config, work Work) error {
	c, err := New(cfg, work)
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// IsWorker reports whether this process was started by a herd primary as
// one of its workers.
func IsWorker() bool {
	return os.Getenv(envvar.WorkerID) != "" && os.Getenv(envvar.PrimaryPID) != ""
}

// IsPrimary reports whether this process is a herd primary, or will become
// one when it runs a Cluster: it is not a worker.
func IsPrimary() bool { return !IsWorker() }

// Stats returns a snapshot of the cluster. Primary only.
func (c *Cluster) Stats(ctx context.Context) (Stats, error) {
	p, err := c.primary()
	if err != nil {
		return Stats{}, err
	}
	st, err := p.Stats(ctx)
	st.Warnings = c.advice.Load().Warnings()
	return st, err
}

// Restart rolls every worker over to a new one, MaxSurge at a time, each new
// worker ready before its old one is stopped, and returns when the rollout
// has finished or failed. Primary only.
func (c *Cluster) Restart(ctx context.Context) error {
	return c.RestartSlot(ctx, -1)
}

// RestartSlot replaces the worker of one slot the same way (slot < 0 means
// every slot). A DISABLED slot is enabled again. Primary only.
func (c *Cluster) RestartSlot(ctx context.Context, slot int) error {
	p, err := c.primary()
	if err != nil {
		return err
	}
	return p.Restart(ctx, slot)
}

// Scale sets the number of workers to n, between MinWorkers and MaxWorkers:
// new slots start at once, the highest slots stop gracefully. Primary only.
func (c *Cluster) Scale(ctx context.Context, n int) error {
	p, err := c.primary()
	if err != nil {
		return err
	}
	return p.Scale(ctx, n)
}

// Signal sends sig to every worker, or to the worker of one slot when
// slot >= 0. Primary only.
func (c *Cluster) Signal(ctx context.Context, sig syscall.Signal, slot int) error {
	p, err := c.primary()
	if err != nil {
		return err
	}
	return p.Signal(ctx, sig, slot)
}

// Stop makes Run return as if its context were done: the primary stops
// every worker gracefully and returns once they are gone; a worker's work
// sees its context done. It may be called at any time, even before Run.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() { close(c.stop) })
}

func (c *Cluster) primary() (*supervisor.Pool, error) {
	if c.work != nil && (IsWorker() || c.cfg.SingleProcess) {
		return nil, ErrNotPrimary
	}
	p := c.pool.Load()
	if p == nil {
		return nil, ErrNotRunning
	}
	return p, nil
}

// atoiEnv reads an integer environment variable, or def when unset.
func atoiEnv(key string, def int) (int, error) {
	v := os.Getenv(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("herd: %s=%q is not a number", key, v)
	}
	return n, nil
}
