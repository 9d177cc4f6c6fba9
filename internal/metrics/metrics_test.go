package metrics

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herd-cluster/herd/internal/supervisor"
)

func TestWorkersByState(t *testing.T) {
	_, reg, f := newTest(t)
	f.setSlots(
		supervisor.WorkerStats{Slot: 0, PID: 10, Status: supervisor.StatusActive},
		supervisor.WorkerStats{Slot: 1, PID: 11, Status: supervisor.StatusActive},
		supervisor.WorkerStats{Slot: 2, PID: 12, Status: supervisor.StatusStarting},
		supervisor.WorkerStats{Slot: 3, Status: supervisor.StatusDisabled},
	)
	scrape(t, reg, `
# HELP herd_workers Worker slots by status.
# TYPE herd_workers gauge
herd_workers{state="ACTIVE"} 2
herd_workers{state="CRASHED"} 0
herd_workers{state="DISABLED"} 1
herd_workers{state="RESPAWNING"} 0
herd_workers{state="STARTING"} 1
herd_workers{state="STOPPING"} 0
# HELP herd_workers_desired Worker slots wanted (those not being scaled away).
# TYPE herd_workers_desired gauge
herd_workers_desired 4
`, "herd_workers", "herd_workers_desired")
}

func TestStatsErrorFailsScrape(t *testing.T) {
	_, reg, f := newTest(t)
	f.err = supervisor.ErrNotRunning
	rec := httptest.NewRecorder()
	Handler(reg).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("scrape with a failing source: got status %d; want 500", rec.Code)
	}
}

func TestRestartsCrashesExits(t *testing.T) {
	m, reg, _ := newTest(t)
	events := []supervisor.Event{
		ev(supervisor.EventStarted, 0, 0, 10, 1, "start"),
		ev(supervisor.EventStarted, 0, 1, 11, 1, "start"),
		ev(supervisor.EventStarted, 0, 2, 12, 1, "scale"), // a new slot: no restart
		{Type: supervisor.EventExited, Slot: 0, PID: 10, Gen: 1, Crash: true, Reason: "crash"},
		ev(supervisor.EventStarted, time.Second, 0, 20, 2, "respawn"),
		{Type: supervisor.EventExited, Slot: 0, Gen: 3, Crash: true, Reason: "start failed"},
		ev(supervisor.EventStarted, 2*time.Second, 1, 21, 2, "rollout"),
		{Type: supervisor.EventExited, Slot: 1, PID: 11, Gen: 1, Reason: "rollout"},
		ev(supervisor.EventStarted, 3*time.Second, 1, 31, 3, "recycle"),
		{Type: supervisor.EventExited, Slot: 1, PID: 21, Gen: 2, Reason: "recycle"},
		ev(supervisor.EventStarted, 4*time.Second, 2, 22, 2, "hung"),
		{Type: supervisor.EventExited, Slot: 2, PID: 12, Gen: 1, Reason: "hung"},
		ev(supervisor.EventStarted, 5*time.Second, 2, 32, 3, "scale"), // scaled away and back
		{Type: supervisor.EventExited, Slot: 2, PID: 22, Gen: 2, Crash: true, Reason: "not ready in time"},
		{Type: supervisor.EventExited, Slot: 2, PID: 32, Gen: 3, Reason: "worker stopped itself"},
		{Type: supervisor.EventExited, Slot: 0, PID: 20, Gen: 2, Reason: "shutdown"},
	}
	for _, e := range events {
		m.Observe(e)
	}
	scrape(t, reg, `
# HELP herd_worker_restarts_total Workers started to replace an earlier one of their slot, by reason.
# TYPE herd_worker_restarts_total counter
herd_worker_restarts_total{reason="crash"} 1
herd_worker_restarts_total{reason="hung"} 1
herd_worker_restarts_total{reason="recycle"} 1
herd_worker_restarts_total{reason="rollout"} 1
herd_worker_restarts_total{reason="scale"} 1
# HELP herd_worker_crashes_total Workers that exited without being asked to, or failed to start or to become ready.
# TYPE herd_worker_crashes_total counter
herd_worker_crashes_total 3
# HELP herd_worker_exits_total Worker exits, by kind.
# TYPE herd_worker_exits_total counter
herd_worker_exits_total{kind="crash"} 1
herd_worker_exits_total{kind="hung"} 1
herd_worker_exits_total{kind="ready_timeout"} 1
herd_worker_exits_total{kind="self_stopped"} 1
herd_worker_exits_total{kind="start_failed"} 1
herd_worker_exits_total{kind="stopped"} 3
`, "herd_worker_restarts_total", "herd_worker_crashes_total", "herd_worker_exits_total")
}

