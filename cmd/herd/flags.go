package main

import (
	"io"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/herd-cluster/herd"
	"github.com/herd-cluster/herd/internal/logs"
)

// groupAnnotation marks the cluster flags and names their help section.
const groupAnnotation = "herd-group"

// flagGroups lists the help sections of the cluster flags, in order.
var flagGroups = []string{
	"Workers", "Sockets", "Readiness", "Restarts and crashes",
	"Stopping and signals", "Worker process", "Health and recycling", "Autoscaling",
	"Multi-node cluster", "Development", "Logging", "Control", "Configuration",
}

// clusterFlags holds the values of the flags that describe a cluster. Its
// fields are written by the flag values during parsing and then by config
// from the environment and the config file.
type clusterFlags struct {
	workers       workersValue
	minWorkers    int
	maxWorkers    int
	listen        []string
	balance       string
	backlog       int
	ready         string
	readyDelay    time.Duration
	readyTimeout  time.Duration
	startupDelay  time.Duration
	respawn       bool
	respawnDelay  time.Duration
	maxCrashes    int
	crashWindow   time.Duration
	shutdown      time.Duration
	stopSignal    syscall.Signal
	maxSurge      int
	hup           string
	forward       []syscall.Signal
	pidDir        string
	name          string
	dir           string
	env           []string
	watch         []string
	logFormat     string
	logLevel      string
	configFile    string
	fileCommand   []string
	fileCommandAt string
	ctl           controlFlags
	health        healthFlags
	node          nodeFlags
}

