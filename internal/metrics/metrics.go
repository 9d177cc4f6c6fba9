// Package metrics exports herd's Prometheus metrics. They are kept in the
// primary, which outlives every worker, so that counters survive worker
// restarts and recycles; they go to a registry the caller passes in, never
// to the global default one.
//
// Event-driven metrics (restarts, crashes, exits, rollout and ready
// durations) are fed by Observe. The state of the pool (workers by status,
// desired workers, per-slot memory and CPU) is read at scrape time from a
// Source and a usage function.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/herd-cluster/herd/internal/procstat"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// Source is where the scrape-time metrics come from; *supervisor.Pool is
// one.
type Source interface {
	Stats(ctx context.Context) (supervisor.Stats, error)
}

// UsageFunc measures the process trees of pids, leaving out those that do
// not run; (*procstat.Sampler).SampleAll is one.
type UsageFunc = func(pids []int) map[int]procstat.Usage

// scrapeTimeout bounds the wait for the pool's Stats during a scrape.
const scrapeTimeout = 2 * time.Second

// durationBuckets suit durations from 10ms to 10 minutes.
var durationBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// Metrics holds herd's collectors. Make one with New.
type Metrics struct {
	restarts *prometheus.CounterVec
	crashes  prometheus.Counter
	exits    *prometheus.CounterVec
	rollouts *prometheus.HistogramVec
	ready    prometheus.Histogram

	clusterIndex, clusterTotal, clusterEpoch prometheus.Gauge

	pool *poolCollector
	cpu  *cpuBook

	mu      sync.Mutex
	started map[int]time.Time // by pid, until ready or exited
}

// New makes herd's metrics and registers them, with the Go and process
// collectors of the primary, on reg. src is asked for the pool's Stats at
// every scrape; usage, if not nil, measures the workers' process trees for
// the per-slot memory and CPU metrics (nil leaves out the CPU counter and
// takes memory from the Stats). New fails, registering nothing, when src
// is nil or a metric is already registered on reg.
func New(reg prometheus.Registerer, src Source, usage UsageFunc) (*Metrics, error) {
	if reg == nil || src == nil {
		return nil, errors.New("metrics: registry and source are required")
	}
	m := newMetrics(src, usage)
	var done []prometheus.Collector
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			for _, d := range done {
				reg.Unregister(d)
			}
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
		done = append(done, c)
	}
	return m, nil
}

func newMetrics(src Source, usage UsageFunc) *Metrics {
	cpu := newCPUBook()
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	m := &Metrics{
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herd_worker_restarts_total",
			Help: "Workers started to replace an earlier one of their slot, by reason.",
		}, []string{"reason"}),
		crashes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herd_worker_crashes_total",
			Help: "Workers that exited without being asked to, or failed to start or to become ready.",
		}),
		exits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herd_worker_exits_total",
			Help: "Worker exits, by kind.",
		}, []string{"kind"}),
		rollouts: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herd_rollout_duration_seconds",
			Help:    "Duration of rolling restarts, by outcome.",
			Buckets: durationBuckets,
		}, []string{"outcome"}),
		ready: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herd_worker_ready_duration_seconds",
			Help:    "Time from a worker's start to its readiness.",
			Buckets: durationBuckets,
		}),
		clusterIndex: gauge("herd_cluster_index", "This node's index in the cluster membership."),
		clusterTotal: gauge("herd_cluster_total", "Nodes in the cluster membership."),
		clusterEpoch: gauge("herd_cluster_epoch", "Epoch of the cluster membership."),
		pool:         newPoolCollector(src, usage, cpu),
		cpu:          cpu,
		started:      make(map[int]time.Time),
	}
	for _, r := range restartReasons {
		m.restarts.WithLabelValues(r)
	}
	for _, k := range exitKinds {
		m.exits.WithLabelValues(k)
	}
	for _, o := range []string{outcomeFinished, outcomeFailed} {
		m.rollouts.WithLabelValues(o)
	}
	return m
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.restarts, m.crashes, m.exits, m.rollouts, m.ready,
		m.clusterIndex, m.clusterTotal, m.clusterEpoch, m.pool,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
}

// SetCluster sets the membership gauges: this node's index among total
// nodes, at membership epoch.
func (m *Metrics) SetCluster(index, total, epoch int) {
	m.clusterIndex.Set(float64(index))
	m.clusterTotal.Set(float64(total))
	m.clusterEpoch.Set(float64(epoch))
}

// Handler serves the metrics gathered from reg in the Prometheus text
// format (or another format the scraper asks for). A collector's error
// fails the scrape with status 500 rather than serving partial figures.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.HTTPErrorOnError,
		// Every scrape asks the pool's goroutine for Stats and reads
		// /proc: do not let scrapes pile up.
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}
