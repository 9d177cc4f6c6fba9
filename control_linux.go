package herd

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/logs"
	"github.com/herd-cluster/herd/internal/metrics"
	"github.com/herd-cluster/herd/internal/procstat"
	"github.com/herd-cluster/herd/internal/saturation"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// controlCluster is the primary as the management API sees it.
type controlCluster struct {
	pool    *supervisor.Pool
	events  *eventQueue
	sampler *procstat.Sampler   // the primary's one sampler of /proc
	advice  *advisor            // for /stats: the setup errors recognised
	queues  *saturation.Watcher // for /stats: the accept queues
}

var _ control.Cluster = controlCluster{}

func (a controlCluster) Stats(ctx context.Context) (supervisor.Stats, error) {
	st, err := a.pool.Stats(ctx)
	st.Warnings = a.advice.Warnings()
	return st, err
}

func (a controlCluster) StartRestart(ctx context.Context, slot int) (<-chan error, error) {
	return a.pool.StartRestart(ctx, slot)
}

func (a controlCluster) Scale(ctx context.Context, n int) error { return a.pool.Scale(ctx, n) }

func (a controlCluster) Signal(ctx context.Context, sig syscall.Signal, slot int) error {
	return a.pool.Signal(ctx, sig, slot)
}

func (a controlCluster) Stop(timeout time.Duration) {
	if timeout <= 0 {
		a.pool.Shutdown(false)
		return
	}
	a.pool.ShutdownWithin(timeout)
}

func (a controlCluster) Events() (<-chan supervisor.Event, func() uint64, func()) {
	return a.events.subscribe()
}

// usageMaxAge is how old a sample of the workers' usage a metrics scrape
// may answer from: scrapes share the primary's passes over /proc instead
// of making one each.
const usageMaxAge = time.Second

func (a controlCluster) Usage(pids []int, maxAge time.Duration) map[int]procstat.Usage {
	return a.sampler.Recent(pids, maxAge)
}

func (a controlCluster) Listeners() []saturation.Listener { return a.queues.Listeners() }

// newMetrics registers the cluster's Prometheus collectors on a registry of
// the primary's own and returns its /metrics handler.
func (c *Cluster) newMetrics(drops metrics.LogDropsFunc, queues *saturation.Watcher) (*metrics.Metrics, http.Handler, error) {
	reg := prometheus.NewRegistry()
	usage := func(pids []int) map[int]procstat.Usage { return c.sampler.Recent(pids, usageMaxAge) }
	m, err := metrics.New(reg, c, usage)
	if err != nil {
		return nil, nil, fmt.Errorf("herd: metrics: %w", err)
	}
	for _, col := range []prometheus.Collector{metrics.NewLogDrops(drops), metrics.NewQueues(queues.Listeners)} {
		if err := reg.Register(col); err != nil {
			return nil, nil, fmt.Errorf("herd: metrics: %w", err)
		}
	}
	return m, metrics.Handler(reg), nil
}

// startControl starts the management API, the ECV and metrics listeners
// and the periodic stats line; the returned stop ends them.
func (c *Cluster) startControl(pool *supervisor.Pool, events *eventQueue, sink *logs.Sink, port int, promHandler http.Handler, queues *saturation.Watcher) (func(), error) {
	cfg := c.cfg
	if cfg.Control == control.Off && cfg.ControlAddr == "" && cfg.ECVAddr == "" && cfg.MetricsAddr == "" {
		return func() {}, nil
	}
	cl := controlCluster{pool: pool, events: events, sampler: c.sampler, advice: c.advice.Load(), queues: queues}
	srv, err := control.New(control.Config{
		Name: cfg.Name, Version: version(), Socket: cfg.Control, TCPAddr: cfg.ControlAddr,
		TokenFile: cfg.TokenFile, ECVPath: cfg.ECVPath, ECVReadOnly: cfg.ECVReadOnly,
		ECVMonitor: cfg.ECVMonitor, ECVAddr: cfg.ECVAddr, MetricsAddr: cfg.MetricsAddr,
		Metrics: promHandler, Port: port, Logs: sink, Logger: cfg.Logger,
		Command: cfg.Command, Dir: cfg.Dir,
	}, cl)
	if err != nil {
		return nil, fmt.Errorf("herd: %w", err)
	}
	c.control.Store(srv)
	if allInterfaces(cfg.ControlAddr) {
		cfg.Logger.Warn("the management API listens on every interface: anyone who can reach this port and holds the token controls the cluster; prefer a loopback or private address",
			"control_addr", cfg.ControlAddr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ctx); err != nil {
			cfg.Logger.Error("control API", "err", err)
		}
	})
	wg.Go(func() { control.LogStats(ctx, cl, cfg.Logger, cfg.StatsInterval) })
	return func() {
		cancel()
		wg.Wait()
		c.control.Store(nil)
	}, nil
}

// statsDoc is the GET /stats document of the cluster now.
func (c *Cluster) statsDoc(ctx context.Context) (control.StatsDoc, error) {
	st, err := c.Stats(ctx)
	if err != nil {
		return control.StatsDoc{}, err
	}
	return control.NewStatsDoc(st, time.Now(), c.cfg.Name, version(), nil), nil
}

// version is the main module's version, for /stats.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
