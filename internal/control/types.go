package control

import (
	"time"

	"github.com/herd-cluster/herd/internal/logs"
	"github.com/herd-cluster/herd/internal/procstat"
	"github.com/herd-cluster/herd/internal/saturation"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// StatsDoc is the document of GET /stats.
type StatsDoc struct {
	Primary PrimaryStats  `json:"primary"`
	Cluster ClusterStats  `json:"cluster"`
	Workers []WorkerStats `json:"workers"`
	// Membership is this node's share of a multi-node cluster; absent when
	// the node is in none.
	Membership *MembershipStats `json:"membership,omitempty"`
	// Listeners are the accept queues of the TCP listeners, in --listen
	// order; absent when there are none (and in the document workers get
	// over IPC).
	Listeners []ListenerStats `json:"listeners,omitempty"`
}

// ListenerStats is the accept queue of one TCP listener: connections the
// kernel completed that no worker has accepted yet.
type ListenerStats struct {
	Name string `json:"name"`
	// QueueDepth is how many connections wait now; QueueLimit how many may
	// wait before new ones are dropped (the backlog, capped by the kernel
	// at net.core.somaxconn), summed over a reuseport group's sockets.
	QueueDepth int `json:"queue_depth"`
	QueueLimit int `json:"queue_limit"`
	// Overflows counts the connections the listener's sockets dropped
	// since the primary started, chiefly for a full accept queue.
	Overflows uint64 `json:"overflows"`
	// Stuck is true while connections wait and none has been accepted for
	// 2s.
	Stuck bool `json:"stuck"`
	// Slots are the per-slot queues of a reuseport listener; absent for a
	// shared socket.
	Slots []SlotQueue `json:"slots,omitempty"`
}

// SlotQueue is the accept queue of one slot's own socket.
type SlotQueue struct {
	Slot       int `json:"slot"`
	QueueDepth int `json:"queue_depth"`
	QueueLimit int `json:"queue_limit"`
}

// MembershipStats is this node's place in a multi-node cluster.
type MembershipStats struct {
	Instance string `json:"instance"`
	Index    int    `json:"index"` // the node's base; -1 while it holds nothing
	Threads  int    `json:"threads"`
	Total    int    `json:"total"`
	Epoch    int64  `json:"epoch"`
}

// PrimaryStats describes the primary process.
type PrimaryStats struct {
	PID            int     `json:"pid"`
	UptimeSeconds  float64 `json:"uptime_seconds"`
	TotalRestarts  uint64  `json:"total_restarts"`
	TotalCrashes   uint64  `json:"total_crashes"`
	WorkersSpawned uint64  `json:"workers_spawned"`
	Version        string  `json:"version"`
	Name           string  `json:"name"`
	// RestartsByReason counts restarts by reason: crash, rollout,
	// recycle, hung, scale.
	RestartsByReason map[string]uint64 `json:"restarts_by_reason"`
	// Warnings are the mistakes of setup the primary recognised ("slot 1:
	// herd already listens on :8080; …"); absent when there are none.
	Warnings []string `json:"warnings,omitempty"`
}

// ClusterStats counts the slots by state.
type ClusterStats struct {
	Workers           int  `json:"workers"`
	Active            int  `json:"active"`
	Starting          int  `json:"starting"`
	Crashed           int  `json:"crashed"`
	Disabled          int  `json:"disabled"`
	MinWorkers        int  `json:"min_workers"`
	MaxWorkers        int  `json:"max_workers"`
	ShutdownRequested bool `json:"shutdown_requested"`
	RestartInProgress bool `json:"restart_in_progress"`
}

// WorkerStats describes one slot and its current worker.
type WorkerStats struct {
	Slot            int        `json:"slot"`
	PID             int        `json:"pid"`
	Generation      int        `json:"generation"`
	Status          string     `json:"status"`
	Port            int        `json:"port"`
	StartedAt       *time.Time `json:"started_at"` // null when no worker runs
	UptimeSeconds   float64    `json:"uptime_seconds"`
	ExitStatus      int        `json:"exit_status"`
	CrashCount      int        `json:"crash_count"`       // crashes since the primary started
	RecentCrashes   int        `json:"crashes_in_window"` // crashes within the crash window
	RespawnDisabled bool       `json:"respawn_disabled"`
	RSSBytes        uint64     `json:"rss_bytes"`
	CPUPercent      float64    `json:"cpu_percent"`
	Ready           bool       `json:"ready"`
	StatusText      string     `json:"status_text,omitempty"`
	Requests        uint64     `json:"requests"`
	LastHeartbeat   *time.Time `json:"last_heartbeat"` // null before any
	// ClusterIndex is the slot's cluster-wide index (-1: none); absent
	// when the node is in no multi-node cluster.
	ClusterIndex *int `json:"cluster_index,omitempty"`
}

// Event is one lifecycle event as GET /events sends it. Type "dropped" is
// herd's notice that Dropped events were lost because the client read too
// slowly.
type Event struct {
	Type    string    `json:"type"`
	Time    time.Time `json:"time"`
	Slot    int       `json:"slot"`
	PID     int       `json:"pid"`
	Gen     int       `json:"gen"`
	Status  int       `json:"status"`
	Signal  string    `json:"signal,omitempty"`
	Crash   bool      `json:"crash"`
	Reason  string    `json:"reason,omitempty"`
	Workers int       `json:"workers"`
	Delay   float64   `json:"delay_seconds,omitempty"`
	Err     string    `json:"err,omitempty"`
	Dropped uint64    `json:"dropped,omitempty"`
}

// EventDropped is the Type of the notice that events were dropped.
const EventDropped = "dropped"

// LogLine is one line of worker output as GET /logs sends it. Stream
// "herd" marks herd's notice that Dropped lines were lost because the
// client read too slowly.
type LogLine struct {
	Time    time.Time `json:"time"`
	Slot    int       `json:"slot"`
	PID     int       `json:"pid"`
	Stream  string    `json:"stream"`
	Text    string    `json:"text"`
	Dropped uint64    `json:"dropped,omitempty"`
}

func toEvent(e supervisor.Event) Event {
	ev := Event{
		Type: string(e.Type), Time: e.Time, Slot: e.Slot, PID: e.PID, Gen: e.Gen,
		Status: e.Status, Signal: e.Signal, Crash: e.Crash, Reason: e.Reason,
		Workers: e.Workers, Delay: e.Delay.Seconds(),
	}
	if e.Err != nil {
		ev.Err = e.Err.Error()
	}
	return ev
}

func toLogLine(l logs.Line) LogLine {
	return LogLine{Time: l.Time, Slot: l.Slot, PID: l.PID, Stream: l.Stream.String(), Text: l.Text}
}

// statsDoc builds the /stats document of st, with the workers' usage
// measured in one pass and the listeners' queues when the primary has
// them.
func (s *Server) statsDoc(st supervisor.Stats, now time.Time) StatsDoc {
	doc := NewStatsDoc(st, now, s.cfg.Name, s.cfg.Version, s.c.Usage(workerPIDs(st), statsUsageAge))
	if q, ok := s.c.(Queues); ok {
		doc.Listeners = listenerDocs(q.Listeners())
	}
	return doc
}

// statsUsageAge is how old the workers' usage in GET /stats and the stats
// line may be: polling /stats often costs no pass over /proc per request.
const statsUsageAge = time.Second

// workerPIDs returns the pids of the workers st lists.
func workerPIDs(st supervisor.Stats) []int {
	pids := make([]int, 0, len(st.Slots))
	for _, w := range st.Slots {
		if w.PID > 0 {
			pids = append(pids, w.PID)
		}
	}
	return pids
}

// listenerDocs is the listeners' entry of the /stats document.
func listenerDocs(ls []saturation.Listener) []ListenerStats {
	out := make([]ListenerStats, 0, len(ls))
	for _, l := range ls {
		d := ListenerStats{Name: l.Name, QueueDepth: l.Depth, QueueLimit: l.Limit, Overflows: l.Drops, Stuck: l.Stuck}
		for _, s := range l.Sockets {
			d.Slots = append(d.Slots, SlotQueue{Slot: s.Slot, QueueDepth: s.Depth, QueueLimit: s.Limit})
		}
		out = append(out, d)
	}
	return out
}

// NewStatsDoc builds the /stats document of st: the one GET /stats sends
// and workers receive over IPC. usage, when not nil, gives the RSS and CPU
// percent of the workers' process trees by pid; nil takes them from st.
func NewStatsDoc(st supervisor.Stats, now time.Time, name, version string, usage map[int]procstat.Usage) StatsDoc {
	doc := StatsDoc{
		Primary: PrimaryStats{
			PID: pid, UptimeSeconds: seconds(now.Sub(st.Started)), TotalRestarts: st.TotalRestarts,
			TotalCrashes: st.TotalCrashes, WorkersSpawned: st.Spawned, Version: version, Name: name,
			RestartsByReason: st.Restarts, Warnings: st.Warnings,
		},
		Cluster: ClusterStats{
			Workers: st.Workers, Active: st.Active, Starting: st.Starting, Crashed: st.Crashed,
			Disabled: st.Disabled, MinWorkers: st.MinWorkers, MaxWorkers: st.MaxWorkers,
			ShutdownRequested: st.ShutdownRequested, RestartInProgress: st.RestartInProgress,
		},
		Workers: make([]WorkerStats, 0, len(st.Slots)),
	}
	if v := st.Cluster; v != nil {
		doc.Membership = &MembershipStats{Instance: v.Instance, Index: v.Index, Threads: v.Threads, Total: v.Total, Epoch: v.Epoch}
	}
	for _, w := range st.Slots {
		doc.Workers = append(doc.Workers, workerDoc(w, st.Cluster != nil, usage))
	}
	return doc
}

// workerDoc is one slot's entry of the /stats document.
func workerDoc(w supervisor.WorkerStats, clustered bool, usage map[int]procstat.Usage) WorkerStats {
	ws := WorkerStats{
		Slot: w.Slot, PID: w.PID, Generation: w.Gen, Status: string(w.Status), Port: w.Port,
		UptimeSeconds: seconds(w.Uptime), ExitStatus: w.ExitStatus, CrashCount: w.Crashes,
		RecentCrashes: w.CrashCount, RespawnDisabled: w.RespawnDisabled, Ready: w.Ready,
		StatusText: w.StatusText, Requests: w.Requests, RSSBytes: w.RSS, CPUPercent: w.CPUPercent,
	}
	if !w.StartedAt.IsZero() {
		t := w.StartedAt
		ws.StartedAt = &t
	}
	if !w.LastHeartbeat.IsZero() {
		t := w.LastHeartbeat
		ws.LastHeartbeat = &t
	}
	if clustered {
		i := w.ClusterIndex
		ws.ClusterIndex = &i
	}
	if u, ok := usage[w.PID]; ok && w.PID > 0 {
		ws.RSSBytes, ws.CPUPercent = u.RSS, u.CPUPercent
	}
	return ws
}

// seconds returns d in seconds, to the millisecond.
func seconds(d time.Duration) float64 {
	return float64(d.Milliseconds()) / 1000
}
