// Command membership measures herd's multi-node membership on an etcd run
// in a child process (embedded, or the etcd binary with -etcd-binary),
// every instance in this process with its own client, over loopback: how
// long a graceful join or leave takes to reach every instance (eventual
// and strict), how long a killed instance takes to be dropped, and, for
// clusters of each size in -scale, how long that many instances joining a
// running cluster at once take to converge, with etcd's traffic to each
// instance and the CPU each uses, while converging and in steady state.
// The instances reach etcd through a proxy that counts the bytes.
//
//	go run ./bench/membership [-n 5] [-rounds 20] [-kills 3] [-ttl 2s] [-scale 100,1000] [-batch 100] [-scale-ttl 10s] [-steady 10s]
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/herd-cluster/herd/membership"
	"github.com/herd-cluster/herd/membership/etcdtest"
)

func main() {
	if dir := os.Getenv(serveEnv); dir != "" {
		serveEtcd(dir)
	}
	n := flag.Int("n", 5, "instances in the join/leave cluster")
	rounds := flag.Int("rounds", 20, "joins and leaves measured per consistency (0: none)")
	ttl := flag.Duration("ttl", 2*time.Second, "lease TTL of the kill runs")
	kills := flag.Int("kills", 3, "kills measured per consistency")
	scale := flag.String("scale", "100,1000", "comma-separated numbers of instances joining a running cluster at once")
	scaleTTL := flag.Duration("scale-ttl", 10*time.Second, "lease TTL of the scale runs")
	steady := flag.Duration("steady", 10*time.Second, "how long the steady state is measured")
	batch := flag.Int("batch", 100, "instances of a scale run that join at once; the next ones join once they are registered")
	share := flag.Int("share", 1, "instances of a scale run per etcd client (gRPC connection)")
	bin := flag.String("etcd-binary", "", "run this etcd binary instead of an embedded etcd")
	modes := flag.String("modes", "eventual,strict", "consistencies of the scale runs")
	profile := flag.String("cpuprofile", "", "write this process's CPU profile (the instances') to this file")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "membership bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt)
		go func() { <-stop; pprof.StopCPUProfile(); os.Exit(1) }()
	}
	sizes, err := parseSizes(*scale)
	if err == nil {
		err = run(*n, *rounds, *kills, *ttl, scaleOpts{sizes, parseModes(*modes), *batch, *share, *scaleTTL, *steady}, *bin)
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "membership bench:", err)
		os.Exit(1)
	}
}

// parseModes parses -modes.
func parseModes(s string) []membership.Consistency {
	var ms []membership.Consistency
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			ms = append(ms, membership.Consistency(f))
		}
	}
	return ms
}

