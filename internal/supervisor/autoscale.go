package supervisor

import (
	"fmt"
	"time"
)

// Autoscale configures scaling by the workers' average CPU use, in percent
// of one core per worker, and by the connections waiting to be accepted.
type Autoscale struct {
	Enabled bool
	// Scale up when the average stays above UpCPU for UpAfter; down when
	// it stays below DownCPU for DownAfter. One step at a time, within
	// MinWorkers and MaxWorkers, never during a rolling restart.
	UpCPU, DownCPU     float64
	UpAfter, DownAfter time.Duration
	// UpQueue, when positive, also scales up when at least UpQueue
	// connections have waited in the listen queues, at every reading, for
	// UpAfter, while workers accept them (see QueueSustained); and no
	// scale-down happens while they do.
	UpQueue int
}

// scaler remembers since when the average has been outside the band, and
// since when connections have kept waiting.
type scaler struct {
	above, below time.Time
	queued       time.Time
}

// QueueSustained tells the pool that at least Autoscale.UpQueue
// connections wait at every reading of the listen queues while workers
// accept them (on), or that this stopped (off). Autoscaling acts on it at
// its next decision.
func (p *Pool) QueueSustained(on bool) {
	_ = p.post(func() {
		switch {
		case !on:
			p.scaler.queued = time.Time{}
		case p.scaler.queued.IsZero():
			p.scaler.queued = p.clock.Now()
		}
	})
}

// autoscaleQueue scales up by one when connections have kept waiting for
// UpAfter, and reports whether they are waiting.
func (p *Pool) autoscaleQueue(now time.Time) (waiting bool) {
	a, sc := p.cfg.Autoscale, &p.scaler
	if a.UpQueue <= 0 || sc.queued.IsZero() {
		return false
	}
	if now.Sub(sc.queued) >= a.UpAfter {
		p.autoscaleStep(+1, fmt.Sprintf("%d or more connections waited in the listen queue for %s", a.UpQueue, a.UpAfter))
		sc.queued, sc.above, sc.below = now, time.Time{}, time.Time{}
	}
	return true
}

// autoscale takes one decision from the latest usage.
func (p *Pool) autoscale(usage map[int]Usage) {
	a := p.cfg.Autoscale
	if !a.Enabled || p.shutdown != nil {
		return
	}
	now := p.clock.Now()
	queued := p.autoscaleQueue(now)
	var sum float64
	n := 0
	for _, s := range p.slots {
		if w := s.cur; w != nil && w.ready && !w.stopping && !s.removing {
			if u, ok := usage[w.pid]; ok {
				sum += u.CPUPercent
				n++
			}
		}
	}
	if n == 0 {
		return
	}
	avg := sum / float64(n)
	sc := &p.scaler
	switch {
	case avg > a.UpCPU:
		sc.below = time.Time{}
		if sc.above.IsZero() {
			sc.above = now
		}
		if now.Sub(sc.above) >= a.UpAfter {
			p.autoscaleStep(+1, fmt.Sprintf("average CPU %.0f%% above %.0f%% for %s", avg, a.UpCPU, a.UpAfter))
			sc.above = now
		}
	case avg < a.DownCPU && queued:
		sc.above, sc.below = time.Time{}, time.Time{} // idle CPU, but connections wait
	case avg < a.DownCPU:
		sc.above = time.Time{}
		if sc.below.IsZero() {
			sc.below = now
		}
		if now.Sub(sc.below) >= a.DownAfter {
			p.autoscaleStep(-1, fmt.Sprintf("average CPU %.0f%% below %.0f%% for %s", avg, a.DownCPU, a.DownAfter))
			sc.below = now
		}
	default:
		sc.above, sc.below = time.Time{}, time.Time{}
	}
}

func (p *Pool) autoscaleStep(delta int, reason string) {
	n := p.liveSlots() + delta
	if p.rollout != nil || n < p.cfg.MinWorkers || n > p.cfg.MaxWorkers {
		return
	}
	p.emit(Event{Type: EventAutoscale, Slot: -1, Workers: n, Reason: reason})
	if err := p.scale(n); err != nil {
		p.cfg.Logger.Warn("autoscale", "to", n, "err", err)
	}
}
