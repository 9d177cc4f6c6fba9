package herd_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/herd-cluster/herd"
)

// TestPythonWorker runs the Python client of examples/ipc-python as a
// command worker under a real primary: the protocol is not Go's alone.
func TestPythonWorker(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	ready := make(chan int, 4)
	echoed := make(chan string, 4)
	tc := startClusterWith(t, herd.Config{
		Workers: 1, Ready: herd.ReadyDelay, ReadyDelay: 10 * time.Millisecond, Dir: "examples/ipc-python",
		MaxCrashes: 100, RespawnDelay: time.Second,
	}, "", "", func(c *herd.Cluster) {
		c.Handle("ready", func(ctx context.Context, r herd.Request) (any, error) {
			ready <- r.Slot
			return nil, nil
		})
		c.Handle("echo", func(ctx context.Context, r herd.Request) (any, error) {
			echoed <- string(r.Payload)
			return json.RawMessage(r.Payload), nil
		})
	}, python, "example.py")
	select {
	case slot := <-ready:
		if slot != 0 {
			t.Errorf("ready from slot %d; want 0", slot)
		}
	case <-time.After(waitLimit):
		t.Fatal("the Python worker never said ready")
	}
	if n, err := tc.Publish("news", map[string]int{"version": 7}); err != nil || n != 1 {
		t.Fatalf("Publish = %d, %v; want 1 subscriber", n, err)
	}
	select {
	case got := <-echoed:
		if got != `{"got":{"version":7}}` {
			t.Errorf("the worker echoed %s; want the publish back", got)
		}
	case <-time.After(waitLimit):
		t.Fatal("the Python worker never delegated the publish back")
	}
}
