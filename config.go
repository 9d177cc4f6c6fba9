package herd

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Balance selects how connections are spread over workers.
type Balance string

const (
	// BalanceShared makes every worker accept from one socket per listener.
	BalanceShared Balance = "shared"
	// BalanceReusePort gives each slot its own SO_REUSEPORT socket per TCP or
	// UDP listener, created and kept by the primary; the kernel hashes
	// connections over them. Unix sockets are always shared.
	BalanceReusePort Balance = "reuseport"
)

// ReadyMode selects how a worker is judged ready.
type ReadyMode string

const (
	// ReadyNotify waits for READY=1 on NOTIFY_SOCKET (or Worker.Ready).
	ReadyNotify ReadyMode = "notify"
	// ReadyDelay takes a worker as ready once it has stayed alive for
	// Config.ReadyDelay.
	ReadyDelay ReadyMode = "delay"
)

// RespawnPolicy says whether exited workers are started again.
type RespawnPolicy int

const (
	// RespawnAlways restarts a worker that exits without being asked to.
	RespawnAlways RespawnPolicy = iota
	// RespawnNever leaves such a slot CRASHED until a restart.
	RespawnNever
)

// HupAction selects what SIGHUP to the primary does.
type HupAction string

const (
	// HupForward sends SIGHUP on to every worker.
	HupForward HupAction = "forward"
	// HupReload starts a rolling restart.
	HupReload HupAction = "reload"
)

// Defaults for the Config fields whose zero value means "the default".
const (
	DefaultStartupDelay    = 100 * time.Millisecond
	DefaultRespawnDelay    = 100 * time.Millisecond
	DefaultReadyDelay      = time.Second
	DefaultReadyTimeout    = 60 * time.Second
	DefaultMaxCrashes      = 3
	DefaultCrashWindow     = 5 * time.Second
	DefaultShutdownTimeout = 15 * time.Second
	DefaultMaxWorkers      = 1024
	DefaultBacklog         = 2048
	DefaultHeartbeat       = 5 * time.Second
	DefaultMemoryCheck     = 5 * time.Second
)