// parseSizes parses -scale.
func parseSizes(s string) ([]int, error) {
	var sizes []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-scale: %q is not a positive number", f)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// run starts etcd and runs every measurement.
// scaleOpts are the settings of the scale runs.
type scaleOpts struct {
	sizes       []int
	modes       []membership.Consistency
	batch       int
	share       int
	ttl, steady time.Duration
}

func run(n, rounds, kills int, ttl time.Duration, so scaleOpts, bin string) error {
	dir, err := os.MkdirTemp("", "membership-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	e, err := startEtcd(dir, bin)
	if err != nil {
		return err
	}
	defer e.stop()
	proxy, err := etcdtest.NewProxy(e.endpoints[0])
	if err != nil {
		return err
	}
	defer proxy.Close()
	if rounds > 0 {
		if err := latencies(e.endpoints, n, rounds, kills, ttl); err != nil {
			return err
		}
	}
	var rs []scaleResult
	for _, size := range so.sizes {
		for _, mode := range so.modes {
			r, err := scaleRun(e, proxy, mode, size, so)
			if err != nil {
				return fmt.Errorf("%d instances, %s: %w", size, mode, err)
			}
			rs = append(rs, r)
			reportScale(rs[len(rs)-1:])
		}
	}
	if len(rs) > 0 {
		reportScale(rs)
	}
	return nil
}

// latencies measures joins, leaves and kills in a small cluster.
func latencies(eps []string, n, rounds, kills int, ttl time.Duration) error {
	fmt.Printf("| measurement | consistency | n | median | p90 | max |\n|---|---|---|---|---|---|\n")
	for _, mode := range []membership.Consistency{membership.Eventual, membership.Strict} {
		joins, leaves, err := joinLeave(eps, mode, n, rounds)
		if err != nil {
			return err
		}
		report("graceful join, all hold the new view", mode, n+1, joins)
		report("graceful leave, all hold the new view", mode, n, leaves)
		dropped, err := killRuns(eps, mode, n, kills, ttl)
		if err != nil {
			return err
		}
		report(fmt.Sprintf("killed instance dropped (TTL %s)", ttl), mode, n, dropped)
	}
	return nil
}

// idle separates a join from the next leave. etcd serves a watch that
// starts in the past (as an election candidate's wait for its predecessor
// does) from a loop that runs every 100ms; leaving the sequencer within
// 100ms of a join can wait for that loop.
const idle = 200 * time.Millisecond

// report prints one row of the table.
func report(what string, mode membership.Consistency, n int, ds []time.Duration) {
	slices.Sort(ds)
	q := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	fmt.Printf("| %s | %s | %d | %s | %s | %s |\n", what, mode, n,
		q(0.5).Round(10*time.Microsecond), q(0.9).Round(10*time.Microsecond), ds[len(ds)-1].Round(10*time.Microsecond))
}

// board keeps every instance's latest view and wakes waiters on change.
type board struct {
	strict  bool
	mu      sync.Mutex
	latest  map[string]membership.View
	changed chan struct{}
}

func newBoard(mode membership.Consistency) *board {
	return &board{strict: mode == membership.Strict, latest: map[string]membership.View{}, changed: make(chan struct{})}
}

// observer returns the rebalance callback of instance name.
func (b *board) observer(name string) func(membership.View) {
	return func(v membership.View) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.latest[name] = v
		close(b.changed)
		b.changed = make(chan struct{})
	}
}

// wait waits until every instance in names has a view with total and,
// in strict consistency, the same epoch. With many instances it looks at
// most every millisecond per hundred instances: each look reads every
// view, and the instances must not wait on the board.
func (b *board) wait(names []string, total int, timeout time.Duration) error {
	deadline := time.After(timeout)
	pace := time.Duration(len(names)/100) * time.Millisecond
	for {
		b.mu.Lock()
		ok, ch := b.agree(names, total), b.changed
		b.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-deadline:
			return fmt.Errorf("%d instances not on a view of total %d within %s", len(names), total, timeout)
		}
		if pace > 0 {
			<-time.After(pace)
		}
	}
}

// agree reports whether names all hold indices in views of total that
// list every one of them, and, in strict consistency, of one epoch (in
// eventual consistency an instance's epoch is the revision it last saw
// the member list at).
func (b *board) agree(names []string, total int) bool {
	var epoch int64
	for _, name := range names {
		v, ok := b.latest[name]
		if !ok || v.Index < 0 || v.Total != total || len(v.Members) != len(names) || (b.strict && epoch != 0 && v.Epoch != epoch) {
			return false
		}
		epoch = v.Epoch
	}
	return true
}

// cluster is a set of instances of one cluster key on one board.
type cluster struct {
	eps    []string
	share  int // instances per etcd client; 0: each its own
	shared []*clientv3.Client
	key    string
	mode   membership.Consistency
	ttl    time.Duration
	b      *board
	live   map[string]*membership.Session
	count  int
	logger *slog.Logger
}

