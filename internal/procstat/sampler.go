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

	// The last pass of SampleAll, for Recent.
	recentMu   sync.Mutex
	recent     map[int]Usage
	recentAt   time.Time
	asked      map[int]bool // the pids the last pass was asked for
	refreshing bool
	pass       sync.Mutex // held during a pass Recent makes
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
	out := s.record(pids, got)
	asked := make(map[int]bool, len(pids))
	for _, pid := range pids {
		asked[pid] = true
	}
	s.recentMu.Lock()
	s.recent, s.recentAt, s.asked = out, s.now(), asked
	s.recentMu.Unlock()
	return out
}

// staleLimit is the age past which Recent no longer answers from the last
// pass while a new one runs, but waits for the new one.
const staleLimit = 10 * time.Second

// Recent returns the usage of pids from the last pass of SampleAll (made
// by any caller), so that readers asking often (GET /stats, a metrics
// scrape) cost no /proc reads. When that pass is at most maxAge old and
// measured every pid it answers from it. When it is older it still answers
// from it, and starts one pass in the background for the next caller. It
// waits for a pass, which concurrent callers share, when there is none
// younger than staleLimit, when a pid is new to it (a worker started since:
// it would show no usage at all), and always with maxAge 0. Pids that do
// not run are left out.
func (s *Sampler) Recent(pids []int, maxAge time.Duration) map[int]Usage {
	s.recentMu.Lock()
	cached, at := s.recent, s.recentAt
	age := s.now().Sub(at)
	unknown := false // a pid the last pass was not asked for
	for _, pid := range pids {
		if _, ok := cached[pid]; !ok && !s.asked[pid] {
			unknown = true // asked and missing would be one that had ended
		}
	}
	fresh := cached != nil && age <= maxAge && !unknown
	switch {
	case fresh:
	case cached == nil || age > staleLimit || maxAge <= 0 || unknown:
		s.recentMu.Unlock()
		return s.samplePass(pids, at)
	case !s.refreshing:
		s.refreshing = true
		go func() {
			s.samplePass(pids, time.Time{})
			s.recentMu.Lock()
			s.refreshing = false
			s.recentMu.Unlock()
		}()
	}
	s.recentMu.Unlock()
	return pick(cached, pids)
}

// samplePass runs one SampleAll for pids, unless a pass after seen ended
// while it waited for its turn: then it answers from that one.
func (s *Sampler) samplePass(pids []int, seen time.Time) map[int]Usage {
	s.pass.Lock()
	defer s.pass.Unlock()
	s.recentMu.Lock()
	cached, at := s.recent, s.recentAt
	s.recentMu.Unlock()
	if !seen.IsZero() && at.After(seen) {
		return pick(cached, pids)
	}
	return pick(s.SampleAll(pids), pids)
}

// pick returns the usages of pids in all.
func pick(all map[int]Usage, pids []int) map[int]Usage {
	out := make(map[int]Usage, len(pids))
	for _, pid := range pids {
		if u, ok := all[pid]; ok {
			out[pid] = u
		}
	}
	return out
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
