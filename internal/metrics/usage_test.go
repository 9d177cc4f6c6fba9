package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herd-cluster/herd/internal/supervisor"
)

func active(slot, pid int) supervisor.WorkerStats {
	return supervisor.WorkerStats{Slot: slot, PID: pid, Status: supervisor.StatusActive}
}

// slotCPU scrapes herd_worker_cpu_seconds_total{slot="0"} through Handler.
func slotCPU(t *testing.T, reg *prometheus.Registry, want string) {
	t.Helper()
	scrape(t, reg, `
# HELP herd_worker_cpu_seconds_total CPU time used by the workers of a slot and their descendants, past ones included.
# TYPE herd_worker_cpu_seconds_total counter
herd_worker_cpu_seconds_total{slot="0"} `+want+"\n", "herd_worker_cpu_seconds_total")
}

func TestMemoryBySlot(t *testing.T) {
	_, reg, f := newTest(t)
	f.setSlots(active(0, 10), active(1, 11), supervisor.WorkerStats{Slot: 2, Status: supervisor.StatusCrashed})
	f.setCPU(10, 64)
	f.setCPU(11, 2)
	scrape(t, reg, `
# HELP herd_worker_resident_memory_bytes Resident memory of a slot's current worker and its descendants.
# TYPE herd_worker_resident_memory_bytes gauge
herd_worker_resident_memory_bytes{slot="0"} 6.7108864e+07
herd_worker_resident_memory_bytes{slot="1"} 2.097152e+06
`, "herd_worker_resident_memory_bytes")
}

// TestCPUAcrossReplacement replaces slot 0's worker by a rollout, then by
// a crash nobody reported, and checks its CPU counter never goes back.
func TestCPUAcrossReplacement(t *testing.T) {
	m, reg, f := newTest(t)
	f.setSlots(active(0, 10))
	m.Observe(ev(supervisor.EventStarted, 0, 0, 10, 1, "start"))
	f.setCPU(10, 5)
	slotCPU(t, reg, "5")

	// A replacement runs beside the old worker, which still serves.
	m.Observe(ev(supervisor.EventStarted, 0, 0, 20, 2, "rollout"))
	f.setCPU(20, 1)
	slotCPU(t, reg, "6")

	// It takes over; the old one stops, then exits.
	f.setSlots(active(0, 20))
	f.setCPU(10, 5.5)
	slotCPU(t, reg, "6.5")
	m.Observe(supervisor.Event{Type: supervisor.EventExited, Slot: 0, PID: 10, Gen: 1, Reason: "rollout"})
	f.forget(10)
	f.setCPU(20, 2)
	slotCPU(t, reg, "7.5")

	// The new worker dies and another takes its slot, all between two
	// scrapes and with no events: its last measured 2s stay counted.
	f.forget(20)
	f.setSlots(active(0, 30))
	f.setCPU(30, 0.5)
	slotCPU(t, reg, "8")

	// A tree's CPU seen going down (a descendant reparented away) does not
	// lower the counter.
	f.setCPU(30, 0.25)
	slotCPU(t, reg, "8")

	f.mu.Lock()
	last := f.asked[len(f.asked)-1]
	f.mu.Unlock()
	if len(last) != 1 || last[0] != 30 {
		t.Errorf("last scrape measured pids %v; want only [30]", last)
	}
}

func TestNilUsage(t *testing.T) {
	f := &fakePool{}
	reg := prometheus.NewRegistry()
	if _, err := New(reg, f, nil); err != nil {
		t.Fatal(err)
	}
	ws := active(0, 10)
	ws.RSS = 4096
	f.setSlots(ws)
	scrape(t, reg, `
# HELP herd_worker_resident_memory_bytes Resident memory of a slot's current worker and its descendants.
# TYPE herd_worker_resident_memory_bytes gauge
herd_worker_resident_memory_bytes{slot="0"} 4096
`, "herd_worker_resident_memory_bytes", "herd_worker_cpu_seconds_total")
}
