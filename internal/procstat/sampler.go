package procstat

import (
	"sync"
	"time"
)

// forgetAfter is how long a Sampler remembers a pid it no longer samples.
const forgetAfter = 10 * time.Minute

// Sampler measures process trees repeatedly and derives their CPU percent
// from the CPU time used since the previous sample of the same pid. Its
// zero value is not usable; make one with NewSampler. It is safe for
// concurrent use; callers sharing one Sampler shorten each other's
// measurement windows, which changes no average.
type Sampler struct {
	mu   sync.Mutex
	last map[int]sample
	now  func() time.Time
	read func(pids []int) (map[int]treeUsage, error)
}

// sample is the last measurement of a pid.
type sample struct {
	at    time.Time
	cpu   float64
	start uint64
}

// NewSampler returns a Sampler that has sampled nothing yet.
func NewSampler() *Sampler {
	return &Sampler{
		last: make(map[int]sample),
		now:  time.Now,
		read: func(pids []int) (map[int]treeUsage, error) {
			r, err := newReader(len(pids) > 1)
			if err != nil {
				return nil, err
			}
			return r.trees(pids), nil
		},
	}
}

// Sample returns the resident memory of pid's tree and its CPU percent
// since the previous Sample or SampleAll of pid (0 the first time). It
// fails with ErrNotFound when pid does not run, and forgets it.
func (s *Sampler) Sample(pid int) (rss uint64, cpuPercent float64, err error) {
	got, err := s.read([]int{pid})
	if err != nil {
		return 0, 0, err
	}
	u, ok := s.record([]int{pid}, got)[pid]
	if !ok {
		return 0, 0, notFound(pid)
	}
	return u.RSS, u.CPUPercent, nil
}

// SampleAll measures the trees of many pids in one pass over /proc and
// returns the usage of those that run, with CPUPercent set; pids that do
// not run are left out. Its method value fits metrics.New.
func (s *Sampler) SampleAll(pids []int) map[int]Usage {
	got, err := s.read(pids)
	if err != nil {
		return map[int]Usage{}
	}
	return s.record(pids, got)
}

// record forgets the pids not sampled lately, turns measurements into
// usages with CPU percent, remembers them, and forgets the asked pids that
// did not run.
func (s *Sampler) record(asked []int, got map[int]treeUsage) map[int]Usage {
	out := make(map[int]Usage, len(got))
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now() // under the lock, so that samples are stored in time order
	for pid, p := range s.last {
		if now.Sub(p.at) > forgetAfter {
			delete(s.last, pid)
		}
	}
	for _, pid := range asked {
		t, ok := got[pid]
		if !ok {
			delete(s.last, pid)
			continue
		}
		u := t.Usage
		prev, seen := s.last[pid]
		if dt := now.Sub(prev.at).Seconds(); seen && prev.start == t.start && dt > 0 {
			u.CPUPercent = max(100*(t.CPUSeconds-prev.cpu)/dt, 0)
		}
		s.last[pid] = sample{at: now, cpu: t.CPUSeconds, start: t.start}
		out[pid] = u
	}
	return out
}
