// Package envvar names every environment variable herd sets or reads.
//
// Keeping them in one file makes the contract with workers reviewable in one
// place; README.md documents the same table for users.
package envvar

// Set by the primary in every worker's environment.
const (
	// WorkerID is the worker's slot, 0..N-1, kept across respawns.
	WorkerID = "HERD_WORKER_ID"
	// WorkerCount is the number of slots when the worker was started.
	WorkerCount = "HERD_WORKER_COUNT"
	// Generation counts how many times the slot has been started, from 1.
	Generation = "HERD_GENERATION"
	// PrimaryPID is the pid of the supervising primary.
	PrimaryPID = "HERD_PRIMARY_PID"
	// Port is the port of the first TCP listener, when there is one.
	Port = "HERD_PORT"
	// Name is the cluster's name (--name).
	Name = "HERD_NAME"
	// IPC is the fd number of the worker's channel to the primary
	// (docs/PROTOCOL.md).
	IPC = "HERD_IPC"
	// ClusterIndex, ClusterTotal and ClusterEpoch are the worker's
	// cluster-wide index (-1: do no work), the cluster's total and the
	// epoch of that view, with multi-node membership.
	ClusterIndex = "HERD_CLUSTER_INDEX"
	ClusterTotal = "HERD_CLUSTER_TOTAL"
	ClusterEpoch = "HERD_CLUSTER_EPOCH"
)

// The systemd protocols herd speaks with its workers (and, for socket
// activation, with its own parent).
const (
	ListenFDs     = "LISTEN_FDS"
	ListenFDNames = "LISTEN_FDNAMES"
	ListenPID     = "LISTEN_PID"
	NotifySocket  = "NOTIFY_SOCKET"
	WatchdogUSec  = "WATCHDOG_USEC"
	WatchdogPID   = "WATCHDOG_PID"
)

// Shim marks a process started as the exec shim: it sets LISTEN_PID to its
// own pid and replaces itself with the worker command.
const Shim = "HERD_SHIM"

// Keeper marks a primary's keeper: a process that ends what the primary's
// workers left running if the primary dies without stopping them. Its
// value names the primary ("PID:START:CGROUP_DIR").
const Keeper = "HERD_KEEPER"

// ConfigPrefix prefixes the environment variable of every `herd run` flag:
// --ready-timeout is HERD_READY_TIMEOUT.
const ConfigPrefix = "HERD_"