func newCluster(eps []string, mode membership.Consistency, ttl time.Duration) *cluster {
	return &cluster{eps: eps, key: fmt.Sprintf("bench-%s-%d", mode, time.Now().UnixNano()), mode: mode,
		ttl: ttl, b: newBoard(mode), live: map[string]*membership.Session{}, logger: slog.New(slog.DiscardHandler)}
}

// add creates one instance, not joined.
func (c *cluster) add() (string, *membership.Session, error) {
	c.count++
	name := fmt.Sprintf("i%04d", c.count)
	conn := membership.WithEndpoints(c.eps...)
	if c.share > 0 {
		if (c.count-1)%c.share == 0 {
			cli, err := clientv3.New(clientv3.Config{Endpoints: c.eps, Logger: zap.NewNop()})
			if err != nil {
				return "", nil, err
			}
			c.shared = append(c.shared, cli)
		}
		conn = membership.WithClient(c.shared[len(c.shared)-1])
	}
	s, err := membership.New(c.key, conn, membership.WithInstanceID(name),
		membership.WithConsistency(c.mode), membership.WithTTL(c.ttl), membership.WithOnRebalance(c.b.observer(name)),
		membership.WithLogger(c.logger))
	if err != nil {
		return "", nil, err
	}
	c.live[name] = s
	return name, s, nil
}

// names returns the live instances.
func (c *cluster) names() []string {
	var ns []string
	for n := range c.live {
		ns = append(ns, n)
	}
	return ns
}

// join adds and joins one instance and returns how long until every live
// instance holds the view with it.
func (c *cluster) join() (time.Duration, error) {
	_, s, err := c.add()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := s.Join(context.Background()); err != nil {
		return 0, err
	}
	err = c.b.wait(c.names(), len(c.live), c.ttl+10*time.Second) // a strict cluster's first commit waits a TTL
	return time.Since(start), err
}

// leave makes one instance leave (or, if kill, close without revoking)
// and returns how long until every other holds the view without it.
func (c *cluster) leave(kill bool) (time.Duration, error) {
	names := c.names()
	slices.SortFunc(names, cmp.Compare)
	name := names[0] // the oldest: every other instance shifts
	s := c.live[name]
	delete(c.live, name)
	start := time.Now()
	if kill {
		s.Close()
	} else if err := s.Leave(context.Background()); err != nil {
		return 0, err
	}
	err := c.b.wait(c.names(), len(c.live), 4*c.ttl+10*time.Second)
	return time.Since(start), err
}

// closeAll ends every instance, all at once, without leaving: their
// leases expire.
func (c *cluster) closeAll() {
	var wg sync.WaitGroup
	for _, s := range c.live {
		wg.Go(func() { s.Close() })
	}
	wg.Wait()
	for _, cli := range c.shared {
		cli.Close()
	}
}

// joinLeave measures rounds joins and leaves in a cluster of n.
func joinLeave(eps []string, mode membership.Consistency, n, rounds int) (joins, leaves []time.Duration, err error) {
	c := newCluster(eps, mode, 10*time.Second)
	defer c.closeAll()
	for range n {
		if _, err := c.join(); err != nil {
			return nil, nil, err
		}
	}
	for range rounds {
		d, err := c.join()
		if err != nil {
			return nil, nil, err
		}
		joins = append(joins, d)
		<-time.After(idle) // steady state: see idle
		if d, err = c.leave(false); err != nil {
			return nil, nil, err
		}
		leaves = append(leaves, d)
	}
	return joins, leaves, nil
}

// killRuns measures how long killed instances take to be dropped.
func killRuns(eps []string, mode membership.Consistency, n, kills int, ttl time.Duration) ([]time.Duration, error) {
	c := newCluster(eps, mode, ttl)
	defer c.closeAll()
	var ds []time.Duration
	for range n {
		if _, err := c.join(); err != nil {
			return nil, err
		}
	}
	for range kills {
		d, err := c.leave(true)
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
		if _, err := c.join(); err != nil {
			return nil, err
		}
	}
	return ds, nil
}