// Config describes a cluster. The zero value of every field is usable and its
// meaning is documented on the field; New validates the whole.
type Config struct {
	// Name names the cluster in logs and in the workers' HERD_NAME. Empty
	// means the base name of the command, or of this executable.
	Name string

	// Workers is the number of worker slots. Zero means CPUs().
	Workers int
	// MinWorkers and MaxWorkers bound scaling, and Workers. Zero means 1
	// and DefaultMaxWorkers; MaxWorkers is at most WorkersLimit.
	MinWorkers int
	MaxWorkers int

	// Listen lists the sockets the primary binds before any worker starts,
	// each "[NAME=]ADDR" with ADDR one of host:port, :port, unix:/path
	// (optionally ",mode=0660,owner=USER,group=GROUP"), udp:host:port.
	// Workers receive them as fds 3.. in this order. Unnamed listeners are
	// named "listen0", "listen1"… by position. Empty means no sockets,
	// unless the primary was itself socket-activated, in which case the
	// sockets it was given are passed on.
	Listen []string
	// Balance is how connections are spread over workers. Empty means
	// BalanceShared.
	Balance Balance
	// Backlog is the listen backlog of TCP and unix stream sockets. Zero
	// means DefaultBacklog.
	Backlog int

	// Command, when set, makes each worker run this program (argv) instead of
	// the Go work given to New. Workers are started through an exec shim:
	// this executable re-executed, which sets LISTEN_PID to its own pid and
	// execs the command. Such programs must call New (or ExecShim) before
	// doing anything else in main.
	Command []string
	// Dir is the workers' working directory. Empty means the primary's.
	Dir string
	// Env is added to the environment the workers inherit from the primary.
	Env []string

	// Ready is how a worker is judged ready. Empty means ReadyDelay for a
	// Command and ReadyNotify for Go work (which always notifies).
	Ready ReadyMode
	// ReadyDelay is the time alive after which a ReadyDelay worker is ready.
	// Zero means DefaultReadyDelay.
	ReadyDelay time.Duration
	// ReadyTimeout is how long a worker may take to become ready before it is
	// killed and counted as a crash; more than MaxCrashes such workers in a
	// row disable the slot, however long each took. Zero means
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// StartupDelay separates the starts of the first workers. Zero means
	// DefaultStartupDelay; negative means none.
	StartupDelay time.Duration

	// Respawn says whether a worker that exits unasked is started again. The
	// zero value, RespawnAlways, does, which is what servers want.
	Respawn RespawnPolicy
	// RespawnDelay is the pause before the first respawn of a slot; it grows
	// 1.5 times per consecutive crash up to 15s and resets after 30s of
	// healthy running. Zero means DefaultRespawnDelay.
	RespawnDelay time.Duration
	// MaxCrashes and CrashWindow: a slot that crashes more than MaxCrashes
	// times within CrashWindow, or whose workers fail before they are ready
	// more than MaxCrashes times in a row, is DISABLED. Zero means
	// DefaultMaxCrashes and DefaultCrashWindow.
	MaxCrashes  int
	CrashWindow time.Duration

	// StopSignal asks a worker to stop gracefully. Zero means SIGTERM.
	StopSignal syscall.Signal
	// ShutdownTimeout is how long a stopping worker has before SIGKILL, and
	// how long what a worker left running has once the worker ended. Zero
	// means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// MaxSurge is how many replacement workers a rolling restart runs at
	// once. Zero means 1.
	MaxSurge int

	// Hup is what SIGHUP to the primary does. Empty means HupForward.
	Hup HupAction
	// Forward lists the signals the primary passes on to every worker.
	// Nil means SIGUSR1 and SIGWINCH; an empty non-nil slice means none.
	Forward []syscall.Signal

	// PIDDir, when set, receives primary.pid and worker-<slot>.pid, kept
	// current across respawns and removed at exit. It is refused at start
	// when another user could plant links in it: when it is owned by
	// another user than herd's or root, or writable by group or others
	// without being sticky and herd's user's.
	PIDDir string

	// Logger receives herd's own events. Nil means a text logger on stderr.
	Logger *slog.Logger
	// LogFormat formats worker output lines: "text" (the default) prefixes
	// them with the slot, "json" makes each one a JSON object.
	LogFormat string
	// Stdout and Stderr receive worker output (and Stderr herd's own log,
	// when Logger is nil). Nil means os.Stdout and os.Stderr. A slow writer
	// never blocks a worker: output waits in a bounded queue, and lines past
	// its bound are dropped and counted. A failing one (a closed pipe, a
	// full disk) never stops the cluster: its lines are dropped and counted
	// while it fails, the first failure is reported on Stderr, and writing
	// is tried again after a backoff of up to 5s.
	Stdout, Stderr io.Writer

	// OnEvent, when set, receives every lifecycle event in order, on a
	// goroutine of its own: a slow callback delays later events, never the
	// supervisor.
	OnEvent func(Event)

	// Watchdog, when set, is how often workers must prove they are alive: Go
	// workers send IPC heartbeats by themselves; commands get WATCHDOG_USEC
	// and send WATCHDOG=1 on NOTIFY_SOCKET (sd_watchdog_enabled(3)). A
	// worker silent for two intervals is hung: it is replaced (the new
	// worker ready first where possible) and killed. Zero means Go workers
	// are checked every DefaultHeartbeat and commands not at all.
	Watchdog time.Duration

	// MaxRequests recycles a Go worker after it handled this many requests
	// plus a random 0..MaxRequestsJitter, so workers do not recycle
	// together. Zero means no limit. Commands must report their count over
	// IPC; when one has not said hello on its channel 5s after it started,
	// an EventSetupError says, once, that requests will not recycle it.
	MaxRequests, MaxRequestsJitter uint64
	// MaxAge recycles a worker after it lived this long, ± MaxAgeJitter.
	// Zero means no limit.
	MaxAge, MaxAgeJitter time.Duration
	// MemoryLimit recycles a worker whose process tree's resident memory
	// passes this many bytes, checked every MemoryCheckInterval (zero
	// means 5s). Zero means no limit. It works for any command.
	MemoryLimit         uint64
	MemoryCheckInterval time.Duration
	// IdleTimeout makes the Go workers' listeners close connections idle
	// (no read or write) for longer. Zero means never.
	IdleTimeout time.Duration

	// Watch, for development, lists files and directories (with all below
	// them) whose changes start a rolling restart, once they have stayed
	// unchanged for 300ms. Version control, node_modules, __pycache__ and
	// editors' scratch files are left out; at most 1024 directories are
	// watched. Empty means nothing is watched.
	Watch []string

	// Autoscale keeps the workers between MinWorkers and MaxWorkers by
	// their average CPU use: one more when it stays above ScaleUpCPU
	// percent (zero means 75) for ScaleUpAfter (zero means 10s), one fewer
	// when it stays below ScaleDownCPU (zero means 25) for ScaleDownAfter
	// (zero means 60s); never during a rolling restart.
	Autoscale                    bool
	ScaleUpCPU, ScaleDownCPU     float64
	ScaleUpAfter, ScaleDownAfter time.Duration
	// ScaleUpQueue, with Autoscale, also adds a worker when at least this
	// many connections wait in the TCP listeners' accept queues at every
	// reading for ScaleUpAfter while workers accept them, and keeps
	// workers from being removed while they do. Zero means CPU only.
	ScaleUpQueue int

	// Control is the unix socket of the management API. Empty means
	// $XDG_RUNTIME_DIR/herd/<Name>.sock, else /tmp/herd-<uid>/<Name>.sock;
	// "-" turns the API off.
	Control string
	// ControlAddr, when set, also serves the management API on TCP
	// (host:port; a bare :port means loopback). Every request there needs
	// the bearer token read from TokenFile.
	ControlAddr string
	TokenFile   string
	// ECVPath is the path of the ECV endpoint on the control listeners.
	// Empty means "/ecv".
	ECVPath string
	// ECVReadOnly refuses POST /ecv/enable and /ecv/disable. The zero value
	// lets operators take the node out of load-balancer rotation.
	ECVReadOnly bool
	// ECVMonitor, when set, is an app URL the primary probes; the ECV
	// reports unhealthy while it fails.
	ECVMonitor string
	// ECVAddr, when set, serves only GET ECVPath on a port of its own.
	ECVAddr string
	// MetricsAddr, when set, serves only GET /metrics on a port of its own,
	// without a token.
	MetricsAddr string

	// LogFile, when set, receives herd's log and worker output instead of
	// stdout and stderr, rotated at LogMaxSize bytes keeping LogMaxFiles
	// old files. Zero means 100 MiB and 5.
	LogFile     string
	LogMaxSize  int64
	LogMaxFiles int
	// LogLines is how many lines of each slot's output are kept for
	// `herd logs`. Zero means 1000.
	LogLines int
	// StatsInterval, when set, logs a one-line cluster summary this often.
	StatsInterval time.Duration

	// Registry, when set, joins this node to a multi-node cluster through
	// etcd: comma-separated endpoints, the first with a scheme, etcd://,
	// http:// or https:// ("etcd://10.0.0.1:2379,10.0.0.2:2379",
	// "https://etcd.example:2379"). Each worker gets a cluster-wide index
	// (base + slot) and the total, as HERD_CLUSTER_INDEX, _TOTAL and _EPOCH
	// and through Worker.OnRebalance. ClusterKey names the cluster
	// (required with Registry); ClusterEnv separates environments (empty
	// means "production"); InstanceID names this node (empty means a new
	// UUID); ClusterTTL is the lease (zero means 10s, at least 2s).
	Registry string
	// RegistryCA, RegistryCert and RegistryKey are PEM files for an
	// https:// Registry: the authorities to trust (empty means the
	// system's), and a client certificate and its key (both or neither).
	RegistryCA, RegistryCert, RegistryKey string
	// Join creates the registry session, and is required with Registry:
	// herdetcd.Join (package github.com/herd-cluster/herd/membership/herdetcd)
	// for etcd. `herd run` sets it.
	Join        Joiner
	ClusterKey  string
	ClusterEnv  string
	InstanceID  string
	ClusterTTL  time.Duration
	Consistency string // "strict" (the default) or "eventual"
	Order       string // "join" (the default) or "id"
	// ClusterBase and ClusterTotal give a static cluster instead: slot s is
	// index ClusterBase+s of ClusterTotal, epoch 0. ClusterTotal 0 means
	// none.
	ClusterBase, ClusterTotal int
	// OnRebalance is what command workers get when their index or the
	// total changes: "restart" (they are replaced, so they start with the
	// new HERD_CLUSTER_* values; in strict consistency a worker holds its
	// index from its start until its exit is reaped: the old worker is
	// stopped first, and the node acknowledges a plan only once the
	// workers losing an index are gone), "signal:NAME" (the signal; they
	// may ask their index over IPC) or "none". Empty means "restart". Go
	// workers are told over IPC.
	OnRebalance string

	// SingleProcess runs the Go work in this process, with no primary and no
	// workers, for development. It needs Workers <= 1 and no Command.
	SingleProcess bool
}

