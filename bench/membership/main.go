// Command membership measures herd's multi-node membership on an etcd
// embedded in this process, all instances in this process with their own
// clients, over loopback: how long a graceful join or leave takes to reach
// every instance (eventual and strict), how long a killed instance takes to
// be dropped, and how long 100 instances take to converge.
//
//	go run ./bench/membership [-n 5] [-rounds 20] [-big 100] [-ttl 2s]
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/herd-cluster/herd/membership"
	"github.com/herd-cluster/herd/membership/etcdtest"
)

func main() {
	n := flag.Int("n", 5, "instances in the join/leave cluster")
	rounds := flag.Int("rounds", 20, "joins and leaves measured per consistency")
	big := flag.Int("big", 100, "instances in the convergence run")
	ttl := flag.Duration("ttl", 2*time.Second, "lease TTL of the kill runs")
	kills := flag.Int("kills", 3, "kills measured per consistency")
	flag.Parse()
	if err := run(*n, *rounds, *big, *kills, *ttl); err != nil {
		fmt.Fprintln(os.Stderr, "membership bench:", err)
		os.Exit(1)
	}
}

// run starts etcd and runs every measurement.
func run(n, rounds, big, kills int, ttl time.Duration) error {
	dir, err := os.MkdirTemp("", "membership-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	e, err := etcdtest.Start(dir)
	if err != nil {
		return err
	}
	defer e.Close()
	fmt.Printf("| measurement | consistency | n | median | p90 | max |\n|---|---|---|---|---|---|\n")
	for _, mode := range []membership.Consistency{membership.Eventual, membership.Strict} {
		joins, leaves, err := joinLeave(e, mode, n, rounds)
		if err != nil {
			return err
		}
		report("graceful join, all hold the new view", mode, n+1, joins)
		report("graceful leave, all hold the new view", mode, n, leaves)
		dropped, err := killRuns(e, mode, n, kills, ttl)
		if err != nil {
			return err
		}
		report(fmt.Sprintf("killed instance dropped (TTL %s)", ttl), mode, n, dropped)
		conv, bigJoins, err := bigCluster(e, mode, big, 5)
		if err != nil {
			return err
		}
		report("100 joining at once: all on one view", mode, big, conv)
		report("join into a cluster of 100", mode, big+1, bigJoins)
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
	mu      sync.Mutex
	latest  map[string]membership.View
	changed chan struct{}
}

func newBoard() *board {
	return &board{latest: map[string]membership.View{}, changed: make(chan struct{})}
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
// in strict consistency, the same epoch.
func (b *board) wait(names []string, total int, timeout time.Duration) error {
	deadline := time.After(timeout)
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
	}
}

// agree reports whether names all hold indices in views of total that
// list every one of them, and of one epoch.
func (b *board) agree(names []string, total int) bool {
	var epoch int64
	for _, name := range names {
		v, ok := b.latest[name]
		if !ok || v.Index < 0 || v.Total != total || len(v.Members) != len(names) || (epoch != 0 && v.Epoch != epoch) {
			return false
		}
		epoch = v.Epoch
	}
	return true
}

// cluster is a set of instances of one cluster key on one board.
type cluster struct {
	e     *etcdtest.Etcd
	key   string
	mode  membership.Consistency
	ttl   time.Duration
	b     *board
	live  map[string]*membership.Session
	count int
}

func newCluster(e *etcdtest.Etcd, mode membership.Consistency, ttl time.Duration) *cluster {
	return &cluster{e: e, key: fmt.Sprintf("bench-%s-%d", mode, time.Now().UnixNano()), mode: mode,
		ttl: ttl, b: newBoard(), live: map[string]*membership.Session{}}
}

// add creates one instance, not joined.
func (c *cluster) add() (string, *membership.Session, error) {
	c.count++
	name := fmt.Sprintf("i%03d", c.count)
	s, err := membership.New(c.key, membership.WithEndpoints(c.e.Endpoints()...), membership.WithInstanceID(name),
		membership.WithConsistency(c.mode), membership.WithTTL(c.ttl), membership.WithOnRebalance(c.b.observer(name)))
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
	err = c.b.wait(c.names(), len(c.live), 10*time.Second)
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

// close ends every instance.
func (c *cluster) close() {
	for _, s := range c.live {
		s.Leave(context.Background())
	}
}

// joinLeave measures rounds joins and leaves in a cluster of n.
func joinLeave(e *etcdtest.Etcd, mode membership.Consistency, n, rounds int) (joins, leaves []time.Duration, err error) {
	c := newCluster(e, mode, 10*time.Second)
	defer c.close()
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
func killRuns(e *etcdtest.Etcd, mode membership.Consistency, n, kills int, ttl time.Duration) ([]time.Duration, error) {
	c := newCluster(e, mode, ttl)
	defer c.close()
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

// bigCluster joins big instances at once and measures how long until all
// agree, then measures joins into it.
func bigCluster(e *etcdtest.Etcd, mode membership.Consistency, big, rounds int) (conv, joins []time.Duration, err error) {
	c := newCluster(e, mode, 10*time.Second)
	defer c.close()
	var ss []*membership.Session
	for range big {
		_, s, err := c.add()
		if err != nil {
			return nil, nil, err
		}
		ss = append(ss, s)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Go(func() { s.Join(context.Background()) })
	}
	wg.Wait()
	if err := c.b.wait(c.names(), big, 60*time.Second); err != nil {
		return nil, nil, err
	}
	conv = append(conv, time.Since(start))
	for range rounds {
		d, err := c.join()
		if err != nil {
			return nil, nil, err
		}
		joins = append(joins, d)
		<-time.After(idle)
		if _, err := c.leave(false); err != nil {
			return nil, nil, err
		}
	}
	return conv, joins, nil
}
