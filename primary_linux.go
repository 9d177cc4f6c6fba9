package herd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/herd-cluster/herd/internal/envvar"
	"github.com/herd-cluster/herd/internal/logs"
	"github.com/herd-cluster/herd/internal/metrics"
	"github.com/herd-cluster/herd/internal/notify"
	"github.com/herd-cluster/herd/internal/shim"
	"github.com/herd-cluster/herd/internal/sockets"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// A NoWorkerReadyError carries, of each slot's last summaryLines stderr
// lines, the last tailLines and up to headLines before them that name the
// error.
const (
	tailLines    = 10
	headLines    = 3
	summaryLines = 200
)

// runPrimary binds the sockets, starts the workers and supervises them.
func (c *Cluster) runPrimary(ctx context.Context) error {
	catchSIGPIPE()
	cfg := c.cfg
	trees := c.openTrees()
	defer trees.Close()
	set, err := c.bind()
	if err != nil {
		return err
	}
	defer set.Close()
	stopListening, err := c.keepListening(set)
	if err != nil {
		return err
	}
	defer stopListening()
	nl, err := c.listenNotify()
	if err != nil {
		return fmt.Errorf("herd: notify socket: %w", err)
	}
	defer nl.Close()
	sink := logs.New(logs.Config{Stdout: cfg.Stdout, Stderr: cfg.Stderr, Format: cfg.LogFormat, RingLines: cfg.LogLines})
	defer sink.Close()
	if err := c.writePrimaryPID(); err != nil {
		return err
	}
	defer c.removePrimaryPID()

	queues := c.newSaturation(set)
	m, promHandler, err := c.newMetrics(func() map[string]uint64 {
		return map[string]uint64{metrics.DropQueueFull: sink.Dropped(), metrics.DropWriteError: c.outputDrops()}
	}, queues)
	if err != nil {
		return err
	}
	events := newEventQueue(cfg.Logger, m.Observe, cfg.OnEvent)
	defer events.close()
	advice, stopAdvice := c.startAdvisor(set.Addrs(), sink, events)
	c.advice.Store(advice)
	defer stopAdvice()
	spawner, err := supervisor.NewSpawner()
	if err != nil {
		return fmt.Errorf("herd: %w", err)
	}
	defer spawner.Close()
	ch := c.channels
	ch.log, ch.heartbeat = cfg.Logger, c.heartbeat()
	if len(cfg.Command) > 0 && cfg.MaxRequests > 0 {
		ch.silent = advice.noIPC
	}
	if ch.heartbeat == 0 {
		ch.heartbeat = DefaultHeartbeat // for the counts commands may report
	}
	defer ch.closeAll()
	launcher := c.launcher(set, nl.Addr(), sink, spawner)
	launcher.Channel, launcher.Trees = ch.open, trees
	var nd *node
	if c.clustered() {
		if nd, err = c.newNode(m); err != nil {
			return err
		}
		launcher.ExtraEnv = nd.env
		ch.greet = nd.greet
	}
	pool := supervisor.New(supervisor.Config{
		Workers: cfg.Workers, MinWorkers: cfg.MinWorkers, MaxWorkers: cfg.MaxWorkers,
		ReadyByNotify: cfg.Ready == ReadyNotify, ReadyDelay: cfg.ReadyDelay,
		ReadyTimeout: cfg.ReadyTimeout, StartupDelay: cfg.StartupDelay,
		Respawn: cfg.Respawn == RespawnAlways, RespawnDelay: cfg.RespawnDelay,
		MaxCrashes: cfg.MaxCrashes, CrashWindow: cfg.CrashWindow,
		StopSignal: cfg.StopSignal, ShutdownTimeout: cfg.ShutdownTimeout, MaxSurge: cfg.MaxSurge,
		Heartbeat:   c.heartbeat(),
		MaxRequests: cfg.MaxRequests, MaxRequestsJitter: cfg.MaxRequestsJitter,
		MaxAge: cfg.MaxAge, MaxAgeJitter: cfg.MaxAgeJitter, MemoryLimit: cfg.MemoryLimit,
		Autoscale: supervisor.Autoscale{
			Enabled: cfg.Autoscale, UpCPU: cfg.ScaleUpCPU, DownCPU: cfg.ScaleDownCPU,
			UpAfter: cfg.ScaleUpAfter, DownAfter: cfg.ScaleDownAfter, UpQueue: cfg.ScaleUpQueue,
		},
		PIDDir: cfg.PIDDir, Port: set.Port(), Ancestor: notify.Ancestor, Follow: c.follow(),
		Logger: cfg.Logger, Emit: events.push,
	}, launcher)
	c.pool.Store(pool)
	defer c.pool.Store(nil)
	stopControl, err := c.startControl(pool, events, sink, set.Port(), promHandler, queues)
	if err != nil {
		return err
	}
	defer stopControl()
	defer watchSaturation(queues, pool, events)()

	if nl != nil {
		go forwardNotifications(nl, pool)
	}
	if nd != nil {
		nodeCtx, leave := context.WithCancel(context.Background())
		nodeDone := make(chan struct{})
		go func() { defer close(nodeDone); nd.run(nodeCtx, pool, events) }()
		defer func() { leave(); <-nodeDone }()
	}
	monCtx, stopMonitor := context.WithCancel(ctx)
	monDone := make(chan struct{})
	go func() { defer close(monDone); c.monitor(monCtx, pool, c.sampler) }()
	defer func() { stopMonitor(); <-monDone }()
	stopWatch, err := c.startWatch(pool)
	if err != nil {
		return err
	}
	defer stopWatch()
	stopSignals := c.handleSignals(pool, events)
	defer stopSignals()
	cfg.Logger.Info("primary started", "name", cfg.Name, "pid", os.Getpid(), "workers", cfg.Workers,
		"listen", set.Addrs(), "balance", string(cfg.Balance), "process_trees", string(trees.Mode()))
	err = pool.Run(ctx)
	events.close() // the last events reach API subscribers before the API stops
	var nr *supervisor.NoWorkerReadyError
	if errors.As(err, &nr) {
		stopAdvice() // it has seen every event and line: the summary names its findings
		return &NoWorkerReadyError{Reason: nr.Reason, Output: c.lastOutput(sink)}
	}
	return err
}

