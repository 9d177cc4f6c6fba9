package control

import (
	"context"
	"runtime/debug"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/control/controltest"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// clock is a settable time for the history.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestHistory(fake *controltest.Cluster, interval time.Duration) (*history, *clock) {
	h := newHistory(fake, interval)
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	h.now = c.now
	return h, c
}

// TestHistoryRing checks that a slot keeps HistoryWindow of samples,
// oldest first, across a change of its worker, and no more.
func TestHistoryRing(t *testing.T) {
	fake := controltest.New(2, 1, 4)
	h, c := newTestHistory(fake, time.Minute)
	if h.size != 16 {
		t.Fatalf("size %d; want 16 (15 minutes of one-minute samples and the current one)", h.size)
	}
	ctx := context.Background()
	for i := range 40 {
		if i == 30 {
			fake.AutoRestart = true
			if _, err := fake.StartRestart(ctx, 0); err != nil { // slot 0's pid becomes 1100
				t.Fatal(err)
			}
		}
		c.t = c.t.Add(time.Minute)
		h.sample(ctx)
	}
	doc := h.doc(-1, 0)
	if len(doc.Slots) != 2 {
		t.Fatalf("%d slots; want 2", len(doc.Slots))
	}
	s0 := doc.Slots[0]
	if s0.Slot != 0 || len(s0.Time) != 16 || len(s0.RSS) != 16 || len(s0.CPU) != 16 || len(s0.PID) != 16 {
		t.Fatalf("slot 0: %d samples; want 16 in every column: %+v", len(s0.Time), s0)
	}
	for i := 1; i < len(s0.Time); i++ {
		if s0.Time[i]-s0.Time[i-1] != time.Minute.Milliseconds() {
			t.Fatalf("samples not in order: %v", s0.Time)
		}
	}
	if last := s0.Time[15]; last != c.t.UnixMilli() {
		t.Errorf("newest sample at %d; want %d", last, c.t.UnixMilli())
	}
	if s0.PID[0] != 1000 {
		t.Errorf("oldest sample pid %d; want the first worker's 1000: the slot's history goes on across workers", s0.PID[0])
	}
	if s0.PID[15] != 1100 || s0.RSS[15] != 1100*1024 || s0.CPU[15] != 1.5 {
		t.Errorf("newest sample pid %d rss %d cpu %v; want the new worker's 1100, %d, 1.5", s0.PID[15], s0.RSS[15], s0.CPU[15], 1100*1024)
	}
	// A page that has the samples up to the 14th asks for the rest.
	since := h.doc(-1, s0.Time[13])
	if len(since.Slots) != 2 || len(since.Slots[0].Time) != 2 || since.Slots[0].Time[0] != s0.Time[14] || len(since.Events) != 0 {
		t.Errorf("since the 14th sample: %+v; want the last 2 samples of each slot and no events", since)
	}
	// Fifteen minutes later every sample is too old.
	c.t = c.t.Add(HistoryWindow + time.Minute)
	if doc := h.doc(0, 0); len(doc.Slots) != 1 || len(doc.Slots[0].Time) != 0 {
		t.Errorf("after the window: %+v; want slot 0 with no samples", doc.Slots)
	}
}

// TestHistoryPace checks that the history samples every interval while
// a dashboard reads it, and idleFactor times less often otherwise.
func TestHistoryPace(t *testing.T) {
	h, c := newTestHistory(controltest.New(1, 1, 1), 5*time.Second)
	if d := h.next(); d != 30*time.Second {
		t.Errorf("unread: next sample in %s; want 30s", d)
	}
	h.read()
	select {
	case <-h.wake:
	default:
		t.Error("a read did not wake the idle sampler")
	}
	if d := h.next(); d != 5*time.Second {
		t.Errorf("read: next sample in %s; want 5s", d)
	}
	h.read()
	if len(h.wake) != 0 {
		t.Error("a read woke the sampler while it samples every interval")
	}
	c.t = c.t.Add(watchedFor + time.Second)
	if d := h.next(); d != 30*time.Second {
		t.Errorf("unread for %s: next sample in %s; want 30s", watchedFor, d)
	}
}

