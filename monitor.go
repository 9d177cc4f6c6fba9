package herd

import (
	"context"
	"time"

	"github.com/herd-cluster/herd/internal/procstat"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// monitorInterval is how often the primary measures its workers: every
// MemoryCheckInterval, and often enough that autoscaling sees at least five
// samples per window.
func (c *Cluster) monitorInterval() time.Duration {
	d := c.cfg.MemoryCheckInterval
	if c.cfg.Autoscale {
		d = min(d, c.cfg.ScaleUpAfter/5, c.cfg.ScaleDownAfter/5)
	}
	return max(d, 10*time.Millisecond)
}

// monitor measures the RSS and CPU of every worker's process tree, in one
// pass over /proc, and reports them to the pool until ctx is done. It runs
// only when something needs the figures between scrapes: a memory limit or
// autoscaling.
func (c *Cluster) monitor(ctx context.Context, pool *supervisor.Pool, sampler *procstat.Sampler) {
	if c.cfg.MemoryLimit == 0 && !c.cfg.Autoscale {
		return
	}
	t := time.NewTicker(c.monitorInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pids, err := pool.PIDs(ctx)
		if err != nil {
			return
		}
		usage := make(map[int]supervisor.Usage, len(pids))
		for pid, u := range sampler.SampleAll(pids) {
			usage[pid] = supervisor.Usage{RSS: u.RSS, CPUPercent: u.CPUPercent}
		}
		pool.ReportUsage(usage)
	}
}
