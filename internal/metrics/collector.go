package metrics

import (
	"context"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herd-cluster/herd/internal/procstat"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// statuses are the values of herd_workers' state label, all present at
// every scrape.
var statuses = []supervisor.Status{
	supervisor.StatusStarting, supervisor.StatusActive, supervisor.StatusStopping,
	supervisor.StatusCrashed, supervisor.StatusRespawning, supervisor.StatusDisabled,
}

// poolCollector reads the pool's state at scrape time.
type poolCollector struct {
	src   Source
	usage UsageFunc
	cpu   *cpuBook

	workers, desired, rss, cpuSeconds *prometheus.Desc
}

func newPoolCollector(src Source, usage UsageFunc, cpu *cpuBook) *poolCollector {
	return &poolCollector{
		src: src, usage: usage, cpu: cpu,
		workers: prometheus.NewDesc("herd_workers",
			"Worker slots by status.", []string{"state"}, nil),
		desired: prometheus.NewDesc("herd_workers_desired",
			"Worker slots wanted (those not being scaled away).", nil, nil),
		rss: prometheus.NewDesc("herd_worker_resident_memory_bytes",
			"Resident memory of a slot's current worker and its descendants.", []string{"slot"}, nil),
		cpuSeconds: prometheus.NewDesc("herd_worker_cpu_seconds_total",
			"CPU time used by the workers of a slot and their descendants, past ones included.", []string{"slot"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.workers
	ch <- c.desired
	ch <- c.rss
	ch <- c.cpuSeconds
}

// Collect implements prometheus.Collector. When the pool does not answer
// within scrapeTimeout, the scrape fails.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	st, err := c.src.Stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.workers, fmt.Errorf("metrics: pool stats: %w", err))
		return
	}
	byStatus := make(map[supervisor.Status]int, len(statuses))
	for _, ws := range st.Slots {
		byStatus[ws.Status]++
	}
	for _, s := range statuses {
		ch <- constMetric(c.workers, prometheus.GaugeValue, float64(byStatus[s]), string(s))
	}
	ch <- constMetric(c.desired, prometheus.GaugeValue, float64(st.Workers))
	c.collectUsage(ch, st)
}

// collectUsage sends the per-slot memory and CPU.
func (c *poolCollector) collectUsage(ch chan<- prometheus.Metric, st supervisor.Stats) {
	var usage map[int]procstat.Usage
	var cpu map[int]float64
	if c.usage != nil {
		pids := c.cpu.live(st)
		usage = c.usage(pids)
		c.cpu.update(pids, usage, st)
		cpu = c.cpu.totals()
	}
	for _, ws := range st.Slots {
		slot := strconv.Itoa(ws.Slot)
		if ws.PID > 0 {
			rss := ws.RSS // the pool's last measurement, without a usage func
			if u, ok := usage[ws.PID]; ok {
				rss = u.RSS
			}
			ch <- constMetric(c.rss, prometheus.GaugeValue, float64(rss), slot)
		}
		if cpu != nil {
			ch <- constMetric(c.cpuSeconds, prometheus.CounterValue, cpu[ws.Slot], slot)
		}
	}
}

// constMetric is prometheus.MustNewConstMetric without the panic: a metric
// that cannot be made fails the scrape instead.
func constMetric(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}