// TestHistorySkips checks that a slot with no worker gets an empty
// sample (pid 0: a break in its line) and slots past the cap none.
func TestHistorySkips(t *testing.T) {
	fake := controltest.New(3, 1, maxHistorySlots+2)
	fake.SetStatus(1, supervisor.StatusDisabled)
	h, _ := newTestHistory(fake, time.Second)
	h.sample(context.Background())
	doc := h.doc(-1, 0)
	if len(doc.Slots) != 3 || doc.Slots[1].Slot != 1 || len(doc.Slots[1].PID) != 1 || doc.Slots[1].PID[0] != 0 || doc.Slots[1].RSS[0] != 0 {
		t.Errorf("slots %+v; want slot 1 with one sample of pid 0", doc.Slots)
	}
	if doc.Slots[2].PID[0] != 1002 {
		t.Errorf("slot 2's sample %+v; want pid 1002", doc.Slots[2])
	}
	if err := fake.Scale(context.Background(), maxHistorySlots+2); err != nil {
		t.Fatal(err)
	}
	h.sample(context.Background())
	if n := len(h.doc(-1, 0).Slots); n != maxHistorySlots {
		t.Errorf("%d slots with a history; want the cap, %d", n, maxHistorySlots)
	}
}

// TestHistoryEvents checks the restart counts by reason and the ring of
// recent events.
func TestHistoryEvents(t *testing.T) {
	h, _ := newTestHistory(controltest.New(1, 1, 1), time.Second)
	at := time.Now()
	for _, e := range []Event{
		{Type: "started", Slot: 0, Gen: 1, Reason: "start"}, // the first start is no restart
		{Type: "started", Slot: 0, Gen: 2, Reason: "respawn"},
		{Type: "started", Slot: 0, Gen: 3, Reason: "rollout"},
		{Type: "started", Slot: 0, Gen: 4, Reason: "recycle"},
		{Type: "started", Slot: 1, Gen: 2, Reason: "hung"},
		{Type: "status", Slot: 0, Reason: "busy"},
	} {
		e.Time = at
		h.record(e, 0)
	}
	doc := h.doc(-1, 0)
	want := map[int]map[string]uint64{0: {"crash": 1, "rollout": 1, "recycle": 1}, 1: {"hung": 1}}
	for _, s := range doc.Slots {
		for k, v := range want[s.Slot] {
			if s.Restarts[k] != v {
				t.Errorf("slot %d restarts %v; want %v", s.Slot, s.Restarts, want[s.Slot])
			}
		}
		if len(s.Restarts) != len(want[s.Slot]) {
			t.Errorf("slot %d restarts %v; want %v", s.Slot, s.Restarts, want[s.Slot])
		}
	}
	if len(doc.Events) != 5 {
		t.Errorf("%d events kept; want 5 (status events are not)", len(doc.Events))
	}
	for i := range recentEvents + 10 {
		h.record(Event{Type: "ready", Slot: 0, Gen: i, Time: at}, 7)
	}
	doc = h.doc(-1, 0)
	if len(doc.Events) != recentEvents {
		t.Fatalf("%d events kept; want %d", len(doc.Events), recentEvents)
	}
	if last := doc.Events[recentEvents-1]; last.Gen != recentEvents+9 {
		t.Errorf("newest event gen %d; want %d", last.Gen, recentEvents+9)
	}
	if doc.Events[0].Gen != 10 {
		t.Errorf("oldest event gen %d; want 10", doc.Events[0].Gen)
	}
	if h.dropped != 7 {
		t.Errorf("dropped %d; want 7", h.dropped)
	}
}

// TestGoBuildHidesFlags checks that the build settings shown leave out
// linker and compiler flags.
func TestGoBuildHidesFlags(t *testing.T) {
	g := goBuild(&debug.BuildInfo{
		GoVersion: "go1.26.0", Path: "example.com/app/cmd/app",
		Main: debug.Module{Path: "example.com/app", Version: "v1.2.3"},
		Deps: []*debug.Module{{Path: "a", Version: "v1", Replace: &debug.Module{Path: "b", Version: "v2"}}},
		Settings: []debug.BuildSetting{
			{Key: "-ldflags", Value: "-X main.apiKey=hunter2"}, {Key: "-gcflags", Value: "all=-N"},
			{Key: "CGO_CFLAGS", Value: "-DSECRET"}, {Key: "GOOS", Value: "linux"}, {Key: "vcs.revision", Value: "abc"},
		},
	})
	if len(g.Settings) != 2 || g.Settings["GOOS"] != "linux" || g.Settings["vcs.revision"] != "abc" {
		t.Errorf("settings %v; want only GOOS and vcs.revision", g.Settings)
	}
	if g.Module.Version != "v1.2.3" || len(g.Deps) != 1 || g.Deps[0].Path != "b" {
		t.Errorf("module %+v deps %+v", g.Module, g.Deps)
	}
}
