// Package saturation watches the accept queues of the primary's listening
// sockets: connections the kernel has completed that no worker has taken.
//
// A queue that holds connections and has not gone down for StuckAfter
// means no worker accepts from it: every worker is busy or stuck, or the
// app listens on a socket of its own instead of the one it inherited, while
// each worker still looks ACTIVE. A queue past HighFraction of its limit
// is about to drop connections. The Watcher says both once per episode, and
// again when they clear, and tells autoscaling when connections keep
// waiting although workers accept them.
//
// Sampling is cheap: one getsockopt per listening socket, every second
// while every queue is empty and four times a second while one is not, on
// ticks aligned to the wall clock so that an idle primary wakes for it
// together with its other periodic work.
package saturation

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/herd-cluster/herd/internal/sockets"
)

// Source reads the accept queues; *sockets.Set is one.
type Source interface {
	Queues(dst []sockets.ListenerQueue, drops bool) []sockets.ListenerQueue
}

// Defaults of Config.
const (
	DefaultInterval     = 250 * time.Millisecond
	DefaultIdleInterval = time.Second
	DefaultStuckAfter   = 2 * time.Second
	DefaultHighFraction = 0.8
)

// Config configures a Watcher. Zero fields take the defaults.
type Config struct {
	// Interval is how often the queues are read while one holds
	// connections; IdleInterval while all are empty.
	Interval, IdleInterval time.Duration
	// StuckAfter is how long a queue must hold connections without going
	// down before it is said to be stuck.
	StuckAfter time.Duration
	// HighFraction of a queue's limit is where it is said to be nearly
	// full; it is said to be fine again below half of that.
	HighFraction float64
	// ScaleQueue, when positive, turns on Sustained: the connections
	// waiting on every TCP listener together are at least ScaleQueue at
	// every reading while none is stuck.
	ScaleQueue int
	// Alert, if set, is called on the watcher's goroutine with every
	// alert. It must not block.
	Alert func(Alert)
	// Sustained, if set, is called when the ScaleQueue condition starts
	// (true) and ends (false). It must not block.
	Sustained func(bool)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.IdleInterval <= 0 {
		c.IdleInterval = DefaultIdleInterval
	}
	if c.StuckAfter <= 0 {
		c.StuckAfter = DefaultStuckAfter
	}
	if c.HighFraction <= 0 || c.HighFraction > 1 {
		c.HighFraction = DefaultHighFraction
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Kind is what an Alert says.
type Kind int

const (
	// Stuck: connections wait on some of the listener's sockets and their
	// queue has not gone down for StuckAfter.
	Stuck Kind = iota + 1
	// High: a queue passed HighFraction of its limit.
	High
	// Cleared: the listener is neither stuck nor nearly full any more.
	Cleared
)

// Alert is one change in a listener's saturation.
type Alert struct {
	Kind     Kind
	Listener string
	// Slots are the reuseport slots whose own sockets it concerns, in
	// order; nil for a socket every slot shares.
	Slots []int
	// Depth and Limit are the connections waiting and the limit on those
	// sockets.
	Depth, Limit int
	// For is how long the queue has not gone down (Stuck).
	For time.Duration
}

// String says what the alert means, in one line for operators.
func (a Alert) String() string {
	where := "listener " + a.Listener
	if a.Slots != nil {
		where += " (" + slotList(a.Slots) + ")"
	}
	switch a.Kind {
	case Stuck:
		return fmt.Sprintf("%s: %d connections wait and none was accepted for %s: every worker is busy or stuck, or the app listens on a socket of its own instead of the one it inherits (fd 3, LISTEN_FDS)",
			where, a.Depth, a.For.Round(100*time.Millisecond))
	case High:
		return fmt.Sprintf("%s: %d connections wait, %d%% of the accept queue's limit of %d: new connections are dropped once it is full",
			where, a.Depth, 100*a.Depth/max(a.Limit, 1), a.Limit)
	}
	return fmt.Sprintf("%s: connections are accepted again (%d waiting)", where, a.Depth)
}

func slotList(slots []int) string {
	s := make([]string, len(slots))
	for i, n := range slots {
		s[i] = fmt.Sprint(n)
	}
	if len(slots) == 1 {
		return "slot " + s[0]
	}
	return "slots " + strings.Join(s, ", ")
}

// Watcher samples the accept queues and keeps what it saw. Make one with
// New; its methods are safe for concurrent use.
type Watcher struct {
	src Source
	cfg Config

	mu        sync.Mutex
	state     map[string]*listenerState
	sustained bool
	buf       []sockets.ListenerQueue
}

// listenerState is what the watcher remembers of one listener.
type listenerState struct {
	socks map[int]*socketState // by slot (-1: shared)
	stuck []int                // slots whose socket is stuck, ascending
	high  []int                // slots whose socket is nearly full
}

// socketState is what the watcher remembers of one socket.
type socketState struct {
	since time.Time // when its queue last went from empty or down; zero while empty
	last  int
	stuck bool
	high  bool
}

// New returns a watcher of src's queues.
func New(src Source, cfg Config) *Watcher {
	return &Watcher{src: src, cfg: cfg.withDefaults(), state: make(map[string]*listenerState)}
}

// Start runs Run on a goroutine of its own, calling alert and sustained
// (when not nil) instead of the Config's; the returned stop ends it and
// waits for it.
func (w *Watcher) Start(alert func(Alert), sustained func(bool)) (stop func()) {
	if alert != nil {
		w.cfg.Alert = alert
	}
	if sustained != nil {
		w.cfg.Sustained = sustained
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	return func() { cancel(); <-done }
}

// Run samples until ctx is done. It returns at once when src has no TCP
// listener.
func (w *Watcher) Run(ctx context.Context) {
	if len(w.src.Queues(nil, false)) == 0 {
		return
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := w.cfg.Now()
		d := w.Step(now)
		// Aligned to the wall clock: other periodic work of the primary
		// (workers' heartbeats) lands on the same instants.
		t.Reset(now.Truncate(d).Add(d).Sub(w.cfg.Now()))
	}
}

// Step reads the queues once at now, raises the alerts due, and returns
// how long to wait for the next reading.
func (w *Watcher) Step(now time.Time) time.Duration {
	w.mu.Lock()
	w.buf = w.src.Queues(w.buf[:0], false)
	var alerts []Alert
	busy, total, anyStuck := false, 0, false
	for _, q := range w.buf {
		ls := w.state[q.Name]
		if ls == nil {
			ls = &listenerState{socks: make(map[int]*socketState)}
			w.state[q.Name] = ls
		}
		alerts = append(alerts, w.listener(ls, q, now)...)
		d := q.Depth()
		busy = busy || d > 0
		total += d
		anyStuck = anyStuck || len(ls.stuck) > 0
	}
	var sustained *bool
	if w.cfg.ScaleQueue > 0 {
		if on := total >= w.cfg.ScaleQueue && !anyStuck; on != w.sustained {
			w.sustained = on
			sustained = &on
		}
	}
	w.mu.Unlock()
	for _, a := range alerts {
		if w.cfg.Alert != nil {
			w.cfg.Alert(a)
		}
	}
	if sustained != nil && w.cfg.Sustained != nil {
		w.cfg.Sustained(*sustained)
	}
	if busy {
		return w.cfg.Interval
	}
	return w.cfg.IdleInterval
}

// listener updates the state of one listener from its reading and returns
// its alerts. w.mu is held.
func (w *Watcher) listener(ls *listenerState, q sockets.ListenerQueue, now time.Time) []Alert {
	var stuck, high []int
	for slot := range ls.socks {
		if !slices.ContainsFunc(q.Sockets, func(s sockets.SocketQueue) bool { return s.Slot == slot }) {
			delete(ls.socks, slot) // scaled away
		}
	}
	var stuckFor time.Duration
	for _, sq := range q.Sockets {
		ss := ls.socks[sq.Slot]
		if ss == nil {
			ss = &socketState{}
			ls.socks[sq.Slot] = ss
		}
		w.socket(ss, sq, now)
		if ss.stuck {
			stuck = append(stuck, sq.Slot)
			stuckFor = max(stuckFor, now.Sub(ss.since))
		}
		if ss.high {
			high = append(high, sq.Slot)
		}
	}
	var alerts []Alert
	wasBad := len(ls.stuck) > 0 || len(ls.high) > 0
	if added(ls.stuck, stuck) {
		a := w.alert(Stuck, q, stuck)
		a.For = stuckFor
		alerts = append(alerts, a)
	}
	if added(ls.high, high) {
		alerts = append(alerts, w.alert(High, q, high))
	}
	ls.stuck, ls.high = stuck, high
	if wasBad && len(stuck) == 0 && len(high) == 0 {
		alerts = append(alerts, w.alert(Cleared, q, nil))
	}
	return alerts
}

// socket updates the state of one socket from its reading.
func (w *Watcher) socket(ss *socketState, sq sockets.SocketQueue, now time.Time) {
	switch {
	case sq.Depth == 0:
		ss.since, ss.stuck = time.Time{}, false
	case ss.since.IsZero() || sq.Depth < ss.last:
		// Newly queued, or some were accepted: a new wait begins.
		ss.since, ss.stuck = now, false
	case now.Sub(ss.since) >= w.cfg.StuckAfter:
		ss.stuck = true
	}
	ss.last = sq.Depth
	highAt := w.cfg.HighFraction * float64(sq.Limit)
	switch {
	case sq.Limit > 0 && float64(sq.Depth) >= highAt:
		ss.high = true
	case float64(sq.Depth) < highAt/2:
		ss.high = false
	}
}

// alert makes an alert about slots of q (all of its sockets when slots is
// nil), with their depth and limit.
func (w *Watcher) alert(k Kind, q sockets.ListenerQueue, slots []int) Alert {
	a := Alert{Kind: k, Listener: q.Name}
	for _, sq := range q.Sockets {
		if slots == nil || slices.Contains(slots, sq.Slot) {
			a.Depth += sq.Depth
			a.Limit += sq.Limit
		}
	}
	if len(q.Sockets) > 0 && q.Sockets[0].Slot >= 0 {
		a.Slots = slots
	}
	return a
}

// added reports whether now holds a slot that before did not.
func added(before, now []int) bool {
	for _, s := range now {
		if !slices.Contains(before, s) {
			return true
		}
	}
	return false
}

// Listener is the accept queue of one TCP listener as /stats and the
// metrics show it.
type Listener struct {
	Name         string
	Depth, Limit int
	// Drops counts the connections its sockets dropped, chiefly for a full
	// accept queue, since the primary started.
	Drops uint64
	// Stuck is true while connections wait on it that no worker takes.
	Stuck bool
	// Sockets are the per-slot sockets of a reuseport listener; nil for
	// one shared socket.
	Sockets []sockets.SocketQueue
}

// Listeners reads every TCP listener's queue now, with its drops, and
// says which are stuck as of the last reading.
func (w *Watcher) Listeners() []Listener {
	qs := w.src.Queues(nil, true)
	out := make([]Listener, 0, len(qs))
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, q := range qs {
		l := Listener{Name: q.Name, Depth: q.Depth(), Limit: q.Limit(), Drops: q.Drops}
		if ls := w.state[q.Name]; ls != nil {
			l.Stuck = len(ls.stuck) > 0
		}
		if len(q.Sockets) > 0 && q.Sockets[0].Slot >= 0 {
			l.Sockets = q.Sockets
		}
		out = append(out, l)
	}
	return out
}