// bind returns the sockets the primary was given by socket activation, or
// binds the configured ones.
func (c *Cluster) bind() (*sockets.Set, error) {
	set, ok, err := sockets.Inherited()
	if err != nil {
		return nil, fmt.Errorf("herd: sockets from the service manager: %w", err)
	}
	if ok {
		if len(c.cfg.Listen) > 0 {
			c.cfg.Logger.Info("socket-activated: passing on the sockets given, not binding --listen")
		}
		return set, nil
	}
	specs, err := sockets.ParseAll(c.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("herd: %w", err)
	}
	set, err = sockets.Bind(specs, sockets.Balance(c.cfg.Balance), c.cfg.Workers, c.cfg.Backlog)
	if err != nil {
		return nil, fmt.Errorf("herd: %w", err)
	}
	return set, nil
}

// launcher returns what starts the workers: this executable again as a Go
// worker, or the command through the exec shim.
func (c *Cluster) launcher(set *sockets.Set, notifyAddr string, sink *logs.Sink, sp *supervisor.Spawner) *supervisor.ExecLauncher {
	env := supervisor.BaseEnv(os.Environ(), c.cfg.Env)
	path, args := c.exe, os.Args
	if len(c.cfg.Command) > 0 {
		// Without a shell, the shim is this executable: /proc/self/exe is
		// this very binary even if the file on disk was replaced since.
		var extra []string
		path, args, extra = shim.Command(c.cfg.Command, "/proc/self/exe")
		env = append(env, extra...)
		if c.cfg.Watchdog > 0 {
			env = append(env, envvar.WatchdogUSec+"="+strconv.FormatInt(c.cfg.Watchdog.Microseconds(), 10))
		}
	}
	return &supervisor.ExecLauncher{
		Path: path, Args: args, Dir: c.cfg.Dir, Env: env,
		Name: c.cfg.Name, NotifySocket: notifyAddr, Port: set.Port(),
		Sockets: set, Spawner: sp,
		Capture: func(slot, pid int, stderr bool, r io.Reader) <-chan struct{} {
			stream := logs.Stdout
			if stderr {
				stream = logs.Stderr
			}
			return sink.Capture(slot, pid, stream, r)
		},
	}
}

func forwardNotifications(nl *notify.Listener, pool *supervisor.Pool) {
	for m := range nl.C() {
		pool.Notify(m.PID, m.Ready, m.Stopping, m.Status)
		if m.Watchdog {
			pool.Beat(m.PID, 0, false)
		}
	}
}

