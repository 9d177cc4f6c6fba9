package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/herd-cluster/herd/internal/procstat"
	"github.com/herd-cluster/herd/internal/supervisor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is when the fake events start.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakePool is a Source and a usage function whose answers tests set.
type fakePool struct {
	mu    sync.Mutex
	stats supervisor.Stats
	err   error
	usage map[int]procstat.Usage
	asked [][]int // pids asked of the usage function
}

func (f *fakePool) Stats(ctx context.Context) (supervisor.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.stats
	st.Slots = append([]supervisor.WorkerStats(nil), f.stats.Slots...)
	return st, f.err
}

func (f *fakePool) Usage(pids []int) map[int]procstat.Usage {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, pids)
	out := map[int]procstat.Usage{}
	for _, pid := range pids {
		if u, ok := f.usage[pid]; ok {
			out[pid] = u
		}
	}
	return out
}

// setSlots sets the pool's slots; Workers counts them.
func (f *fakePool) setSlots(slots ...supervisor.WorkerStats) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats = supervisor.Stats{Workers: len(slots), Slots: slots}
}

// setCPU sets the CPU seconds (and RSS, a MiB per CPU second) of pid's tree.
func (f *fakePool) setCPU(pid int, cpu float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.usage[pid] = procstat.Usage{CPUSeconds: cpu, RSS: uint64(cpu * (1 << 20)), Procs: 1}
}

func (f *fakePool) forget(pid int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.usage, pid)
}

// newTest returns metrics on a fresh registry, fed by a fake pool.
func newTest(t *testing.T) (*Metrics, *prometheus.Registry, *fakePool) {
	t.Helper()
	f := &fakePool{usage: map[int]procstat.Usage{}}
	reg := prometheus.NewRegistry()
	m, err := New(reg, f, f.Usage)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg, f
}

// scrape compares what Handler serves for the named metrics with want.
func scrape(t *testing.T, reg *prometheus.Registry, want string, names ...string) {
	t.Helper()
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	defer http.DefaultClient.CloseIdleConnections()
	if err := testutil.ScrapeAndCompare(srv.URL, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

// histogram returns the sample count and sum of the histogram name with
// the label values given as name=value pairs.
func histogram(t *testing.T, reg *prometheus.Registry, name string, labels ...string) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i, lp := range m.GetLabel() {
				if i >= len(labels) || lp.GetName()+"="+lp.GetValue() != labels[i] {
					continue metrics
				}
			}
			return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
		}
	}
	t.Fatalf("no histogram %s%v", name, labels)
	return 0, 0
}

// ev makes an event at t0+at.
func ev(typ supervisor.EventType, at time.Duration, slot, pid, gen int, reason string) supervisor.Event {
	return supervisor.Event{Type: typ, Time: t0.Add(at), Slot: slot, PID: pid, Gen: gen, Reason: reason}
}
