package metrics

import "github.com/prometheus/client_golang/prometheus"

// Reasons for which lines of output are dropped.
const (
	DropQueueFull  = "queue_full"  // the output fell behind the workers
	DropWriteError = "write_error" // the destination failed: closed pipe, full disk
)

// LogDropsFunc returns the lines of output dropped so far, by reason.
type LogDropsFunc func() map[string]uint64

// logDrops is herd_log_lines_dropped_total{reason}, read at scrape time.
type logDrops struct {
	desc *prometheus.Desc
	read LogDropsFunc
}

// NewLogDrops returns the collector of herd_log_lines_dropped_total, the
// lines of worker output and of herd's own log that were dropped, by
// reason, as read returns them.
func NewLogDrops(read LogDropsFunc) prometheus.Collector {
	return &logDrops{
		desc: prometheus.NewDesc("herd_log_lines_dropped_total",
			"Lines of worker output and of herd's log that were dropped, by reason (queue_full, write_error).",
			[]string{"reason"}, nil),
		read: read,
	}
}

// Describe implements prometheus.Collector.
func (c *logDrops) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *logDrops) Collect(ch chan<- prometheus.Metric) {
	got := c.read()
	for _, reason := range []string{DropQueueFull, DropWriteError} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(got[reason]), reason)
	}
}
