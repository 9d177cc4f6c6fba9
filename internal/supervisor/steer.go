package supervisor

import (
	"slices"
	"time"
)

// steering is implemented by a launcher whose slots have sockets of their
// own (one SO_REUSEPORT socket per slot): the kernel would otherwise hand
// new connections to a slot whether or not a worker accepts there. The
// pool tells it which slots serve, and lets a slot being scaled away drain
// its queue before its worker is asked to stop.
type steering interface {
	// Steer tells which slots should get new connections: serving[i] for
	// slot i.
	Steer(serving []bool) error
	// Queued returns how many connections wait on slot's own sockets, and
	// whether it has any.
	Queued(slot int) (n int, own bool)
}

const (
	// drainPoll is how often the queue of a slot being scaled away is
	// looked at; it must be empty twice in a row, so a connection whose
	// handshake began before the steering has arrived.
	drainPoll = 5 * time.Millisecond
	// maxDrain bounds the wait for that queue to empty, for a worker that
	// does not accept.
	maxDrain = 2 * time.Second
)

// steer tells the launcher which slots serve, when that changed: those with
// a ready worker that is not stopping or hung, and not being scaled away.
// When none does, every slot not being scaled away is named, so that a
// removed slot gets nothing still.
func (p *Pool) steer() {
	st, ok := p.launch.(steering)
	if !ok {
		return
	}
	p.steerBuf = p.steerBuf[:0]
	some := false
	for _, s := range p.slots {
		on := serves(s)
		some = some || on
		p.steerBuf = append(p.steerBuf, on)
	}
	if !some {
		for i, s := range p.slots {
			p.steerBuf[i] = !s.removing
		}
	}
	if p.serving != nil && slices.Equal(p.steerBuf, p.serving) {
		return
	}
	p.serving = append(p.serving[:0], p.steerBuf...)
	if err := st.Steer(p.serving); err != nil {
		p.cfg.Logger.Warn("steering new connections to the serving slots", "err", err)
	}
}

// serves reports whether s should get new connections.
func serves(s *slot) bool {
	if s.removing || s.disabled {
		return false
	}
	for _, w := range []*worker{s.cur, s.next} {
		if w != nil && w.ready && !w.stopping && !w.hung {
			return true
		}
	}
	return false
}

// stopWhenDrained stops w, the worker of a slot being scaled away, once no
// connection waits on the slot's own sockets: steer has sent new ones
// elsewhere, and w accepts those already queued, which closing the slot's
// sockets after w is gone would otherwise reset. Without sockets of its
// own, or a ready worker to accept, w stops at once.
func (p *Pool) stopWhenDrained(w *worker, reason string) {
	st, ok := p.launch.(steering)
	if !ok || !w.ready {
		p.stopWorker(w, reason)
		return
	}
	if _, own := st.Queued(w.slot.id); !own {
		p.stopWorker(w, reason)
		return
	}
	deadline := p.clock.Now().Add(maxDrain)
	empty := 0
	var check func()
	check = func() {
		if p.byPID[w.pid] != w || w.stopping || !w.slot.removing {
			return // gone, stopped for another reason, or scaled back
		}
		if n, _ := st.Queued(w.slot.id); n == 0 {
			empty++
		} else {
			empty = 0
		}
		if empty >= 2 || !p.clock.Now().Before(deadline) {
			p.stopWorker(w, reason)
			return
		}
		p.after(drainPoll, check)
	}
	check()
}
