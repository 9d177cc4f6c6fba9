package ipc

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// notifyHandler is a testHandler that reports notifications on a channel.
type notifyHandler struct {
	*testHandler
	notes chan string
}

func (h notifyHandler) Notify(slot int, typ string, payload json.RawMessage) {
	h.notes <- typ + " " + string(payload)
}

// TestPythonClient runs examples/ipc-python/example.py as a worker with
// the socket passed as an inherited fd named by HERD_IPC: a hello, a
// heartbeat, a subscription, a publish, a delegate round trip and a
// delegate without handler.
func TestPythonClient(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: skipping the Python client test")
	}
	dir, err := filepath.Abs("../../examples/ipc-python")
	if err != nil {
		t.Fatal(err)
	}
	h := notifyHandler{newTestHandler(), make(chan string, 10)}
	var mu sync.Mutex
	var gauges map[string]float64
	conn, w := serve(t, h, ConnOptions{OnHeartbeat: func(_ uint64, g map[string]float64) {
		mu.Lock()
		gauges = g
		mu.Unlock()
	}})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "example.py")
	cmd.Dir = dir
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.Env = append(os.Environ(), EnvFD+"=3", "HERD_WORKER_ID=0", "HERD_GENERATION=1")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = w.Close() // the worker holds the only copy now
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	select {
	case note := <-h.notes:
		if note != `ready {"lang":"python"}` {
			t.Errorf("notify: got %s; want ready {\"lang\":\"python\"}", note)
		}
	case err := <-waited:
		t.Fatalf("python exited before notifying: %v\n%s", err, stderr.String())
	}
	if !conn.Publish("news", json.RawMessage(`{"headline":"sheep"}`)) {
		t.Fatal("Publish to the subscribed python worker: false")
	}
	if err := <-waited; err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	if got, want := strings.TrimSpace(stdout.String()), `{"got": {"headline": "sheep"}}`; got != want {
		t.Errorf("python printed %s; want %s", got, want)
	}
	waitDone(t, conn.Done())
	if lang, ok := conn.Hello(); !ok || lang != "python" {
		t.Errorf("Hello() = %q, %v; want python", lang, ok)
	}
	mu.Lock()
	defer mu.Unlock()
	if conn.Requests() != 3 || gauges["queue_depth"] != 1.5 {
		t.Errorf("heartbeat: requests %d, gauges %v; want 3 and queue_depth 1.5", conn.Requests(), gauges)
	}
}
