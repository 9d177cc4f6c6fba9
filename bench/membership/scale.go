package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herd-cluster/herd/membership"
	"github.com/herd-cluster/herd/membership/etcdtest"
)

// scaleResult is what one scale run measured.
type scaleResult struct {
	mode        membership.Consistency
	joiners     int
	batch       int
	share       int
	converge    time.Duration
	plans       int64
	commits     int64
	convBytes   float64 // etcd to the instances during convergence, per instance
	steadyBytes float64 // etcd to the instances in steady state, per instance and second
	steadyCPU   float64 // percent of a core, per instance
	etcdCPU     float64 // etcd's, percent of a core, per instance
}

// counter is a slog handler that counts the sequencers' plans and commits.
type counter struct{ plans, commits atomic.Int64 }

func (c *counter) Enabled(context.Context, slog.Level) bool { return true }
func (c *counter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *counter) WithGroup(string) slog.Handler            { return c }
func (c *counter) Handle(_ context.Context, r slog.Record) error {
	if os.Getenv("MEMBERSHIP_BENCH_LOG") != "" && r.Level >= slog.LevelInfo {
		var b strings.Builder
		r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s", a); return true })
		fmt.Fprintf(os.Stderr, "%s %s%s\n", r.Time.Format("15:04:05.000"), r.Message, b.String())
	}
	switch {
	case strings.HasPrefix(r.Message, "plan published"):
		c.plans.Add(1)
	case strings.HasPrefix(r.Message, "committed"):
		c.commits.Add(1)
	}
	return nil
}

// scaleRun starts one instance, waits for its view, then joins joiners
// more, batch at once (the next batch once all hold one view), and
// measures how long until every instance holds the same
// view, what etcd sent them meanwhile, and then, in steady state for
// steady, etcd's traffic to them and the CPU they and etcd use. Instances
// reach etcd through proxy, which counts the bytes.
func scaleRun(e *etcdProc, proxy *etcdtest.Proxy, mode membership.Consistency, joiners int, so scaleOpts) (scaleResult, error) {
	batch, steady := so.batch, so.steady
	res := scaleResult{mode: mode, joiners: joiners, batch: min(batch, joiners), share: max(so.share, 1)}
	cnt := &counter{}
	c := newCluster([]string{proxy.Addr()}, mode, so.ttl)
	if so.share > 1 {
		c.share = so.share
	}
	c.logger = slog.New(cnt)
	defer c.closeAll()
	if _, err := c.join(); err != nil { // the seed, and its first commit
		return res, err
	}
	joined := c.names()
	var ss []*membership.Session
	var names []string
	for range joiners {
		name, s, err := c.add()
		if err != nil {
			return res, err
		}
		ss, names = append(ss, s), append(names, name)
	}
	_, before := proxy.Bytes()
	plans, commits := cnt.plans.Load(), cnt.commits.Load()
	start := time.Now()
	for len(ss) > 0 { // in waves of at most batch at once, each converged before the next
		k := min(batch, len(ss))
		var wg sync.WaitGroup
		for _, s := range ss[:k] {
			wg.Go(func() { s.Join(context.Background()) })
		}
		wg.Wait()
		joined = append(joined, names[:k]...)
		ss, names = ss[k:], names[k:]
		if err := c.b.wait(joined, len(joined), 2*time.Minute); err != nil {
			return res, err
		}
	}
	res.converge = time.Since(start)
	_, after := proxy.Bytes()
	n := float64(joiners + 1)
	res.plans, res.commits = cnt.plans.Load()-plans, cnt.commits.Load()-commits
	res.convBytes = float64(after-before) / n
	<-time.After(2 * time.Second) // stragglers settle: part of the measurement's definition
	_, b0 := proxy.Bytes()
	cpu0, ecpu0 := selfCPU(), etcdCPU(e)
	t0 := time.Now()
	<-time.After(steady) // the steady state measured
	_, b1 := proxy.Bytes()
	cpu1, ecpu1 := selfCPU(), etcdCPU(e)
	d := time.Since(t0).Seconds()
	res.steadyBytes = float64(b1-b0) / n / d
	res.steadyCPU = 100 * (cpu1 - cpu0).Seconds() / d / n
	res.etcdCPU = 100 * (ecpu1 - ecpu0).Seconds() / d / n
	return res, nil
}

// etcdCPU is the etcd child's CPU time so far, or 0 if /proc says nothing.
func etcdCPU(e *etcdProc) time.Duration {
	d, err := e.cpu()
	if err != nil {
		return 0
	}
	return d
}

// reportScale prints the scale table.
func reportScale(rs []scaleResult) {
	fmt.Printf("\n| consistency | instances | joining, at once | per connection | converged in | plans | commits | etcd → each, converging | etcd → each, steady | CPU each, steady | etcd CPU per instance |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		fmt.Printf("| %s | %d | %d, %d | %d | %s | %d | %d | %.1f KiB | %.0f B/s | %.3f %% | %.3f %% |\n",
			r.mode, r.joiners+1, r.joiners, r.batch, r.share, r.converge.Round(time.Millisecond), r.plans, r.commits,
			r.convBytes/1024, r.steadyBytes, r.steadyCPU, r.etcdCPU)
	}
}
