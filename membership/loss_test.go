package membership

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestRegistryLoss restarts etcd under a live cluster with an empty data
// directory, or from a snapshot saved before the last changes, so that
// its revision goes back and its keys are gone or old: every instance
// finds the registry new, fences, joins again and takes indices in a new
// view; a newcomer joining right after the loss does not take an index an
// old instance still holds; no instance sees an epoch go back.
func TestRegistryLoss(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode Consistency
		snap bool
	}{
		{"empty/strict", Strict, false},
		{"empty/eventual", Eventual, false},
		{"snapshot/strict", Strict, true},
		{"snapshot/eventual", Eventual, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			if !c.etcd.Restartable() {
				t.Skip("an external etcd cannot be restarted")
			}
			c.rec.looseEpochs = tc.snap && tc.mode == Eventual
			n1 := c.join("node1", 2, nodeOpts{}, WithConsistency(tc.mode))
			n2 := c.join("node2", 1, nodeOpts{}, WithConsistency(tc.mode))
			strict := tc.mode == Strict
			c.rec.waitFor(t, 10*time.Second, "two", coveredEpochs(3, strict, n1.name, n2.name))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			snap := filepath.Join(t.TempDir(), "snap.db")
			if tc.snap {
				if err := c.etcd.SaveSnapshot(ctx, snap); err != nil {
					t.Fatal(err)
				}
			}
			n3 := c.join("node3", 1, nodeOpts{}, WithConsistency(tc.mode))
			if err := n2.s.SetThreads(ctx, 2); err != nil {
				t.Fatal(err)
			}
			c.rec.waitFor(t, 10*time.Second, "three", coveredEpochs(5, strict, n1.name, n2.name, n3.name))
			var err error
			if tc.snap {
				err = c.etcd.RestartFromSnapshot(snap)
			} else {
				err = c.etcd.RestartEmpty()
			}
			if err != nil {
				t.Fatal(err)
			}
			n4 := c.join("node4", 1, nodeOpts{}, WithConsistency(tc.mode))
			took := c.rec.waitFor(t, 5*testTTL, "everyone in one view after the loss", coveredEpochs(6, strict, n1.name, n2.name, n3.name, n4.name))
			t.Logf("one view %s after the restart", took)
			for _, n := range []*tnode{n1, n2, n3} {
				// A restored registry whose revision caught up with what an
				// eventual instance saw, under the same base, shows no
				// sign of having gone back; the instance heals when its
				// renewals find the members it missed.
				if n.logs.count("registry changed under us") == 0 && !(tc.snap && tc.mode == Eventual) {
					t.Errorf("%s did not find the registry new", n.name)
				}
			}
			c.rec.checkMode(t, tc.mode)
		})
	}
}