// addClusterFlags registers the cluster flags (--workers, --listen, …,
// --config) on cmd, with grouped help, and returns their values. Call
// config from cmd's RunE to get the herd.Config they describe.
func addClusterFlags(cmd *cobra.Command) *clusterFlags {
	f := &clusterFlags{
		workers:      workersValue{spec: "auto"},
		minWorkers:   1,
		backlog:      herd.DefaultBacklog,
		readyDelay:   herd.DefaultReadyDelay,
		readyTimeout: herd.DefaultReadyTimeout,
		startupDelay: herd.DefaultStartupDelay,
		respawn:      true,
		respawnDelay: herd.DefaultRespawnDelay,
		maxCrashes:   herd.DefaultMaxCrashes,
		crashWindow:  herd.DefaultCrashWindow,
		shutdown:     herd.DefaultShutdownTimeout,
		stopSignal:   syscall.SIGTERM,
		maxSurge:     1,
		hup:          string(herd.HupForward),
		forward:      []syscall.Signal{syscall.SIGUSR1, syscall.SIGWINCH},
		logFormat:    "text",
		logLevel:     "info",
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.BoolP("help", "h", false, "Show this help.")
	f.addWorkerFlags(fs)
	f.addProcessFlags(fs)
	f.health.addHealthFlags(fs)
	f.health.addScaleFlags(fs)
	f.node.addNodeFlags(fs)
	f.addWatchFlag(fs)
	f.addOtherFlags(fs)
	cmd.SetUsageFunc(clusterUsage)
	return f
}

// addWorkerFlags registers the Workers, Sockets and Readiness sections.
func (f *clusterFlags) addWorkerFlags(fs *pflag.FlagSet) {
	g := "Workers"
	add(fs, g, &f.workers, "workers", "`N|auto|physical`",
		"Number of worker slots: a number; auto (or 0) for the logical CPUs this process may use (affinity mask and cgroup quota respected); physical for the physical cores.")
	add(fs, g, &intValue{&f.minWorkers, 1}, "min-workers", "`N`",
		"Fewest workers scaling down (SIGTTOU, herd scale) may leave.")
	add(fs, g, &intValue{&f.maxWorkers, 0}, "max-workers", "`N`",
		"Most workers scaling up may reach, and the bound of --workers; at most 4096. 0 means 1024.")
	g = "Sockets"
	add(fs, g, &listValue{p: &f.listen, check: checkListen, split: splitListenEnv}, "listen", "`[NAME=]ADDR`",
		"Bind ADDR in the primary and pass it to every worker; repeat for more sockets. ADDR is host:port, :port, udp:host:port or unix:/path with optional ,mode=0660,owner=USER,group=GROUP. NAME goes into LISTEN_FDNAMES (default listen0, listen1, … by position).")
	add(fs, g, &enumValue{&f.balance, []string{"shared", "reuseport"}}, "balance", "`shared|reuseport`",
		"How connections are spread: shared makes every worker accept from one socket; reuseport gives each slot its own SO_REUSEPORT socket per TCP or UDP listener, kept across respawns (unix sockets are always shared), and sends new TCP connections only to slots whose worker is ready; a slot scaled away serves what is queued on its socket before its worker stops. Default: shared.")
	add(fs, g, &intValue{&f.backlog, 1}, "backlog", "`N`",
		"Listen backlog of TCP and unix stream sockets.")
	g = "Readiness"
	add(fs, g, &enumValue{&f.ready, []string{"notify", "delay"}}, "ready", "`notify|delay`",
		"How a worker is judged ready: notify waits for READY=1 on NOTIFY_SOCKET (sd_notify); delay takes it as ready once alive for --ready-delay. Default: delay for a command, notify for Go workers.")
	add(fs, g, &durationValue{p: &f.readyDelay}, "ready-delay", "`DURATION`",
		"Time alive after which a worker is ready with --ready delay.")
	add(fs, g, &durationValue{p: &f.readyTimeout}, "ready-timeout", "`DURATION`",
		"Time a worker has to become ready before it is killed and counted as a crash; more than --max-crashes such workers in a row disable the slot.")
	add(fs, g, &durationValue{p: &f.startupDelay, zeroOK: true}, "startup-delay", "`DURATION`",
		"Pause between the starts of the first workers; 0 for none.")
}

// addProcessFlags registers the restart, stop and worker process sections.
func (f *clusterFlags) addProcessFlags(fs *pflag.FlagSet) {
	g := "Restarts and crashes"
	fs.BoolVar(&f.respawn, "respawn", f.respawn,
		"Restart a worker that exits without being asked to; --respawn=false leaves its slot CRASHED until a rolling restart.")
	annotate(fs, "respawn", g)
	add(fs, g, &durationValue{p: &f.respawnDelay}, "respawn-delay", "`DURATION`",
		"Pause before respawning a crashed worker; it grows 1.5 times per consecutive crash up to 15s and resets after 30s of healthy running.")
	add(fs, g, &intValue{&f.maxCrashes, 1}, "max-crashes", "`N`",
		"A slot that crashes more than N times within --crash-window, or whose workers fail before they are ready more than N times in a row, is DISABLED: not restarted until a rolling restart.")
	add(fs, g, &durationValue{p: &f.crashWindow}, "crash-window", "`DURATION`",
		"Window in which --max-crashes is counted.")
	g = "Stopping and signals"
	add(fs, g, &signalValue{&f.stopSignal}, "stop-signal", "`SIGNAL`",
		"Signal that asks a worker to stop gracefully: a name (TERM, SIGTERM) or a number.")
	add(fs, g, &durationValue{p: &f.shutdown}, "shutdown-timeout", "`DURATION`",
		"Time a stopping worker has to finish in-flight work before SIGKILL; also what the processes a worker leaves behind have once it ends.")
	add(fs, g, &intValue{&f.maxSurge, 1}, "max-surge", "`N`",
		"Replacement workers a rolling restart runs at once.")
	add(fs, g, &enumValue{&f.hup, []string{"forward", "reload"}}, "hup", "`forward|reload`",
		"What SIGHUP to the primary does: forward it to every worker, or start a rolling restart.")
	add(fs, g, &signalListValue{p: &f.forward}, "forward", "`SIGNAL`",
		"Signal the primary passes on to every worker; repeat or separate with commas for more, or give none for no forwarding.")
	g = "Worker process"
	add(fs, g, &stringValue{&f.name, checkName}, "name", "`NAME`",
		"Cluster name, used in logs and given to workers as HERD_NAME. Default: the command's base name.")
	add(fs, g, &stringValue{&f.dir, checkDir}, "dir", "`DIR`",
		"Working directory of the workers. Default: herd's own.")
	add(fs, g, &listValue{p: &f.env, check: checkEnv, split: splitEnvEnv}, "env", "`KEY=VALUE`",
		"Add a variable to the environment the workers inherit from herd; repeatable.")
	add(fs, g, &stringValue{&f.pidDir, checkPIDDir}, "pid-dir", "`DIR`",
		"Write primary.pid and worker-SLOT.pid here, kept current across respawns and removed at exit. Refused if writable by group or others (unless sticky and herd's user's) or owned by another user.")
}

// addOtherFlags registers the Logging and Configuration sections.
func (f *clusterFlags) addOtherFlags(fs *pflag.FlagSet) {
	g := "Logging"
	add(fs, g, &enumValue{&f.logFormat, []string{"text", "json"}}, "log-format", "`text|json`",
		"Format of herd's own log on stderr and of the worker output lines: text prefixes each worker line with its slot, json makes each line a JSON object.")
	add(fs, g, &enumValue{&f.logLevel, []string{"debug", "info", "warn", "error"}}, "log-level", "`LEVEL`",
		"Least severe herd log messages shown: debug, info, warn or error.")
	f.ctl.addLogFlags(fs)
	f.ctl.addControlFlags(fs)
	add(fs, "Configuration", &stringValue{&f.configFile, nil}, "config", "`FILE`",
		"Read flag values from this YAML file, one key per flag (see CONFIGURATION); a regular file of at most 1 MiB.")
}

// add registers a flag with value v in help section group. meta is the
// back-quoted placeholder shown in help, such as "`N`".
func add(fs *pflag.FlagSet, group string, v pflag.Value, name, meta, usage string) {
	fs.Var(v, name, meta+" "+usage)
	annotate(fs, name, group)
}

// annotate puts flag name into help section group, marking it as a
// cluster flag.
func annotate(fs *pflag.FlagSet, name, group string) {
	if err := fs.SetAnnotation(name, groupAnnotation, []string{group}); err != nil {
		panic(err) // only if name was never registered: a bug here
	}
}

// isClusterFlag reports whether fl is one of the flags addClusterFlags adds.
func isClusterFlag(fl *pflag.Flag) bool {
	return fl != nil && len(fl.Annotations[groupAnnotation]) > 0
}

// config returns the herd.Config described by cmd's cluster flags, taking
// each value from the command line, else its HERD_ environment variable,
// else the config file, else the default. Command is set only from the
// file's command: key. Every error is a *usageError naming the option.
func (f *clusterFlags) config(cmd *cobra.Command) (herd.Config, error) {
	fs := cmd.Flags()
	if err := checkEnviron(fs, os.Environ()); err != nil {
		return herd.Config{}, err
	}
	if cf := fs.Lookup("config"); !cf.Changed {
		if _, err := applyEnv(cf); err != nil {
			return herd.Config{}, err
		}
	}
	file, err := loadFile(f.configFile, fs)
	if err != nil {
		return herd.Config{}, err
	}
	f.fileCommand, f.fileCommandAt = file.command, file.where("command")
	var applyErr error
	fs.VisitAll(func(fl *pflag.Flag) {
		if applyErr != nil || !isClusterFlag(fl) || fl.Changed || fl.Name == "config" {
			return
		}
		applied, err := applyEnv(fl)
		if err == nil && !applied {
			err = file.apply(fl)
		}
		applyErr = err
	})
	if applyErr != nil {
		return herd.Config{}, applyErr
	}
	if err := f.check(); err != nil {
		return herd.Config{}, err
	}
	cfg := f.build(cmd.ErrOrStderr())
	if err := cfg.Validate(); err != nil {
		return herd.Config{}, &usageError{err}
	}
	return f.withLogFile(cfg)
}

// check refuses combinations of flags that no single flag can judge.
func (f *clusterFlags) check() error {
	if err := f.ctl.check(); err != nil {
		return err
	}
	if err := f.health.check(); err != nil {
		return err
	}
	return f.node.check(f.workers.count())
}

// withLogFile opens --log-file, when given, and sends herd's log and the
// worker output there. The caller closes it with f.ctl.closeLog.
func (f *clusterFlags) withLogFile(cfg herd.Config) (herd.Config, error) {
	if f.ctl.logFile == "" {
		return cfg, nil
	}
	w, err := f.ctl.openLog()
	if err != nil {
		return herd.Config{}, err
	}
	// herd's log and the worker output share one guard: while the file
	// fails (a full disk), their lines are dropped and counted, reported
	// once on stderr, and the file is reopened after a backoff.
	g := logs.Guard(w, "log file "+f.ctl.logFile, f.logFormat == "json")
	g.SetReport(cfg.Stderr)
	cfg.Stdout, cfg.Stderr = g, g
	cfg.Logger = newLogger(g, f.logFormat, f.logLevel)
	return cfg, nil
}

// build returns the herd.Config of the current flag values, with its
// logger writing to w, which is also Stderr: a failing w drops herd's log
// lines and counts them as it does worker output.
func (f *clusterFlags) build(w io.Writer) herd.Config {
	w = logs.Guard(w, "stderr", f.logFormat == "json")
	respawn := herd.RespawnAlways
	if !f.respawn {
		respawn = herd.RespawnNever
	}
	startup := f.startupDelay
	if startup == 0 {
		startup = -1 // Config reads zero as the default; negative is none
	}
	cfg := herd.Config{
		Name:            f.name,
		Workers:         f.workers.count(),
		MinWorkers:      f.minWorkers,
		MaxWorkers:      f.maxWorkers,
		Listen:          append([]string(nil), f.listen...),
		Balance:         herd.Balance(f.balance),
		Backlog:         f.backlog,
		Command:         append([]string(nil), f.fileCommand...),
		Dir:             f.dir,
		Env:             append([]string(nil), f.env...),
		Ready:           herd.ReadyMode(f.ready),
		ReadyDelay:      f.readyDelay,
		ReadyTimeout:    f.readyTimeout,
		StartupDelay:    startup,
		Respawn:         respawn,
		RespawnDelay:    f.respawnDelay,
		MaxCrashes:      f.maxCrashes,
		CrashWindow:     f.crashWindow,
		StopSignal:      f.stopSignal,
		ShutdownTimeout: f.shutdown,
		MaxSurge:        f.maxSurge,
		Hup:             herd.HupAction(f.hup),
		Forward:         append([]syscall.Signal{}, f.forward...), // non-nil: empty is none
		PIDDir:          f.pidDir,
		Watch:           append([]string(nil), f.watch...),
		Logger:          newLogger(w, f.logFormat, f.logLevel),
		LogFormat:       f.logFormat,
		Stderr:          w,
	}
	f.ctl.apply(&cfg)
	f.health.apply(&cfg)
	f.node.apply(&cfg)
	return cfg
}

// newLogger returns herd's own logger: text or JSON lines on w from level up.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo // --log-level only lets valid levels through
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		// Like the workers' JSON lines, herd's own carry a stream.
		return slog.New(slog.NewJSONHandler(w, opts).WithAttrs([]slog.Attr{slog.String("stream", "herd")}))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// stringValue is a string flag with an optional check.
type stringValue struct {
	p     *string
	check func(string) error
}

// Set checks s and stores it.
func (v *stringValue) Set(s string) error {
	if v.check != nil {
		if err := v.check(s); err != nil {
			return err
		}
	}
	*v.p = s
	return nil
}

// String returns the value.
func (v *stringValue) String() string { return *v.p }

// Type names the value kind for help output.
func (v *stringValue) Type() string { return "string" }