func TestCountersStartAtZero(t *testing.T) {
	m, _, _ := newTest(t)
	for _, r := range restartReasons {
		if got := testutil.ToFloat64(m.restarts.WithLabelValues(r)); got != 0 {
			t.Errorf("restarts{reason=%q} = %v; want 0", r, got)
		}
	}
	if got := testutil.CollectAndCount(m.restarts); got != len(restartReasons) {
		t.Errorf("restart series = %d; want %d", got, len(restartReasons))
	}
	if got := testutil.CollectAndCount(m.exits); got != len(exitKinds) {
		t.Errorf("exit series = %d; want %d", got, len(exitKinds))
	}
}

func TestReadyDuration(t *testing.T) {
	m, reg, _ := newTest(t)
	for _, e := range []supervisor.Event{
		ev(supervisor.EventStarted, 0, 0, 10, 1, "start"),
		ev(supervisor.EventStarted, 0, 1, 11, 1, "start"),
		ev(supervisor.EventStarted, 0, 2, 12, 1, "start"),
		ev(supervisor.EventReady, 1500*time.Millisecond, 0, 10, 1, ""),
		ev(supervisor.EventExited, time.Second, 1, 11, 1, "crash"), // never ready
		ev(supervisor.EventReady, 250*time.Millisecond, 2, 12, 1, ""),
		ev(supervisor.EventReady, 9*time.Second, 0, 10, 1, ""),           // twice: once counted
		ev(supervisor.EventReady, 9*time.Second, 1, 11, 1, ""),           // after its exit
		ev(supervisor.EventReady, 9*time.Second, 5, 99, 1, ""),           // never started
		ev(supervisor.EventStarted, 10*time.Second, 1, 11, 2, "respawn"), // pid reused
		ev(supervisor.EventReady, 12*time.Second, 1, 11, 2, ""),
	} {
		m.Observe(e)
	}
	n, sum := histogram(t, reg, "herd_worker_ready_duration_seconds")
	if n != 3 || sum != 3.75 {
		t.Errorf("ready durations: got %d samples summing %vs; want 3 summing 3.75s", n, sum)
	}
	m.mu.Lock()
	left := len(m.started)
	m.mu.Unlock()
	if left != 0 {
		t.Errorf("%d start times kept after every worker was ready or gone; want 0", left)
	}
}

func TestRolloutDuration(t *testing.T) {
	m, reg, _ := newTest(t)
	m.Observe(supervisor.Event{Type: supervisor.EventRolloutStarted, Slot: -1})
	m.Observe(supervisor.Event{Type: supervisor.EventRolloutFinished, Slot: -1, Delay: 42 * time.Second})
	m.Observe(supervisor.Event{Type: supervisor.EventRolloutFinished, Slot: -1, Delay: 8 * time.Second})
	m.Observe(supervisor.Event{Type: supervisor.EventRolloutFailed, Slot: -1, Delay: 500 * time.Millisecond, Err: errors.New("boom")})
	for _, c := range []struct {
		outcome string
		n       uint64
		sum     float64
	}{{"finished", 2, 50}, {"failed", 1, 0.5}} {
		n, sum := histogram(t, reg, "herd_rollout_duration_seconds", "outcome="+c.outcome)
		if n != c.n || sum != c.sum {
			t.Errorf("rollouts %s: got %d summing %vs; want %d summing %vs", c.outcome, n, sum, c.n, c.sum)
		}
	}
}

func TestSetCluster(t *testing.T) {
	m, reg, _ := newTest(t)
	m.SetCluster(2, 5, 17)
	scrape(t, reg, `
# HELP herd_cluster_epoch Epoch of the cluster membership.
# TYPE herd_cluster_epoch gauge
herd_cluster_epoch 17
# HELP herd_cluster_index This node's index in the cluster membership.
# TYPE herd_cluster_index gauge
herd_cluster_index 2
# HELP herd_cluster_total Nodes in the cluster membership.
# TYPE herd_cluster_total gauge
herd_cluster_total 5
`, "herd_cluster_index", "herd_cluster_total", "herd_cluster_epoch")
}

func TestPrimaryCollectors(t *testing.T) {
	_, reg, _ := newTest(t)
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Errorf("%s: got %d series, %v; want 1", name, n, err)
		}
	}
}

func TestNewErrors(t *testing.T) {
	f := &fakePool{}
	if _, err := New(prometheus.NewRegistry(), nil, f.Usage); err == nil {
		t.Error("New without a source: got nil error; want one")
	}
	reg := prometheus.NewRegistry()
	clash := prometheus.NewGauge(prometheus.GaugeOpts{Name: "herd_cluster_epoch", Help: "Epoch of the cluster membership."})
	if err := reg.Register(clash); err != nil {
		t.Fatal(err)
	}
	_, err := New(reg, f, f.Usage)
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Fatalf("New on a registry with a clash: got %v; want an AlreadyRegisteredError", err)
	}
	// Nothing of the failed New stayed registered.
	reg.Unregister(clash)
	if _, err := New(reg, f, f.Usage); err != nil {
		t.Errorf("New after the clash was removed: %v", err)
	}
}