// heartbeat is how often workers must prove they are alive: Watchdog when
// set; otherwise Go workers beat every DefaultHeartbeat over IPC and
// commands are not watched.
func (c *Cluster) heartbeat() time.Duration {
	switch {
	case c.cfg.Watchdog > 0:
		return c.cfg.Watchdog
	case len(c.cfg.Command) > 0:
		return 0
	}
	return DefaultHeartbeat
}

// handleSignals turns the signals the primary receives into pool requests
// until the returned function is called.
func (c *Cluster) handleSignals(pool *supervisor.Pool, events *eventQueue) (stop func()) {
	ch := make(chan os.Signal, 8)
	sigs := []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR2, syscall.SIGHUP, syscall.SIGTTIN, syscall.SIGTTOU}
	for _, s := range c.cfg.Forward {
		sigs = append(sigs, s)
	}
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	go func() {
		stops := 0
		for {
			select {
			case <-done:
				return
			case s := <-ch:
				sig := s.(syscall.Signal)
				events.push(Event{Type: EventSignal, Slot: -1, Signal: unix.SignalName(sig)})
				if sig == syscall.SIGTERM || sig == syscall.SIGINT {
					stops++
				}
				c.onSignal(pool, sig, stops)
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

func (c *Cluster) onSignal(pool *supervisor.Pool, sig syscall.Signal, stops int) {
	log := c.cfg.Logger
	ctx := context.Background()
	switch {
	case sig == syscall.SIGTERM || sig == syscall.SIGINT:
		if stops > 1 {
			log.Warn("second stop signal: killing every worker now")
		}
		pool.Shutdown(stops > 1)
	case sig == syscall.SIGUSR2 || (sig == syscall.SIGHUP && c.cfg.Hup == HupReload):
		go func() {
			if err := pool.Restart(ctx, -1); err != nil {
				log.Error("rolling restart", "err", err)
			}
		}()
	case sig == syscall.SIGTTIN || sig == syscall.SIGTTOU:
		delta := 1
		if sig == syscall.SIGTTOU {
			delta = -1
		}
		go func() {
			if _, err := pool.ScaleBy(ctx, delta); err != nil {
				log.Error("scale", "err", err)
			}
		}()
	default:
		if err := pool.Signal(ctx, sig, -1); err != nil {
			log.Warn("forwarding signal", "signal", unix.SignalName(sig), "err", err)
		}
	}
}

// lastOutput returns, for every slot, what its workers last wrote to
// stderr: the last lines, and before them the lines that name the error
// when a long backtrace pushed them out of the last lines.
func (c *Cluster) lastOutput(sink *logs.Sink) []string {
	_ = sink.Flush(context.Background())
	var out []string
	for slot := range c.cfg.Workers {
		sum := logs.Summarize(sink.Tail(slot, summaryLines, logs.Stderr), tailLines, headLines)
		for _, l := range sum.Head {
			out = append(out, fmt.Sprintf("[%d] %s", l.Slot, l.Text))
		}
		if sum.Skipped > 0 {
			out = append(out, fmt.Sprintf("[%d] … %d more lines …", slot, sum.Skipped))
		}
		for _, l := range sum.Tail {
			out = append(out, fmt.Sprintf("[%d] %s", l.Slot, l.Text))
		}
		if msg := c.advice.Load().toldSlot(slot); msg != "" {
			out = append(out, fmt.Sprintf("[%d] herd: %s", slot, msg))
		}
	}
	return out
}

func (c *Cluster) writePrimaryPID() error {
	if c.cfg.PIDDir == "" {
		return nil
	}
	if err := os.MkdirAll(c.cfg.PIDDir, 0o755); err != nil {
		return fmt.Errorf("herd: pid dir: %w", err)
	}
	if err := supervisor.CheckPIDDir(c.cfg.PIDDir); err != nil {
		return fmt.Errorf("herd: pid dir: %w", err)
	}
	if err := supervisor.WritePIDFile(filepath.Join(c.cfg.PIDDir, "primary.pid"), os.Getpid()); err != nil {
		return fmt.Errorf("herd: pid file: %w", err)
	}
	return nil
}

func (c *Cluster) removePrimaryPID() {
	if c.cfg.PIDDir != "" {
		os.Remove(filepath.Join(c.cfg.PIDDir, "primary.pid"))
	}
}
