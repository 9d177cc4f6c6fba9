package membership

import (
	"context"
	"testing"
	"time"
)

// TestStallFences freezes one node's traffic to etcd: it fences itself
// (Index -1) before etcd expires its lease and the others take its
// indices, then re-joins, last in join order, when traffic flows again.
func TestStallFences(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			n1 := c.join("node1", 2, nodeOpts{proxy: true}, WithConsistency(mode))
			n2 := c.join("node2", 1, nodeOpts{}, WithConsistency(mode))
			n3 := c.join("node3", 1, nodeOpts{}, WithConsistency(mode))
			c.rec.waitFor(t, 5*time.Second, "three", settled(4, map[string]int{n1.name: 0, n2.name: 2, n3.name: 3}))
			n1.proxy.Freeze()
			fenced := c.rec.waitFor(t, testTTL, "node1 fenced", func(l map[string]View) bool { return l[n1.name].Index == -1 })
			dropped := c.rec.waitFor(t, testTTL+3*time.Second, "node1 dropped", settled(2, map[string]int{n2.name: 0, n3.name: 1}))
			t.Logf("node1 fenced %s after the stall; the others dropped it %s later", fenced, dropped)
			n1.proxy.Thaw()
			c.rec.waitFor(t, 3*testTTL, "node1 back, last", settled(4, map[string]int{n2.name: 0, n3.name: 1, n1.name: 2}))
			if n := n1.logs.count("fenced"); n != 1 {
				t.Errorf("node1 fenced %d times; want 1", n)
			}
			c.rec.checkMode(t, mode)
		})
	}
}

// TestCompactionDuringWatch compacts the history while one node's watch
// is cut off and behind (a join it has not seen): it lists again and
// catches up.
func TestCompactionDuringWatch(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			n1 := c.join("node1", 1, nodeOpts{}, WithConsistency(mode))
			n2 := c.join("node2", 1, nodeOpts{proxy: true}, WithConsistency(mode))
			c.rec.waitFor(t, 5*time.Second, "two", settled(2, map[string]int{n1.name: 0, n2.name: 1}))
			n2.proxy.Freeze() // short of the fence deadline: node2 must not fence
			n3 := c.join("node3", 1, nodeOpts{}, WithConsistency(mode))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := c.etcd.Compact(ctx); err != nil {
				t.Fatal(err)
			}
			n2.proxy.Reset()
			n2.proxy.Thaw()
			n2.logs.waitLog(t, 5*time.Second, "watch ended")
			c.rec.waitFor(t, 5*time.Second, "node2 caught up",
				settledEpochs(3, map[string]int{n1.name: 0, n2.name: 1, n3.name: 2}, mode == Strict))
			if n := n2.logs.count("fenced"); n != 0 {
				t.Errorf("node2 fenced %d times; want 0", n)
			}
			c.rec.checkMode(t, mode)
		})
	}
}

// TestSequencerKilled kills the sequencer while it waits for an
// acknowledgement: after its lease expires another node is elected and
// finishes the rebalance.
func TestSequencerKilled(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	entered, gate := make(chan struct{}, 1), make(chan struct{})
	prepare := func(ctx context.Context, _ View) {
		entered <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
	n1 := c.join("node1", 1, nodeOpts{})
	n2 := c.join("node2", 1, nodeOpts{})
	n3 := c.join("node3", 1, nodeOpts{}, WithOnPrepare(prepare))
	c.rec.waitFor(t, 5*time.Second, "three", settled(3, map[string]int{n1.name: 0, n2.name: 1, n3.name: 2}))
	if n1.logs.count("elected sequencer") != 1 {
		t.Fatal("node1, the first, is not the sequencer")
	}
	if err := n2.s.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("node3 was never asked to prepare")
	}
	n1.s.Close()
	close(gate)
	took := c.rec.waitFor(t, testTTL+5*time.Second, "node3 alone", settled(1, map[string]int{n3.name: 0}))
	t.Logf("node3 alone %s after the sequencer died", took)
	if n3.logs.count("elected sequencer") == 0 {
		t.Error("node3 was not elected")
	}
	c.rec.check(t)
}
