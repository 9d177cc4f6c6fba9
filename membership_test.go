package herd_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/herd-cluster/herd"
	"github.com/herd-cluster/herd/membership/etcdtest"
	"github.com/herd-cluster/herd/membership/herdetcd"
)

// latestIndex is the last cluster index each worker pid reported.
func (tc *testCluster) latestIndex(t *testing.T) map[int]map[string]any {
	t.Helper()
	last := map[int]map[string]any{}
	for _, m := range tc.reports(t) {
		if _, ok := m["index"]; ok {
			last[int(m["pid"].(float64))] = m
		}
	}
	return last
}

// indices returns the sorted indices and the totals the serving workers
// hold now.
func (tc *testCluster) indices(t *testing.T) ([]int, map[int]bool) {
	t.Helper()
	last := tc.latestIndex(t)
	var idx []int
	totals := map[int]bool{}
	for _, w := range tc.stats(t).Slots {
		if m, ok := last[w.PID]; ok {
			idx = append(idx, int(m["index"].(float64)))
			totals[int(m["total"].(float64))] = true
		}
	}
	sort.Ints(idx)
	return idx, totals
}

// TestStaticCluster: slot s gets index base+s of total, epoch 0.
func TestStaticCluster(t *testing.T) {
	tc := startCluster(t, herd.Config{Workers: 2, ClusterBase: 10, ClusterTotal: 20}, "", "cluster")
	tc.ev.waitN(t, 0, 2, "ready", is(herd.EventReady))
	waitFor(t, "indices 10 and 11 of 20", func() bool {
		idx, totals := tc.indices(t)
		return fmt.Sprint(idx) == "[10 11]" && totals[20] && len(totals) == 1
	})
	st := tc.stats(t)
	if st.Cluster == nil || st.Cluster.Total != 20 || st.Cluster.Epoch != 0 {
		t.Errorf("stats cluster %+v; want total 20, epoch 0", st.Cluster)
	}
}

// TestEtcdCluster: two primaries join one etcd; their workers hold
// consecutive indices in join order, and when one leaves the other takes
// the lower indices.
func TestEtcdCluster(t *testing.T) {
	etcd, err := etcdtest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { etcd.Close() })
	registry := "etcd://" + etcd.Endpoints()[0]
	cfg := func(workers int, id string) herd.Config {
		return herd.Config{Workers: workers, Registry: registry, Join: herdetcd.Join, ClusterKey: "app", InstanceID: id, ClusterTTL: 2 * time.Second}
	}
	a := startCluster(t, cfg(2, "a"), "", "cluster")
	a.ev.waitN(t, 0, 2, "ready", is(herd.EventReady))
	waitFor(t, "node a on indices 0,1 of 2", func() bool {
		idx, totals := a.indices(t)
		return fmt.Sprint(idx) == "[0 1]" && totals[2] && len(totals) == 1
	})
	b := startCluster(t, cfg(1, "b"), "", "cluster")
	b.ev.waitN(t, 0, 1, "ready", is(herd.EventReady))
	waitFor(t, "node b on index 2 of 3, a unmoved", func() bool {
		ia, ta := a.indices(t)
		ib, tb := b.indices(t)
		return fmt.Sprint(ia) == "[0 1]" && fmt.Sprint(ib) == "[2]" && ta[3] && tb[3] && len(ta) == 1 && len(tb) == 1
	})
	st := b.stats(t)
	if st.Cluster == nil || st.Cluster.Index != 2 || st.Cluster.Total != 3 || st.Cluster.Epoch <= 0 {
		t.Errorf("node b stats cluster %+v; want index 2 of 3 with an epoch", st.Cluster)
	}
	a.stop(t)
	waitFor(t, "node b on index 0 of 1 after a left", func() bool {
		ib, tb := b.indices(t)
		return fmt.Sprint(ib) == "[0]" && tb[1] && len(tb) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := b.Scale(ctx, 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node b on indices 0,1 of 2 after scaling up", func() bool {
		ib, tb := b.indices(t)
		return fmt.Sprint(ib) == "[0 1]" && tb[2] && len(tb) == 1
	})
}
