package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/testkit"
)

// TestWatchRestartsOnChange runs herd run --watch on a directory holding
// the worker's script: an editor's scratch file and a .git change restart
// nothing; an edit of the script replaces every worker once, whose new
// generation runs the new script.
func TestWatchRestartsOnChange(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "app.sh")
	write := func(path, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(script, "echo version 1\n"+workerScript)
	socket := filepath.Join(t.TempDir(), "w.sock")
	out := &testkit.Buffer{}
	p := startPrimaryOut(t, socket, 2, out, nil, "run", "--name", "watch", "--workers", "2", "--control", socket,
		"--ready-delay", "50ms", "--startup-delay", "0", "--watch", dir, "--", "sh", script)
	c, err := control.NewClient(control.Target{Socket: socket})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	gens := func() (lo, hi int) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		doc, err := c.Stats(ctx)
		if err != nil {
			return 0, 0
		}
		lo = 1 << 30
		for _, w := range doc.Workers {
			if w.Status != "ACTIVE" {
				return 0, 0
			}
			lo, hi = min(lo, w.Generation), max(hi, w.Generation)
		}
		return lo, hi
	}
	write(filepath.Join(dir, ".app.sh.swp"), "scratch")
	write(filepath.Join(dir, ".git", "index"), "git")
	write(script, "echo version 2\n"+workerScript)
	waitFor(t, func() bool { lo, _ := gens(); return lo == 2 })
	if _, hi := gens(); hi != 2 {
		t.Errorf("after one edit and two ignored writes, a worker is at generation %d; want every worker at 2", hi)
	}
	waitFor(t, func() bool { return strings.Count(out.String(), "version 2") >= 2 })
	if !strings.Contains(p.stderr.String(), "files changed: rolling restart") {
		t.Errorf("herd's log does not say why it restarted:\n%s", p.stderr.String())
	}
}
