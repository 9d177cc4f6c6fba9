package herd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-cluster/herd"
)

// TestDelegation: a worker's delegate runs the primary's handler; a missing
// handler fails at once; a deadline travels; the worker reads the cluster's
// stats; a publish reaches every subscriber.
func TestDelegation(t *testing.T) {
	tc := startClusterWith(t, herd.Config{Workers: 2}, "", "ipc", func(c *herd.Cluster) {
		c.Handle("double", func(ctx context.Context, req herd.Request) (any, error) {
			var n int
			if err := json.Unmarshal(req.Payload, &n); err != nil {
				return nil, err
			}
			return 2 * n, nil
		})
		c.Handle("slow", func(ctx context.Context, req herd.Request) (any, error) {
			<-ctx.Done() // outlives the worker's deadline
			return nil, ctx.Err()
		})
	})
	ready := tc.ev.waitN(t, 0, 2, "ready", is(herd.EventReady))
	for _, e := range ready {
		r := tc.reportOf(t, e.PID)
		if r["double"] != "42" || r["missing_is_no_handler"] != true || r["slow_deadline"] != true || r["stats_workers"] != float64(2) {
			t.Errorf("worker %d report %v; want double=42, missing handler, slow deadline, 2 workers", e.Slot, r)
		}
	}
	n, err := tc.Publish("config", map[string]string{"feature": "on"})
	if err != nil || n != 2 {
		t.Fatalf("Publish = %d, %v; want 2 workers", n, err)
	}
	waitFor(t, "both workers to receive the publish", func() bool {
		got := 0
		for _, m := range tc.reports(t) {
			if m["publish"] == `{"feature":"on"}` && m["topic"] == "config" {
				got++
			}
		}
		return got == 2
	})
}

// TestMaxRequestsRecycle: workers are replaced after MaxRequests plus
// jitter, one at a time, and the restarts are counted as recycles.
func TestMaxRequestsRecycle(t *testing.T) {
	tc := startCluster(t, herd.Config{
		Workers: 2, Listen: []string{"127.0.0.1:0"}, MaxRequests: 20, MaxRequestsJitter: 10,
		Watchdog: 250 * time.Millisecond, // heartbeats carry the counts
	}, "", "http")
	tc.ev.waitN(t, 0, 2, "ready", is(herd.EventReady))
	url := fmt.Sprintf("http://127.0.0.1:%d/", tc.stats(t).Slots[0].Port)
	l := startLoad(url, 4)
	tc.ev.waitN(t, 0, 2, "recycle", is(herd.EventType("recycle")))
	tc.ev.waitN(t, 0, 4, "ready", is(herd.EventReady))
	ok, failed, first := l.finish()
	if failed != 0 {
		t.Errorf("%d of %d requests failed while recycling; want 0 (first: %v)", failed, ok+failed, first)
	}
	for _, e := range tc.ev.snapshot() {
		if e.Type == herd.EventType("recycle") && !strings.Contains(e.Reason, "requests (limit ") {
			t.Errorf("recycle reason %q; want the request limit", e.Reason)
		}
	}
	st := tc.stats(t)
	if st.Restarts["recycle"] < 2 || st.TotalCrashes != 0 {
		t.Errorf("restarts %v crashes %d; want at least 2 recycles and no crash", st.Restarts, st.TotalCrashes)
	}
}

// TestMemoryLimitRecycle: a leaking worker is replaced when its RSS passes
// the limit.
func TestMemoryLimitRecycle(t *testing.T) {
	tc := startCluster(t, herd.Config{
		Workers: 1, MemoryLimit: 64 << 20, MemoryCheckInterval: 50 * time.Millisecond,
	}, "", "leak")
	first := tc.ev.waitN(t, 0, 1, "ready", is(herd.EventReady))[0]
	e := tc.ev.waitN(t, 0, 1, "recycle", is(herd.EventType("recycle")))[0]
	if e.PID != first.PID || !strings.Contains(e.Reason, "over the limit of 67108864") {
		t.Errorf("recycle %v; want the first worker, over the memory limit", e)
	}
	// Its replacement leaks too and may be recycled in turn before the
	// first one is gone: look for the first one's exit.
	exit := tc.ev.waitN(t, 0, 1, "exit of the first worker", func(e herd.Event) bool {
		return e.Type == herd.EventExited && e.PID == first.PID
	})[0]
	if exit.Crash || exit.Reason != "recycle" {
		t.Errorf("exit %v; want the leaking worker stopped gracefully for a recycle", exit)
	}
	if r := tc.stats(t).Restarts["recycle"]; r < 1 {
		t.Errorf("recycle restarts %d; want at least 1", r)
	}
}

// TestHungWorker: a SIGSTOPped worker stops sending heartbeats and is
// replaced and killed.
func TestHungWorker(t *testing.T) {
	tc := startCluster(t, herd.Config{Workers: 1, Watchdog: 100 * time.Millisecond}, "", "ipc")
	first := tc.ev.waitN(t, 0, 1, "ready", is(herd.EventReady))[0]
	if err := syscall.Kill(first.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	hung := tc.ev.waitN(t, 0, 1, "hung", is(herd.EventType("hung")))[0]
	if hung.PID != first.PID {
		t.Fatalf("hung pid %d; want the stopped %d", hung.PID, first.PID)
	}
	tc.ev.waitN(t, 0, 2, "ready", is(herd.EventReady))
	exit := tc.ev.waitN(t, 0, 1, "exited", is(herd.EventExited))[0]
	if exit.PID != first.PID || exit.Signal != "SIGKILL" || exit.Reason != "hung" {
		t.Errorf("exit %v; want the stopped worker killed as hung", exit)
	}
	if r := tc.stats(t).Restarts["hung"]; r != 1 {
		t.Errorf("hung restarts %d; want 1", r)
	}
}

// TestAutoscaleCPU: CPU-burning workers make the cluster grow to its
// maximum; idle ones make it shrink back.
func TestAutoscaleCPU(t *testing.T) {
	tc := startCluster(t, herd.Config{
		Workers: 1, MinWorkers: 1, MaxWorkers: 2, Autoscale: true,
		ScaleUpCPU: 40, ScaleDownCPU: 10, ScaleUpAfter: 300 * time.Millisecond, ScaleDownAfter: 300 * time.Millisecond,
	}, "", "burn")
	tc.ev.waitN(t, 0, 1, "ready", is(herd.EventReady))
	flag := tc.out + "/burn"
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	up := tc.ev.waitN(t, 0, 1, "autoscale", is(herd.EventType("autoscale")))[0]
	if up.Workers != 2 || !strings.Contains(up.Reason, "above 40%") {
		t.Fatalf("autoscale %v; want up to 2", up)
	}
	tc.ev.waitN(t, 0, 2, "ready", is(herd.EventReady))
	os.Remove(flag)
	down := tc.ev.waitN(t, 0, 2, "autoscale", is(herd.EventType("autoscale")))[1]
	if down.Workers != 1 || !strings.Contains(down.Reason, "below 10%") {
		t.Errorf("autoscale %v; want down to 1", down)
	}
}
