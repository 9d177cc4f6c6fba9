package procstat

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeProcs is a fake /proc for a Sampler, with a manual clock.
type fakeProcs struct {
	mu    sync.Mutex
	now   time.Time
	procs map[int]treeUsage
}

func newFakeSampler() (*Sampler, *fakeProcs) {
	f := &fakeProcs{now: time.Unix(1000, 0), procs: map[int]treeUsage{}}
	s := NewSampler()
	s.now = func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
	s.read = func(pids []int) (map[int]treeUsage, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		out := map[int]treeUsage{}
		for _, pid := range pids {
			if t, ok := f.procs[pid]; ok {
				out[pid] = t
			}
		}
		return out, nil
	}
	return s, f
}

func (f *fakeProcs) set(pid int, cpu float64, start uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.procs[pid] = treeUsage{Usage: Usage{RSS: 4096, CPUSeconds: cpu, Procs: 1}, start: start}
}

func (f *fakeProcs) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func TestSamplerPercent(t *testing.T) {
	steps := []struct {
		name    string
		advance time.Duration
		cpu     float64
		start   uint64
		want    float64
	}{
		{"first-sample", 0, 10, 1, 0},
		{"half-a-cpu", 2 * time.Second, 11, 1, 50},
		{"two-cpus", time.Second, 13, 1, 200},
		{"no-time-passed", 0, 14, 1, 0},
		{"cpu-went-back", time.Second, 1, 1, 0},
		{"pid-reused", time.Second, 5, 2, 0},
		{"after-reuse", time.Second, 5.25, 2, 25},
	}
	s, f := newFakeSampler()
	for _, st := range steps {
		f.advance(st.advance)
		f.set(7, st.cpu, st.start)
		rss, pct, err := s.Sample(7)
		if err != nil || rss != 4096 || pct != st.want {
			t.Errorf("%s: got %d, %v, %v; want 4096, %v, nil", st.name, rss, pct, err, st.want)
		}
	}
}

func TestSamplerForgets(t *testing.T) {
	s, f := newFakeSampler()
	f.set(1, 1, 1)
	f.set(2, 1, 1)
	s.SampleAll([]int{1, 2})
	f.advance(forgetAfter / 2)
	s.SampleAll([]int{1})
	f.advance(forgetAfter/2 + time.Second)
	f.set(1, 2, 1)
	f.set(2, 2, 1)
	got := s.SampleAll([]int{1, 2})
	if got[1].CPUPercent == 0 || got[2].CPUPercent != 0 {
		t.Errorf("got %v; want a percent for pid 1 and none for pid 2, forgotten", got)
	}

	// A pid that does not run is an error, and is forgotten.
	delete(f.procs, 1)
	if _, _, err := s.Sample(1); !errors.Is(err, ErrNotFound) {
		t.Errorf("Sample of a gone pid: got %v; want ErrNotFound", err)
	}
	s.mu.Lock()
	n := len(s.last)
	s.mu.Unlock()
	if n != 1 {
		t.Errorf("sampler remembers %d pids; want 1", n)
	}
}

func TestSamplerConcurrent(t *testing.T) {
	s, f := newFakeSampler()
	for pid := range 8 {
		f.set(pid, 1, 1)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				f.advance(time.Millisecond)
				if i%2 == 0 {
					_, _, _ = s.Sample(g)
				} else {
					s.SampleAll([]int{0, 1, 2, 3, 4, 5, 6, 7})
				}
			}
		})
	}
	wg.Wait()
}

// TestSamplerRecent checks that frequent readers share passes over /proc.
func TestSamplerRecent(t *testing.T) {
	s, f := newFakeSampler()
	var reads sync.WaitGroup
	var mu sync.Mutex
	passes := 0
	read := s.read
	s.read = func(pids []int) (map[int]treeUsage, error) {
		mu.Lock()
		passes++
		mu.Unlock()
		defer reads.Done()
		return read(pids)
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return passes }
	f.set(1, 1, 1)
	f.set(2, 2, 1)

	reads.Add(1)
	if u := s.Recent([]int{1, 2}, time.Second); len(u) != 2 || count() != 1 {
		t.Fatalf("first Recent: %v after %d passes; want both pids from 1 pass", u, count())
	}
	f.advance(500 * time.Millisecond)
	for range 10 {
		s.Recent([]int{1, 2}, time.Second)
	}
	if n := count(); n != 1 {
		t.Errorf("%d passes for 10 calls within maxAge; want 1", n)
	}
	// Stale: the answer comes from the last pass, and one pass starts.
	f.advance(time.Second)
	f.set(1, 3, 1)
	reads.Add(1)
	for range 5 {
		if u := s.Recent([]int{1, 2}, time.Second); u[1].CPUPercent != 0 && u[1].CPUPercent != 200/1.5 {
			t.Errorf("stale answer %v", u[1])
		}
	}
	reads.Wait()
	for refreshing := true; refreshing; { // the pass records its result after reading
		s.recentMu.Lock()
		refreshing = s.refreshing
		s.recentMu.Unlock()
		time.Sleep(time.Millisecond)
	}
	if n := count(); n != 2 {
		t.Errorf("%d passes after a stale read; want 2", n)
	}
	// Too old to answer from: the caller waits for a pass.
	f.advance(staleLimit + time.Second)
	reads.Add(1)
	if u := s.Recent([]int{1, 2}, time.Second); len(u) != 2 || count() != 3 {
		t.Errorf("very stale Recent: %v after %d passes; want a pass of its own", u, count())
	}
}

// TestSamplerRecentConcurrent has readers that accept old samples and
// readers that want new ones share a Sampler, as GET /stats and the
// dashboard's history do (run with -race).
func TestSamplerRecentConcurrent(t *testing.T) {
	s, f := newFakeSampler()
	f.set(1, 1, 1)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				maxAge := time.Second
				if i%2 == 0 {
					maxAge = 0
				}
				if u := s.Recent([]int{1}, maxAge); len(u) != 1 {
					t.Errorf("Recent = %v; want pid 1", u)
					return
				}
				f.advance(100 * time.Millisecond)
			}
		})
	}
	wg.Wait()
}

// TestSamplerRecentNewPID checks that a pid the last pass was not asked
// for (a worker started since) gets a pass of its own rather than no
// usage, while a pid that had ended does not force one at every call.
func TestSamplerRecentNewPID(t *testing.T) {
	s, f := newFakeSampler()
	f.set(1, 1, 1)
	s.SampleAll([]int{1, 2}) // 2 does not run
	calls := 0
	read := s.read
	s.read = func(pids []int) (map[int]treeUsage, error) { calls++; return read(pids) }
	for range 5 {
		s.Recent([]int{1, 2}, time.Second)
	}
	if calls != 0 {
		t.Errorf("%d passes for a pid that had ended; want none", calls)
	}
	f.set(3, 1, 1)
	if u := s.Recent([]int{1, 3}, time.Second); len(u) != 2 || calls != 1 {
		t.Errorf("Recent with a new pid = %v after %d passes; want both measured by one pass", u, calls)
	}
}
