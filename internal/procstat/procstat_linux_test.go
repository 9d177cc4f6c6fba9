package procstat

import (
	"errors"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestTreeMemoryAndGrandchild(t *testing.T) {
	cmd, rest := startHelper(t, "alloc")
	gc, err := strconv.Atoi(rest)
	if err != nil {
		t.Fatalf("grandchild pid %q: %v", rest, err)
	}
	u, err := Tree(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if u.RSS < allocBytes {
		t.Errorf("RSS = %d; want >= %d", u.RSS, allocBytes)
	}
	if u.Procs != 2 {
		t.Errorf("Procs = %d; want 2 (child and grandchild %d)", u.Procs, gc)
	}
	g, err := Tree(gc)
	if err != nil {
		t.Fatal(err)
	}
	if g.Procs != 1 || g.RSS >= u.RSS {
		t.Errorf("grandchild tree = %+v; want 1 proc with less RSS than %d", g, u.RSS)
	}
}

// TestTreeScan walks the same tree from a scan of /proc, the fallback for
// kernels without children files.
func TestTreeScan(t *testing.T) {
	cmd, _ := startHelper(t, "alloc")
	r, err := newReader(true)
	if err != nil {
		t.Fatal(err)
	}
	u, err := r.tree(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if u.RSS < allocBytes || u.Procs != 2 {
		t.Errorf("got %+v; want RSS >= %d and 2 procs", u.Usage, allocBytes)
	}
}

func TestTreeCPUGrows(t *testing.T) {
	cmd, _ := startHelper(t, "burn")
	pid := cmd.Process.Pid
	u0, err := Tree(pid)
	if err != nil {
		t.Fatal(err)
	}
	want := u0.CPUSeconds + 0.2
	deadline := time.Now().Add(waitLimit)
	for {
		u, err := Tree(pid)
		if err != nil {
			t.Fatal(err)
		}
		if u.CPUSeconds >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPUSeconds = %.2f after %s; want >= %.2f", u.CPUSeconds, waitLimit, want)
		}
		time.Sleep(10 * time.Millisecond) // the measurement window
	}
}

func TestTreeDeadPID(t *testing.T) {
	cmd, _ := startHelper(t, "idle")
	pid := cmd.Process.Pid
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Killed but not yet reaped: a zombie does not run.
	deadline := time.Now().Add(waitLimit)
	for {
		_, err := Tree(pid)
		if errors.Is(err, ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Tree of a killed pid: got %v; want ErrNotFound", err)
		}
		time.Sleep(time.Millisecond)
	}
	_ = cmd.Wait()
	if _, err := Tree(pid); !errors.Is(err, ErrNotFound) {
		t.Errorf("Tree of a reaped pid: got %v; want ErrNotFound", err)
	}
}

func TestSamplerRealCPU(t *testing.T) {
	cmd, _ := startHelper(t, "burn")
	pid := cmd.Process.Pid
	s := NewSampler()
	rss, pct, err := s.Sample(pid)
	if err != nil || rss == 0 || pct != 0 {
		t.Fatalf("first Sample = %d, %.1f, %v; want some RSS, 0%%, nil", rss, pct, err)
	}
	deadline := time.Now().Add(waitLimit)
	for pct < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("cpu percent of a spinning child = %.1f; want >= 20", pct)
		}
		time.Sleep(50 * time.Millisecond) // the measurement window
		if _, pct, err = s.Sample(pid); err != nil {
			t.Fatal(err)
		}
	}
	all := s.SampleAll([]int{pid, 1 << 30})
	if _, ok := all[1<<30]; ok || len(all) != 1 {
		t.Errorf("SampleAll = %v; want only pid %d", all, pid)
	}
}

func BenchmarkSampleAll64(b *testing.B) {
	pids := startIdle(b, 64)
	// scan is what SampleAll does; children walks each tree instead, as
	// Tree does, for comparison.
	for _, mode := range []struct {
		name string
		scan bool
	}{{"scan", true}, {"children", false}} {
		b.Run(mode.name, func(b *testing.B) {
			s := NewSampler()
			s.read = func(pids []int) (map[int]treeUsage, error) {
				r, err := newReader(mode.scan)
				if err != nil {
					return nil, err
				}
				return r.trees(pids), nil
			}
			cpu0 := cpuTime(b)
			for b.Loop() {
				if got := s.SampleAll(pids); len(got) != len(pids) {
					b.Fatalf("sampled %d pids; want %d", len(got), len(pids))
				}
			}
			// CPU time is steadier than wall time on a busy machine.
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

func startIdle(b *testing.B, n int) []int {
	pids := make([]int, n)
	for i := range pids {
		cmd, _ := startHelper(b, "idle")
		pids[i] = cmd.Process.Pid
	}
	return pids
}

// cpuTime is the user and system time of this process.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
