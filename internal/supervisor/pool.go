package supervisor

import (
	"context"
	"errors"
	"syscall"
	"time"
)

// Launcher starts worker processes. Launch must not block for long: it runs
// on the pool's goroutine.
type Launcher interface {
	// Launch starts the worker of slot with the given generation, telling it
	// the cluster has count slots.
	Launch(slot, gen, count int) (Process, error)
	// Resize is told the new number of slots before workers start in new
	// slots and after the workers of removed slots are gone.
	Resize(slots int) error
}

// Process is one started worker process.
type Process interface {
	Pid() int
	// Signal sends sig to the worker process.
	Signal(sig syscall.Signal) error
	// Kill sends SIGKILL to the worker and every process of its tree (its
	// process group, or its cgroup).
	Kill() error
	// Wait blocks until the process has exited, and returns how it ended.
	// It is told by the process itself, never by its output pipes, which a
	// descendant may hold open. The pool calls it once.
	Wait() Exit
	// EndTree is called once Wait has returned: it sends sig to the
	// processes the worker left (its descendants), and returns a channel
	// closed once none is left. Kill kills them.
	EndTree(sig syscall.Signal) <-chan struct{}
}

// Exit is how a process ended.
type Exit struct {
	Code   int    // exit status, or -1 when killed by a signal
	Signal string // the signal's name when killed by one
}

// Pool supervises the worker slots. Create it with New and run it with Run.
type Pool struct {
	cfg    Config
	launch Launcher
	clock  clock

	inbox   chan func()
	stopped chan struct{} // closed when Run returns

	// Everything below is owned by the Run goroutine.
	slots     []*slot
	byPID     map[int]*worker
	rollout   *rollout
	started   time.Time
	everReady bool
	shutdown  *shutdown
	exitErr   error
	counts    counters
	hungTimer timer
	// confirmTimer takes a second look at workers found silent.
	confirmTimer timer

	recycles  []*slot // waiting for their recycle
	recycling *slot   // whose replacement is starting

	scaler   scaler
	cluster  *ClusterView  // this node's share of a multi-node cluster
	releases []releaseWait // Release calls waiting for workers to go
	withheld map[int]bool  // slots that gave up their index for a plan: none until the next view

	serving  []bool // the slots last told to the launcher's steering
	steerBuf []bool

	// ending holds the workers whose main process exited while processes
	// they started still run, with the timer that kills those.
	ending map[*worker]timer
}

type counters struct {
	restarts, crashes, spawned uint64
	rolloutsDone, rolloutsKO   uint64
	byReason                   map[string]uint64
}

type shutdown struct {
	done  chan struct{} // closed when no worker is left
	kill  timer
	force bool // every process is killed at once
}

// New returns a pool that starts its workers through l.
func New(cfg Config, l Launcher) *Pool {
	return newPool(cfg, l, realClock{})
}

func newPool(cfg Config, l Launcher, c clock) *Pool {
	if cfg.Emit == nil {
		cfg.Emit = func(Event) {}
	}
	return &Pool{
		cfg:     cfg,
		launch:  l,
		clock:   c,
		inbox:   make(chan func(), 64),
		stopped: make(chan struct{}),
		byPID:   make(map[int]*worker),
		ending:  make(map[*worker]timer),
		counts:  counters{byReason: make(map[string]uint64)},
	}
}

// Run starts the workers and supervises them until ctx is done (then it
// stops them gracefully) or Shutdown is called, and returns once every worker
// has exited. It returns a *NoWorkerReadyError when every slot failed before
// any worker was ever ready.
func (p *Pool) Run(ctx context.Context) error {
	defer close(p.stopped)
	p.started = p.clock.Now()
	if err := p.launch.Resize(p.cfg.Workers); err != nil {
		return err
	}
	for i := range p.cfg.Workers {
		p.slots = append(p.slots, &slot{id: i})
	}
	p.startInitial(0)
	if p.cfg.Heartbeat > 0 {
		p.scheduleHungCheck()
	}
	defer stopTimer(&p.hungTimer)
	defer stopTimer(&p.confirmTimer)
	ctxDone := ctx.Done()
	for {
		if p.shutdown != nil && len(p.byPID) == 0 && len(p.ending) == 0 {
			stopTimer(&p.shutdown.kill)
			p.emit(Event{Type: EventShutdown, Slot: -1})
			return p.exitErr
		}
		select {
		case f := <-p.inbox:
			f()
			p.steer()
		case <-ctxDone:
			ctxDone = nil
			p.beginShutdown("context done")
		}
	}
}

