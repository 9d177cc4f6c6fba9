package supervisor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Usage is what the primary measured of one worker's process tree.
type Usage struct {
	RSS        uint64
	CPUPercent float64
}

// Recycle asks for slot's worker to be replaced gracefully: a new worker
// is started beside it and the old one is stopped once the new one is
// ready. Recycles run one at a time; a request for a slot already waiting
// is dropped, and so is one made during a rolling restart, which replaces
// every worker anyway.
func (p *Pool) Recycle(slot int, reason string) {
	_ = p.post(func() {
		if slot >= 0 && slot < len(p.slots) {
			p.requestRecycle(p.slots[slot], reason)
		}
	})
}

// Beat records that the worker pid is alive (an IPC heartbeat or
// WATCHDOG=1), with its request count when it reports one.
func (p *Pool) Beat(pid int, requests uint64, hasRequests bool) {
	_ = p.post(func() {
		w := p.byPID[pid]
		if w == nil {
			return
		}
		w.lastBeat = p.clock.Now()
		w.heardAt = w.lastBeat
		if !hasRequests {
			return
		}
		w.requests = requests
		if w.maxRequests > 0 && requests >= w.maxRequests && w.ready && !w.stopping && w.slot.cur == w {
			p.requestRecycle(w.slot, fmt.Sprintf("handled %d requests (limit %d)", requests, w.maxRequests))
		}
	})
}

// ReportUsage hands the pool the measured RSS and CPU of the workers, by
// pid: it recycles workers over the memory limit and drives autoscaling.
func (p *Pool) ReportUsage(usage map[int]Usage) {
	_ = p.post(func() {
		for pid, u := range usage {
			w := p.byPID[pid]
			if w == nil {
				continue
			}
			w.usage = u
			if lim := p.cfg.MemoryLimit; lim > 0 && u.RSS > lim && w.ready && !w.stopping && w.slot.cur == w {
				p.requestRecycle(w.slot, fmt.Sprintf("memory %d bytes over the limit of %d", u.RSS, lim))
			}
		}
		p.autoscale(usage)
	})
}

// PIDs returns the pids of every running worker.
func (p *Pool) PIDs(ctx context.Context) ([]int, error) {
	var pids []int
	if err := p.call(ctx, func() {
		for pid := range p.byPID {
			pids = append(pids, pid)
		}
	}); err != nil {
		return nil, err // the closure may still run: pids is not ours
	}
	return pids, nil
}

// requestRecycle queues a recycle of s, or starts it when none runs.
func (p *Pool) requestRecycle(s *slot, reason string) {
	if p.shutdown != nil || p.rollout != nil || s.removing || s.recycleWanted {
		return
	}
	if !s.recycleAfter.IsZero() && p.clock.Now().Before(s.recycleAfter) {
		return // its last replacement failed: give it a rest
	}
	s.recycleWanted = true
	p.emit(Event{Type: EventRecycle, Slot: s.id, PID: pidOf(s.cur), Gen: s.gen, Reason: reason})
	p.recycles = append(p.recycles, s)
	p.nextRecycle()
}

// nextRecycle starts the first queued recycle when none runs.
func (p *Pool) nextRecycle() {
	for p.recycling == nil && len(p.recycles) > 0 && p.shutdown == nil && p.rollout == nil {
		s := p.recycles[0]
		p.recycles = p.recycles[1:]
		s.recycleWanted = false
		if s.removing || s.cur == nil || !s.cur.ready || s.next != nil {
			continue
		}
		s.replaceReason = "recycle"
		if _, err := p.startWorker(s, "recycle"); err != nil {
			s.recycleAfter = p.clock.Now().Add(p.cfg.CrashWindow)
			continue
		}
		p.recycling = s
	}
}

// recycleEnded is called when the replacement of s is ready or failed.
func (p *Pool) recycleEnded(s *slot, failed bool) {
	if p.recycling != s {
		return
	}
	p.recycling = nil
	if failed {
		s.recycleAfter = p.clock.Now().Add(p.cfg.CrashWindow)
		p.cfg.Logger.Warn("recycle failed: the new worker was not ready; the old one keeps serving", "slot", s.id)
	}
	p.nextRecycle()
}

// dropRecycles forgets queued recycles; a rolling restart replaces every
// worker anyway.
func (p *Pool) dropRecycles() {
	for _, s := range p.recycles {
		s.recycleWanted = false
	}
	p.recycles = nil
}

// armWorker sets w's own limits when it becomes ready: its request limit
// and its max-age timer, each with jitter so workers do not all recycle at
// once.
func (p *Pool) armWorker(w *worker) {
	w.lastBeat = p.clock.Now()
	if n := p.cfg.MaxRequests; n > 0 {
		w.maxRequests = n
		if j := p.cfg.MaxRequestsJitter; j > 0 {
			w.maxRequests += uint64(p.rand(int64(j) + 1))
		}
	}
	if age := p.cfg.MaxAge; age > 0 {
		if j := p.cfg.MaxAgeJitter; j > 0 {
			age += time.Duration(p.rand(int64(2*j)+1)) - j
		}
		w.ageTimer = p.after(age, func() {
			if p.byPID[w.pid] == w && w.slot.cur == w && !w.stopping {
				p.requestRecycle(w.slot, fmt.Sprintf("reached its max age of %s", age.Round(time.Second)))
			}
		})
	}
}

func (p *Pool) rand(n int64) int64 {
	if p.cfg.Rand != nil {
		return p.cfg.Rand(n)
	}
	return rand.Int64N(n)
}

// retire takes the old worker of a slot out once its replacement is ready.
func (p *Pool) retire(old *worker, reason string) {
	if reason == "hung" || old.hung {
		stopTimer(&old.killTimer)
		p.killHung(old)
		return
	}
	p.stopWorker(old, reason)
}

func pidOf(w *worker) int {
	if w == nil {
		return 0
	}
	return w.pid
}
