package herd_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd"
	"github.com/herd-cluster/herd/internal/testkit"
)

// TestWorkerShutsDownListener runs workers that call shutdown(2) on the
// shared listening socket as they stop, which stops it for every process
// holding it: after a rolling restart the cluster must serve again, and
// herd must say what happened.
func TestWorkerShutsDownListener(t *testing.T) {
	logs := &testkit.Buffer{}
	tc := startCluster(t, herd.Config{
		Workers: 2, Listen: []string{"127.0.0.1:0"}, Ready: herd.ReadyNotify,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	}, "shutdown-on-exit", "")
	tc.ev.waitN(t, 0, 2, "ready", is(herd.EventReady))
	url := fmt.Sprintf("http://127.0.0.1:%d/", tc.stats(t).Slots[0].Port)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if _, err := get(ctx, url); err != nil {
		t.Fatal(err)
	}
	mark := tc.ev.mark()
	if err := tc.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	tc.ev.waitN(t, mark, 1, "rollout finished", is(herd.EventRolloutFinished))
	// Both old workers shut the socket down as they exited; the second
	// may have done so after the rollout finished.
	tc.ev.waitN(t, mark, 2, "old workers' exits", is(herd.EventExited))
	deadline := time.Now().Add(5 * time.Second)
	for {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		_, err := get(rctx, url)
		rcancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after workers shut the listening socket down, GET %s: %v; want served", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "it listens again") {
		t.Errorf("herd's log does not say the socket was shut down and repaired:\n%s", logs.String())
	}
}
