package membership

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWedgedMemberExpires wedges one instance in its rebalance callback:
// it stops renewing its lease, which lapses a TTL later, and the others
// drop it from the cluster instead of keeping it forever.
func TestWedgedMemberExpires(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	var wedged atomic.Bool
	release := make(chan struct{})
	wedge := func(View) {
		if wedged.Load() {
			<-release
		}
	}
	n1 := c.join("node1", 1, nodeOpts{})
	n2 := c.join("node2", 1, nodeOpts{})
	n3 := c.join("node3", 1, nodeOpts{onView: wedge})
	t.Cleanup(func() { close(release) }) // before the sessions close, which needs the loop
	c.rec.waitFor(t, 5*time.Second, "three", settled(3, map[string]int{n1.name: 0, n2.name: 1, n3.name: 2}))
	wedged.Store(true)
	if err := n1.s.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	took := c.rec.waitFor(t, testTTL+3*time.Second, "node2 alone, node3 dropped", settled(1, map[string]int{n2.name: 0}))
	t.Logf("node3 dropped %s after it wedged", took)
	if v := n2.s.View(); len(v.Members) != 1 {
		t.Errorf("node2's view %+v; want node3 gone from the members", v)
	}
	c.rec.check(t)
}

// TestSteadyStateTraffic checks that an instance's traffic with etcd in
// steady state does not grow with the cluster: renewals compare
// revisions instead of reading the commit and the plan, which here hold
// every instance's long address.
func TestSteadyStateTraffic(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	addr := strings.Repeat("a", 500)
	const n = 12
	var watched *tnode
	var names []string
	for i := range n {
		no := nodeOpts{proxy: i == n-1}
		tn := c.join(string(rune('a'+i)), 1, no, WithAddr(addr))
		names = append(names, tn.name)
		watched = tn
	}
	c.rec.waitFor(t, 10*time.Second, "all on one view", covered(n, names...))
	_, before := watched.proxy.Bytes()
	start := time.Now()
	<-time.After(6 * testTTL / 6) // six renewals: the steady state measured
	_, after := watched.proxy.Bytes()
	perSec := float64(after-before) / time.Since(start).Seconds()
	commit := n * (len(addr) + 60)
	t.Logf("%.0f bytes/s from etcd to one of %d instances; the commit alone is about %d bytes", perSec, n, commit)
	if perSec > float64(commit)/2 {
		t.Errorf("%.0f bytes/s from etcd in steady state; want well under one commit (%d bytes) a second", perSec, commit)
	}
}

// TestJoinStorm joins thirty instances at once into a strict cluster: the
// sequencer batches them into a few plans, and no instance mistakes the
// plans and commits it reads while they are being written for a registry
// that went back.
func TestJoinStorm(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	seed := c.join("seed", 1, nodeOpts{})
	c.rec.waitFor(t, 5*time.Second, "the seed", settled(1, map[string]int{seed.name: 0}))
	const n = 30
	nodes := make([]*tnode, n)
	names := []string{seed.name}
	for i := range nodes {
		nodes[i] = c.newNode(fmt.Sprintf("n%02d", i), 1, nodeOpts{})
		names = append(names, nodes[i].name)
	}
	var wg sync.WaitGroup
	for _, tn := range nodes {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tn.s.Join(ctx); err != nil {
				t.Errorf("join %s: %v", tn.name, err)
			}
		})
	}
	wg.Wait()
	c.rec.waitFor(t, 30*time.Second, "all in one view", covered(n+1, names...))
	plans := seed.logs.count("plan published")
	for _, tn := range append(nodes, seed) {
		if k := tn.logs.count("registry changed"); k != 0 {
			t.Errorf("%s found the registry new %d times; want 0", tn.name, k)
		}
	}
	t.Logf("%d joins in %d plans", n, plans)
	c.rec.check(t)
}
