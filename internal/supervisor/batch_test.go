package supervisor

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

// batchingLauncher is the fake launcher with LaunchAll, recording the
// size of each batch.
type batchingLauncher struct {
	*fakeLauncher
	mu      sync.Mutex
	batches []int
}

func (b *batchingLauncher) LaunchAll(reqs []LaunchRequest) []LaunchResult {
	b.mu.Lock()
	b.batches = append(b.batches, len(reqs))
	b.mu.Unlock()
	out := make([]LaunchResult, len(reqs))
	for i, r := range reqs {
		out[i].Proc, out[i].Err = b.Launch(r.Slot, r.Gen, r.Count)
	}
	return out
}

func (b *batchingLauncher) sizes() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return fmt.Sprint(b.batches)
}

func startBatching(t *testing.T, edit func(*Config)) (*harness, *batchingLauncher) {
	var b *batchingLauncher
	h := startOn(t, edit, func(l *fakeLauncher) Launcher {
		b = &batchingLauncher{fakeLauncher: l}
		return b
	})
	return h, b
}

// TestBatchStart checks that the first start without a startup delay, and
// each step of a rollout, start their workers in one batch.
func TestBatchStart(t *testing.T) {
	h, b := startBatching(t, func(c *Config) { c.Workers, c.StartupDelay, c.MaxSurge = 4, 0, 2 })
	if got := b.sizes(); got != "[4]" {
		t.Fatalf("first start in batches %s; want [4]", got)
	}
	h.readyAll()
	done := h.restart(-1)
	if got := b.sizes(); got != "[4 2]" {
		t.Fatalf("after the first rollout step: batches %s; want [4 2]", got)
	}
	h.ready(h.proc(0, 2))
	h.ready(h.proc(1, 2))
	h.ready(h.proc(2, 2))
	h.ready(h.proc(3, 2))
	if err := h.result(done, "rollout"); err != nil {
		t.Fatalf("rollout: %v", err)
	}
	if n := len(h.l.getLaunches()); n != 8 {
		t.Errorf("%d launches; want 8", n)
	}
}

// TestBatchStartFailure checks that a replacement of a batch that cannot
// start fails the rollout while the others of its step go on.
func TestBatchStartFailure(t *testing.T) {
	h, _ := startBatching(t, func(c *Config) { c.Workers, c.StartupDelay, c.MaxSurge = 3, 0, 3 })
	h.readyAll()
	h.l.setLaunchErr(1, errors.New("no such file"))
	done := h.restart(-1)
	h.ready(h.proc(0, 2))
	h.ready(h.proc(2, 2))
	err := h.result(done, "rollout")
	if err == nil {
		t.Fatal("rollout succeeded although slot 1's replacement could not start")
	}
	for _, s := range h.stats().Slots {
		if s.Slot != 1 && s.Gen != 2 {
			t.Errorf("slot %d runs gen %d; want the replacement, 2", s.Slot, s.Gen)
		}
		if s.Slot == 1 && s.PID == 0 {
			t.Errorf("slot 1 lost its worker when its replacement failed to start")
		}
	}
}
