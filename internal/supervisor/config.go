// Package supervisor keeps a pool of worker processes alive: it starts them,
// respawns them with backoff, disables slots that crash too fast, rolls them
// over one by one, scales them and stops them gracefully.
//
// One goroutine (Pool.Run) owns all state; every other goroutine (process
// waiters, timers, notifications, callers) posts a closure to it. The pool
// starts processes through a Launcher, so its state machine is tested against
// fake processes and its Linux side against real ones.
package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"time"
)

// Config is what the pool needs to know; the root package fills it from the
// public herd.Config, with every default already applied.
type Config struct {
	Workers, MinWorkers, MaxWorkers int

	// ReadyByNotify waits for a READY=1 notification; otherwise a worker is
	// ready once alive for ReadyDelay.
	ReadyByNotify bool
	ReadyDelay    time.Duration
	ReadyTimeout  time.Duration
	StartupDelay  time.Duration

	Respawn      bool
	RespawnDelay time.Duration
	MaxCrashes   int
	CrashWindow  time.Duration

	StopSignal      syscall.Signal
	ShutdownTimeout time.Duration
	MaxSurge        int

	// Heartbeat, when set, is how often workers prove they are alive
	// (WATCHDOG=1 or IPC heartbeats, through Beat); a ready worker silent
	// for two intervals is hung: replaced, and killed once its replacement
	// is ready or after two more intervals.
	Heartbeat time.Duration

	// Recycling: a worker is replaced gracefully (the new one ready first)
	// when it has handled MaxRequests (+ up to MaxRequestsJitter) requests,
	// lived MaxAge (± MaxAgeJitter), or its process tree's RSS passes
	// MemoryLimit bytes. Zero turns each off. One recycle runs at a time.
	MaxRequests, MaxRequestsJitter uint64
	MaxAge, MaxAgeJitter           time.Duration
	MemoryLimit                    uint64

	// Autoscale, when Enabled, keeps the workers between MinWorkers and
	// MaxWorkers by their average CPU use, from ReportUsage.
	Autoscale Autoscale

	// Follow is how workers follow a new cluster view (SetClusterView).
	// The zero value, FollowNone, leaves them running.
	Follow Follow

	// Rand returns a number in [0, n); nil means math/rand. Tests make
	// jitter deterministic with it.
	Rand func(n int64) int64

	// PIDDir, if set, receives worker-<slot>.pid files.
	PIDDir string
	// Port is reported in worker stats (every worker serves the same one).
	Port int

	// Ancestor finds the closest ancestor of pid for which known is true,
	// so that a worker's child may notify for it. Nil means only workers'
	// own notifications count.
	Ancestor func(pid int, known func(int) bool) (int, bool)

	Logger *slog.Logger
	// Emit receives every event, in order, on the pool's goroutine; it must
	// not block (the root package queues them for slow consumers).
	Emit func(Event)
}

// The backoff rules of respawn.
const (
	backoffFactor  = 1.5
	backoffCap     = 15 * time.Second
	healthyRunTime = 30 * time.Second
)

// Status is the state of a slot.
type Status string

// The statuses of a slot, as ecewo names them.
const (
	StatusStarting   Status = "STARTING"
	StatusActive     Status = "ACTIVE"
	StatusStopping   Status = "STOPPING"
	StatusCrashed    Status = "CRASHED"
	StatusRespawning Status = "RESPAWNING"
	StatusDisabled   Status = "DISABLED"
)

// Errors callers tell apart.
var (
	// ErrShutdown is returned by requests made while the pool stops.
	ErrShutdown = errors.New("cluster is shutting down")
	// ErrRolloutInProgress refuses a second rolling restart.
	ErrRolloutInProgress = errors.New("a rolling restart is already in progress")
	// ErrNotRunning is returned by requests made before Run or after it
	// returned.
	ErrNotRunning = errors.New("cluster is not running")
)

// NoWorkerReadyError ends Run when every slot failed before any worker was
// ever ready: the program cannot start, and restarting it will not help.
type NoWorkerReadyError struct {
	// Reason says how the slots ended ("every slot is disabled").
	Reason string
}

func (e *NoWorkerReadyError) Error() string {
	return fmt.Sprintf("no worker ever became ready: %s", e.Reason)
}

// RangeError refuses a scale outside the configured bounds.
type RangeError struct{ Want, Min, Max int }

func (e *RangeError) Error() string {
	return fmt.Sprintf("workers %d is outside min-workers %d and max-workers %d", e.Want, e.Min, e.Max)
}

// SlotError names a slot that does not exist.
type SlotError struct{ Slot int }

func (e *SlotError) Error() string { return fmt.Sprintf("no worker slot %d", e.Slot) }

// Stats is a snapshot of the pool, with ecewo's fields and a few more.
type Stats struct {
	Started                  time.Time
	Workers                  int // slots, ecewo's total_workers
	Active, Crashed          int
	Disabled, Starting       int
	MinWorkers, MaxWorkers   int
	TotalRestarts            uint64
	TotalCrashes             uint64
	Spawned                  uint64
	ShutdownRequested        bool
	RestartInProgress        bool
	Slots                    []WorkerStats
	RolloutsDone, RolloutsKO uint64
	// Restarts counts worker starts after a slot's first, by reason:
	// crash, rollout, recycle, hung, scale.
	Restarts map[string]uint64
	// Cluster is this node's share of a multi-node cluster; nil when the
	// node is in none.
	Cluster *ClusterView
	// Warnings are the mistakes of setup the primary recognised, such as
	// an app binding herd's port itself; the pool leaves it nil.
	Warnings []string
}

// ClusterView is this node's share of a multi-node cluster: slot s holds
// the cluster-wide index Index+s while s < Threads and Index >= 0.
type ClusterView struct {
	Instance string
	Index    int // the node's base; -1 when it holds nothing
	Threads  int
	Total    int
	Epoch    int64
}

// SlotIndex is the cluster-wide index slot s holds in v, or -1.
func (v ClusterView) SlotIndex(s int) int {
	if v.Index < 0 || s >= v.Threads {
		return -1
	}
	return v.Index + s
}

// WorkerStats describes one slot and its current worker.
type WorkerStats struct {
	Slot       int
	PID        int // 0 when no process runs in the slot
	Gen        int
	Status     Status
	Port       int
	StartedAt  time.Time
	Uptime     time.Duration
	Ready      bool
	ExitStatus int // of the last exit; 0 before any
	CrashCount int // crashes within the crash window
	Crashes    int // crashes since start
	// RespawnDisabled is true for a DISABLED slot.
	RespawnDisabled bool
	// StatusText is the last STATUS= the worker sent.
	StatusText string
	// Requests is the count the worker last reported; LastHeartbeat when
	// it last proved alive (zero before any).
	Requests      uint64
	LastHeartbeat time.Time
	// RSS and CPUPercent are from the last ReportUsage.
	RSS        uint64
	CPUPercent float64
	// ClusterIndex is the cluster-wide index the slot holds, -1 for none
	// (or when the node is in no multi-node cluster).
	ClusterIndex int
}
