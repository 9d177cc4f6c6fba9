package logs

import (
	"slices"
	"sync"
	"sync/atomic"
)

// DefaultSubscribeBuffer is the channel capacity Subscribe uses when given
// none.
const DefaultSubscribeBuffer = 1024

// Subscription receives the lines a Sink captures after Subscribe, for one
// slot or for all. It never slows a worker down: when its channel is full,
// lines are dropped for it and counted.
type Subscription struct {
	s       *Sink
	slot    int // -1 for every slot
	ch      chan Line
	dropped atomic.Uint64

	mu     sync.Mutex // held while sending, so Close cannot close ch under a send
	closed bool
}

// Subscribe returns a subscription to the lines of slot (every slot when
// slot < 0) captured from now on, delivered on a channel of buffer lines
// (DefaultSubscribeBuffer when buffer <= 0). Call Close when done.
//
// Lines reach subscribers in the same critical section that puts them in
// the slot's ring, so a Tail called after Subscribe returns and the
// subscription together hold every line; the lines of both with Seq up to
// the last one Tail returned for a slot are the same lines.
func (s *Sink) Subscribe(slot, buffer int) *Subscription {
	if buffer <= 0 {
		buffer = DefaultSubscribeBuffer
	}
	if slot < 0 {
		slot = -1
	}
	sub := &Subscription{s: s, slot: slot, ch: make(chan Line, buffer)}
	s.subMu.Lock()
	defer s.subMu.Unlock()
	var cur []*Subscription
	if p := s.subs.Load(); p != nil {
		cur = *p
	}
	next := append(slices.Clip(cur), sub)
	s.subs.Store(&next)
	return sub
}

// C returns the channel of lines. It is closed by Close.
func (sub *Subscription) C() <-chan Line { return sub.ch }

// Dropped returns how many lines were dropped because the channel was full.
func (sub *Subscription) Dropped() uint64 { return sub.dropped.Load() }

// Close ends the subscription and closes its channel. It may be called more
// than once.
func (sub *Subscription) Close() {
	s := sub.s
	s.subMu.Lock()
	if p := s.subs.Load(); p != nil {
		next := slices.DeleteFunc(slices.Clone(*p), func(x *Subscription) bool { return x == sub })
		if len(next) == 0 {
			s.subs.Store(nil)
		} else {
			s.subs.Store(&next)
		}
	}
	s.subMu.Unlock()
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if !sub.closed {
		sub.closed = true
		close(sub.ch)
	}
}

// publish offers l to every subscription that wants its slot, without
// blocking.
func publish(subs []*Subscription, l Line) {
	for _, sub := range subs {
		if sub.slot >= 0 && sub.slot != l.Slot {
			continue
		}
		sub.mu.Lock()
		if !sub.closed {
			select {
			case sub.ch <- l:
			default:
				sub.dropped.Add(1)
			}
		}
		sub.mu.Unlock()
	}
}