// withDefaults returns c with zero values replaced by defaults.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		if len(c.Command) > 0 {
			c.Name = filepath.Base(c.Command[0])
		} else {
			c.Name = filepath.Base(os.Args[0])
		}
	}
	if c.Workers == 0 {
		c.Workers = CPUs()
		if c.SingleProcess {
			c.Workers = 1
		}
	}
	if c.MinWorkers == 0 {
		c.MinWorkers = 1
	}
	if c.MaxWorkers == 0 {
		c.MaxWorkers = DefaultMaxWorkers
	}
	if c.Balance == "" {
		c.Balance = BalanceShared
	}
	if c.Backlog == 0 {
		c.Backlog = DefaultBacklog
	}
	if c.Ready == "" {
		c.Ready = ReadyNotify
		if len(c.Command) > 0 {
			c.Ready = ReadyDelay
		}
	}
	if c.ReadyDelay == 0 {
		c.ReadyDelay = DefaultReadyDelay
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = DefaultReadyTimeout
	}
	if c.StartupDelay == 0 {
		c.StartupDelay = DefaultStartupDelay
	} else if c.StartupDelay < 0 {
		c.StartupDelay = 0
	}
	if c.RespawnDelay == 0 {
		c.RespawnDelay = DefaultRespawnDelay
	}
	if c.MaxCrashes == 0 {
		c.MaxCrashes = DefaultMaxCrashes
	}
	if c.CrashWindow == 0 {
		c.CrashWindow = DefaultCrashWindow
	}
	if c.StopSignal == 0 {
		c.StopSignal = syscall.SIGTERM
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.MaxSurge == 0 {
		c.MaxSurge = 1
	}
	if c.Hup == "" {
		c.Hup = HupForward
	}
	if c.Forward == nil {
		c.Forward = []syscall.Signal{syscall.SIGUSR1, syscall.SIGWINCH}
	}
	if c.MemoryCheckInterval == 0 {
		c.MemoryCheckInterval = DefaultMemoryCheck
	}
	if c.ScaleUpCPU == 0 {
		c.ScaleUpCPU = 75
	}
	if c.ScaleDownCPU == 0 {
		c.ScaleDownCPU = 25
	}
	if c.ScaleUpAfter == 0 {
		c.ScaleUpAfter = 10 * time.Second
	}
	if c.ScaleDownAfter == 0 {
		c.ScaleDownAfter = time.Minute
	}
	if c.LogFormat == "" {
		c.LogFormat = "text"
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	c.Stdout, c.Stderr = guardOutput(c.Stdout, c.Stderr, c.LogFormat == "json")
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(c.Stderr, nil))
	}
	return c
}

