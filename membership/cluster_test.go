package membership

import (
	"context"
	"testing"
	"time"
)

// modes are the consistencies the scenario tests run in.
var modes = []Consistency{Strict, Eventual}

// TestLibclusterExample joins libcluster's three nodes, with 2, 1 and 4
// threads, one by one: every node ends with bases 0, 2 and 3 of 7.
func TestLibclusterExample(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			n1 := c.join("node1", 2, nodeOpts{}, WithConsistency(mode))
			c.rec.waitFor(t, 5*time.Second, "node1 alone", settled(2, map[string]int{n1.name: 0}))
			n2 := c.join("node2", 1, nodeOpts{}, WithConsistency(mode))
			c.rec.waitFor(t, 5*time.Second, "node1 and node2", settled(3, map[string]int{n1.name: 0, n2.name: 2}))
			n3 := c.join("node3", 4, nodeOpts{}, WithConsistency(mode))
			c.rec.waitFor(t, 5*time.Second, "all three",
				settled(7, map[string]int{n1.name: 0, n2.name: 2, n3.name: 3}))
			v := n3.s.View()
			if len(v.Members) != 3 || v.Members[1] != (Member{ID: "node2", Base: 2, Threads: 1}) {
				t.Errorf("node3's members = %+v", v.Members)
			}
			c.rec.checkMode(t, mode)
		})
	}
}

// TestOrderID joins libcluster's nodes in reverse: ordered by id they
// still get bases 0, 2 and 3.
func TestOrderID(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	n3 := c.join("node3", 4, nodeOpts{}, WithOrder(OrderID))
	n2 := c.join("node2", 1, nodeOpts{}, WithOrder(OrderID))
	n1 := c.join("node1", 2, nodeOpts{}, WithOrder(OrderID))
	c.rec.waitFor(t, 5*time.Second, "all three", settled(7, map[string]int{n1.name: 0, n2.name: 2, n3.name: 3}))
	c.rec.check(t)
}

// TestLeaveRebalances checks that a graceful leave rebalances the others
// within a second, and that a newcomer in join order shifts no one.
func TestLeaveRebalances(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			n1 := c.join("node1", 2, nodeOpts{}, WithConsistency(mode))
			n2 := c.join("node2", 1, nodeOpts{}, WithConsistency(mode))
			n3 := c.join("node3", 4, nodeOpts{}, WithConsistency(mode))
			c.rec.waitFor(t, 5*time.Second, "all three", settled(7, map[string]int{n1.name: 0, n2.name: 2, n3.name: 3}))
			if err := n1.s.Leave(context.Background()); err != nil {
				t.Fatal(err)
			}
			took := c.rec.waitFor(t, time.Second, "the rest after node1 left",
				settled(5, map[string]int{n2.name: 0, n3.name: 1}))
			t.Logf("rebalanced %s after the leave", took)
			n4 := c.join("node4", 3, nodeOpts{}, WithConsistency(mode))
			c.rec.waitFor(t, time.Second, "node4 last", settled(8, map[string]int{n2.name: 0, n3.name: 1, n4.name: 5}))
			c.rec.checkMode(t, mode)
		})
	}
}

// TestSetThreads checks that a new thread count rebalances everyone.
func TestSetThreads(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	n1 := c.join("node1", 1, nodeOpts{})
	n2 := c.join("node2", 1, nodeOpts{})
	c.rec.waitFor(t, 5*time.Second, "two", settled(2, map[string]int{n1.name: 0, n2.name: 1}))
	if err := n1.s.SetThreads(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	c.rec.waitFor(t, 5*time.Second, "node1 with 3", settled(4, map[string]int{n1.name: 0, n2.name: 3}))
	if v := n1.s.View(); v.Threads != 3 {
		t.Errorf("node1's view = %+v; want 3 threads", v)
	}
	c.rec.check(t)
}

// TestKilledNodeExpires closes a node without revoking its lease: the
// others drop it once etcd expires the lease, about a TTL later.
func TestKilledNodeExpires(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			n1 := c.join("node1", 1, nodeOpts{}, WithConsistency(mode))
			n2 := c.join("node2", 1, nodeOpts{}, WithConsistency(mode))
			n3 := c.join("node3", 1, nodeOpts{}, WithConsistency(mode))
			c.rec.waitFor(t, 5*time.Second, "three", settled(3, map[string]int{n1.name: 0, n2.name: 1, n3.name: 2}))
			n2.s.Close()
			took := c.rec.waitFor(t, testTTL+3*time.Second, "node2 dropped", settled(2, map[string]int{n1.name: 0, n3.name: 1}))
			if took < testTTL/2 {
				t.Errorf("node2 dropped after %s; want about the TTL, %s", took, testTTL)
			}
			t.Logf("dropped %s after the kill", took)
			c.rec.checkMode(t, mode)
		})
	}
}
