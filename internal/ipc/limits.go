package ipc

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// checkLimits returns an error matching ErrProtocol and ErrLimit when m,
// from a worker, carries a name, a text or gauges over the limits. The
// frame itself is bounded by MaxFrame; these bound what the primary keeps
// of it (topics, the hello) or hands on (reasons in events, types in logs).
func checkLimits(m *Message) error {
	for _, f := range [...]struct {
		name  string
		n     int
		limit int
	}{
		{`"t"`, len(m.T), MaxName},
		{`"type"`, len(m.Type), MaxName},
		{`"topic"`, len(m.Topic), MaxName},
		{`"lang"`, len(m.Lang), MaxName},
		{`"reason"`, len(m.Reason), MaxText},
		{`"error"`, len(m.Error), MaxText},
	} {
		if f.n > f.limit {
			return limitError("%s of %d bytes, limit %d", f.name, f.n, f.limit)
		}
	}
	if len(m.Gauges) > MaxGauges { // the primary's reader stops at MaxGauges already
		return limitError("more than %d gauges", MaxGauges)
	}
	for name := range m.Gauges {
		if len(name) > MaxName {
			return limitError("gauge name of %d bytes, limit %d", len(name), MaxName)
		}
	}
	return nil
}

// limitError formats an error matching ErrProtocol and ErrLimit.
func limitError(format string, args ...any) error {
	return fmt.Errorf("%w: %w: "+format, append([]any{ErrProtocol, ErrLimit}, args...)...)
}

// topicSet is one worker's subscriptions, bounded by MaxTopics and
// MaxTopicBytes.
type topicSet struct {
	mu    sync.Mutex
	set   map[string]struct{}
	bytes int
}

// add subscribes to topic; subscribing twice is subscribing once. It
// fails, changing nothing, when the set would go over a limit.
func (ts *topicSet) add(topic string) error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if _, ok := ts.set[topic]; ok || topic == "" {
		return nil // "" is the broadcast: it needs no subscription
	}
	switch {
	case len(ts.set) >= MaxTopics:
		return limitError("more than %d subscriptions", MaxTopics)
	case ts.bytes+len(topic) > MaxTopicBytes:
		return limitError("subscriptions of more than %d bytes of topics", MaxTopicBytes)
	}
	if ts.set == nil {
		ts.set = make(map[string]struct{})
	}
	ts.set[topic] = struct{}{}
	ts.bytes += len(topic)
	return nil
}

// remove unsubscribes from topic.
func (ts *topicSet) remove(topic string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if _, ok := ts.set[topic]; ok {
		delete(ts.set, topic)
		ts.bytes -= len(topic)
	}
}

// has reports whether topic is subscribed to.
func (ts *topicSet) has(topic string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	_, ok := ts.set[topic]
	return ok
}

// inFlightBytes bounds the payload bytes of one worker's requests being
// handled at once: while they are over the limit, the worker's later
// frames wait unread, as they do past MaxInFlight requests.
type inFlightBytes struct {
	limit   int64
	n       atomic.Int64
	waiting atomic.Int32  // take calls waiting for bytes
	freed   chan struct{} // capacity 1: "some bytes were released"
}

func newInFlightBytes(limit int) *inFlightBytes {
	return &inFlightBytes{limit: int64(limit), freed: make(chan struct{}, 1)}
}

// take waits until n bytes fit (or nothing is in flight: one request
// always fits) and takes them. It returns false if done closes first.
func (b *inFlightBytes) take(n int, done <-chan struct{}) bool {
	for {
		cur := b.n.Load()
		if cur == 0 || cur+int64(n) <= b.limit {
			if b.n.CompareAndSwap(cur, cur+int64(n)) {
				return true
			}
			continue
		}
		b.waiting.Add(1)
		if b.n.Load() == cur { // nothing released since: wait for it
			select {
			case <-b.freed:
			case <-done:
				b.waiting.Add(-1)
				return false
			}
		}
		b.waiting.Add(-1)
	}
}

// release gives back n bytes.
func (b *inFlightBytes) release(n int) {
	b.n.Add(-int64(n))
	if b.waiting.Load() > 0 {
		select {
		case b.freed <- struct{}{}:
		default:
		}
	}
}