// Validate reports the first invalid field of c (after defaults) as one line.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Workers < 0:
		return fmt.Errorf("workers: %d is negative", c.Workers)
	case c.MinWorkers < 0 || c.MaxWorkers < 0:
		return fmt.Errorf("min-workers and max-workers must not be negative")
	case c.MinWorkers > c.MaxWorkers:
		return fmt.Errorf("min-workers %d is above max-workers %d", c.MinWorkers, c.MaxWorkers)
	case c.Workers < c.MinWorkers || c.Workers > c.MaxWorkers:
		return fmt.Errorf("workers %d is outside min-workers %d and max-workers %d", c.Workers, c.MinWorkers, c.MaxWorkers)
	case c.Balance != BalanceShared && c.Balance != BalanceReusePort:
		return fmt.Errorf("balance: %q is neither shared nor reuseport", c.Balance)
	case c.Ready != ReadyNotify && c.Ready != ReadyDelay:
		return fmt.Errorf("ready: %q is neither notify nor delay", c.Ready)
	case c.Hup != HupForward && c.Hup != HupReload:
		return fmt.Errorf("hup: %q is neither forward nor reload", c.Hup)
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("log-format: %q is neither text nor json", c.LogFormat)
	case c.Backlog < 0:
		return fmt.Errorf("backlog: %d is negative", c.Backlog)
	case c.MaxSurge < 0:
		return fmt.Errorf("max-surge: %d is negative", c.MaxSurge)
	case c.MaxCrashes < 0:
		return fmt.Errorf("max-crashes: %d is negative", c.MaxCrashes)
	case c.ReadyDelay < 0 || c.ReadyTimeout < 0 || c.RespawnDelay < 0 ||
		c.CrashWindow < 0 || c.ShutdownTimeout < 0:
		return fmt.Errorf("durations must not be negative")
	case c.Watchdog < 0 || c.MaxAge < 0 || c.MaxAgeJitter < 0 || c.MemoryCheckInterval < 0 ||
		c.IdleTimeout < 0 || c.ScaleUpAfter < 0 || c.ScaleDownAfter < 0 || c.StatsInterval < 0:
		return fmt.Errorf("durations must not be negative")
	case c.MaxAgeJitter > 0 && c.MaxAgeJitter >= c.MaxAge:
		return fmt.Errorf("max-age-jitter %s must be below max-age %s", c.MaxAgeJitter, c.MaxAge)
	case c.ScaleUpQueue < 0:
		return fmt.Errorf("scale-up-queue: %d is negative", c.ScaleUpQueue)
	case c.ScaleDownCPU < 0 || c.ScaleDownCPU >= c.ScaleUpCPU:
		return fmt.Errorf("scale-down-cpu %.0f%% must be at least 0 and below scale-up-cpu %.0f%%", c.ScaleDownCPU, c.ScaleUpCPU)
	case c.Registry != "" && c.ClusterKey == "":
		return fmt.Errorf("registry needs a cluster-key")
	case c.Registry != "" && c.Join == nil:
		return fmt.Errorf("registry needs Config.Join: set it to herdetcd.Join (github.com/herd-cluster/herd/membership/herdetcd)")
	case (c.RegistryCA != "" || c.RegistryCert != "" || c.RegistryKey != "") && !strings.HasPrefix(c.Registry, "https://"):
		return fmt.Errorf("registry TLS files need an https:// registry")
	case (c.RegistryCert == "") != (c.RegistryKey == ""):
		return fmt.Errorf("registry client certificate needs both the certificate and the key")
	case c.Registry != "" && c.ClusterTotal > 0:
		return fmt.Errorf("choose a registry or a static cluster-base/cluster-total, not both")
	case c.ClusterTotal < 0 || c.ClusterBase < 0 || (c.ClusterTotal > 0 && c.ClusterBase+c.Workers > c.ClusterTotal):
		return fmt.Errorf("cluster-base %d + %d workers does not fit in cluster-total %d", c.ClusterBase, c.Workers, c.ClusterTotal)
	case c.Consistency != "" && c.Consistency != "strict" && c.Consistency != "eventual":
		return fmt.Errorf("consistency: %q is neither strict nor eventual", c.Consistency)
	case c.Order != "" && c.Order != "join" && c.Order != "id":
		return fmt.Errorf("order: %q is neither join nor id", c.Order)
	case c.OnRebalance != "" && c.OnRebalance != "restart" && c.OnRebalance != "none" && !strings.HasPrefix(c.OnRebalance, "signal:"):
		return fmt.Errorf("on-rebalance: %q is none of restart, signal:NAME, none", c.OnRebalance)
	case c.SingleProcess && (c.Workers > 1 || len(c.Command) > 0):
		return fmt.Errorf("single-process mode runs one Go worker in-process: it takes neither workers > 1 nor a command")
	}
	return c.validateLimits()
}