// startInitial starts slot i and schedules the next after StartupDelay;
// without a delay, it starts every slot from i on at once.
func (p *Pool) startInitial(i int) {
	if p.shutdown != nil || i >= len(p.slots) {
		return
	}
	if p.cfg.StartupDelay <= 0 {
		var ss []*slot
		for _, s := range p.slots[i:] {
			if s.cur == nil && !s.disabled && s.respawn == nil {
				ss = append(ss, s)
			}
		}
		_, _ = p.startWorkers(ss, "start") // a failure is handled as a crash
		return
	}
	if s := p.slots[i]; s.cur == nil && !s.disabled && s.respawn == nil {
		_, _ = p.startWorker(s, "start") // a failure is handled as a crash
	}
	if i+1 < len(p.slots) {
		p.after(p.cfg.StartupDelay, func() { p.startInitial(i + 1) })
	}
}

// post runs f on the pool's goroutine, or returns ErrNotRunning once Run
// has returned.
func (p *Pool) post(f func()) error {
	select {
	case p.inbox <- f:
		return nil
	case <-p.stopped:
		return ErrNotRunning
	}
}

// call runs f on the pool's goroutine and waits for it. When it returns an
// error, f may still run later: callers must not read what f writes.
func (p *Pool) call(ctx context.Context, f func()) error {
	done := make(chan struct{})
	if err := p.post(func() { f(); close(done) }); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.stopped:
		return ErrNotRunning
	}
}

// after runs f on the pool's goroutine after d.
func (p *Pool) after(d time.Duration, f func()) timer {
	return p.clock.AfterFunc(d, func() { _ = p.post(f) })
}

func (p *Pool) emit(e Event) {
	e.Time = p.clock.Now()
	p.cfg.Emit(e)
}

// Done is closed when Run has returned.
func (p *Pool) Done() <-chan struct{} { return p.stopped }

// Shutdown stops every worker gracefully (StopSignal, then SIGKILL after
// ShutdownTimeout); with force, it kills them at once. Run returns when they
// are gone.
func (p *Pool) Shutdown(force bool) {
	_ = p.post(func() {
		p.beginShutdown("requested")
		if force {
			p.shutdown.force = true
			p.killAll()
		}
	})
}

// ShutdownWithin stops every worker gracefully like Shutdown, but kills
// the ones still running after timeout instead of ShutdownTimeout.
func (p *Pool) ShutdownWithin(timeout time.Duration) {
	_ = p.post(func() {
		p.beginShutdown("requested")
		for _, w := range p.byPID {
			stopTimer(&w.killTimer)
			w.killTimer = p.after(timeout, func() {
				if p.byPID[w.pid] == w {
					_ = w.proc.Kill()
				}
			})
		}
		for w, t := range p.ending {
			t.Stop()
			p.ending[w] = p.after(timeout, func() { p.killTree(w) })
		}
	})
}

// Notify hands the pool a sd_notify message from pid: ready, stopping, and
// the STATUS text ("" when absent).
func (p *Pool) Notify(pid int, ready, stopping bool, status string) {
	_ = p.post(func() { p.onNotify(pid, ready, stopping, status) })
}

// Signal sends sig to the workers of every slot, or of one slot when
// slot >= 0.
func (p *Pool) Signal(ctx context.Context, sig syscall.Signal, only int) error {
	var err error
	if cerr := p.call(ctx, func() { err = p.signal(sig, only) }); cerr != nil {
		return cerr
	}
	return err
}

func (p *Pool) signal(sig syscall.Signal, only int) error {
	if only >= len(p.slots) {
		return &SlotError{Slot: only}
	}
	var errs []error
	for _, w := range p.byPID {
		if only < 0 || w.slot.id == only {
			if err := w.proc.Signal(sig); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Stats returns a snapshot of the pool.
func (p *Pool) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	if err := p.call(ctx, func() { st = p.stats() }); err != nil {
		return Stats{}, err // the closure may still run: st is not ours
	}
	return st, nil
}

// Scale sets the number of slots to n, within MinWorkers and MaxWorkers.
// New slots start at once; the highest slots are stopped gracefully.
func (p *Pool) Scale(ctx context.Context, n int) error {
	var err error
	if cerr := p.call(ctx, func() { err = p.scale(n) }); cerr != nil {
		return cerr
	}
	return err
}

// ScaleBy changes the number of slots by delta, clamped to the bounds; it
// returns the new number.
func (p *Pool) ScaleBy(ctx context.Context, delta int) (int, error) {
	var n int
	var err error
	cerr := p.call(ctx, func() {
		n = min(max(p.liveSlots()+delta, p.cfg.MinWorkers), p.cfg.MaxWorkers)
		err = p.scale(n)
	})
	if cerr != nil {
		return 0, cerr
	}
	return n, err
}
