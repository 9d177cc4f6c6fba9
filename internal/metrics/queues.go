package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"

	"github.com/herd-cluster/herd/internal/saturation"
)

// ListenersFunc reads the accept queues of the TCP listeners;
// (*saturation.Watcher).Listeners is one.
type ListenersFunc = func() []saturation.Listener

// queueCollector reads the listeners' accept queues at scrape time, and
// the network namespace's listen overflow counters.
type queueCollector struct {
	listeners ListenersFunc
	netstat   func() (procfs.ProcNetstat, error)

	depth, limit, overflows, stuck *prometheus.Desc
	nsOverflows, nsDrops           *prometheus.Desc
}

// NewQueues returns the collector of the accept-queue metrics:
//
//   - herd_listen_queue_depth{listener}: connections waiting to be accepted;
//   - herd_listen_queue_limit{listener}: how many may wait;
//   - herd_listen_overflows_total{listener}: connections the listener's
//     sockets dropped, chiefly because the queue was full;
//   - herd_listen_queue_stuck{listener}: 1 while connections wait and none
//     has been accepted for 2s;
//   - herd_netns_listen_overflows_total, herd_netns_listen_drops_total: the
//     kernel's ListenOverflows and ListenDrops, which count every listener
//     of the primary's network namespace, herd's or not.
func NewQueues(listeners ListenersFunc) prometheus.Collector {
	fs, fsErr := procfs.NewDefaultFS()
	label := []string{"listener"}
	return &queueCollector{
		listeners: listeners,
		netstat: func() (procfs.ProcNetstat, error) {
			if fsErr != nil {
				return procfs.ProcNetstat{}, fsErr
			}
			self, err := fs.Self()
			if err != nil {
				return procfs.ProcNetstat{}, err
			}
			return self.Netstat()
		},
		depth: prometheus.NewDesc("herd_listen_queue_depth",
			"Connections the kernel completed that no worker has accepted yet.", label, nil),
		limit: prometheus.NewDesc("herd_listen_queue_limit",
			"Connections that may wait in the accept queue before new ones are dropped.", label, nil),
		overflows: prometheus.NewDesc("herd_listen_overflows_total",
			"Connections the listener's sockets dropped since the primary started, chiefly for a full accept queue.", label, nil),
		stuck: prometheus.NewDesc("herd_listen_queue_stuck",
			"1 while connections wait on the listener and none has been accepted for 2s.", label, nil),
		nsOverflows: prometheus.NewDesc("herd_netns_listen_overflows_total",
			"Accept queue overflows of every listener in the primary's network namespace (the kernel's ListenOverflows).", nil, nil),
		nsDrops: prometheus.NewDesc("herd_netns_listen_drops_total",
			"Connections dropped by every listener in the primary's network namespace (the kernel's ListenDrops).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.depth, c.limit, c.overflows, c.stuck, c.nsOverflows, c.nsDrops} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. The namespace counters are left
// out when /proc does not give them.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.listeners() {
		stuck := 0.0
		if l.Stuck {
			stuck = 1
		}
		ch <- constMetric(c.depth, prometheus.GaugeValue, float64(l.Depth), l.Name)
		ch <- constMetric(c.limit, prometheus.GaugeValue, float64(l.Limit), l.Name)
		ch <- constMetric(c.overflows, prometheus.CounterValue, float64(l.Drops), l.Name)
		ch <- constMetric(c.stuck, prometheus.GaugeValue, stuck, l.Name)
	}
	ns, err := c.netstat()
	if err != nil {
		return
	}
	if v := ns.TcpExt.ListenOverflows; v != nil {
		ch <- constMetric(c.nsOverflows, prometheus.CounterValue, *v)
	}
	if v := ns.TcpExt.ListenDrops; v != nil {
		ch <- constMetric(c.nsDrops, prometheus.CounterValue, *v)
	}
}
