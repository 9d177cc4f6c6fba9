package herd

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herd-cluster/herd/internal/supervisor"
)

// eventQueue delivers events in order on a goroutine of its own: it logs
// each as one structured line and hands it to Config.OnEvent. Pushing never
// blocks, so a slow consumer cannot stall the supervisor.
type eventQueue struct {
	log *slog.Logger
	on  []func(Event) // called in order for every event; nil ones skipped

	mu     sync.Mutex
	queue  []Event
	closed bool
	subs   map[*subscriber]struct{}
	wake   chan struct{}
	done   chan struct{}
}

// subscriber receives events on a buffered channel; when it falls behind,
// events are dropped for it and counted, never waited for.
type subscriber struct {
	ch      chan Event
	dropped atomic.Uint64
}

// subscribeBuffer is how many events a subscriber may fall behind.
const subscribeBuffer = 1024

// subscribe returns a channel of every event from now on, the count of
// events dropped for it, and a cancel that closes the channel.
func (q *eventQueue) subscribe() (<-chan Event, func() uint64, func()) {
	s := &subscriber{ch: make(chan Event, subscribeBuffer)}
	q.mu.Lock()
	if q.subs == nil {
		q.subs = make(map[*subscriber]struct{})
	}
	q.subs[s] = struct{}{}
	q.mu.Unlock()
	var once sync.Once
	cancel := func() {
		once.Do(func() {
			q.mu.Lock()
			if _, ok := q.subs[s]; ok {
				delete(q.subs, s)
				close(s.ch)
			}
			q.mu.Unlock()
		})
	}
	return s.ch, s.dropped.Load, cancel
}

// fanOut hands e to every subscriber without waiting.
func (q *eventQueue) fanOut(e Event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for s := range q.subs {
		select {
		case s.ch <- e:
		default:
			s.dropped.Add(1)
		}
	}
}

func newEventQueue(log *slog.Logger, on ...func(Event)) *eventQueue {
	q := &eventQueue{log: log, on: on, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go q.run()
	return q
}

func (q *eventQueue) push(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	q.mu.Lock()
	if !q.closed {
		q.queue = append(q.queue, e)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) run() {
	defer close(q.done)
	for {
		q.mu.Lock()
		batch, closed := q.queue, q.closed
		q.queue = nil
		q.mu.Unlock()
		for _, e := range batch {
			logEvent(q.log, e)
			q.fanOut(e)
			for _, f := range q.on {
				if f != nil {
					f(e)
				}
			}
		}
		if closed && len(batch) == 0 {
			q.mu.Lock()
			for s := range q.subs {
				close(s.ch)
			}
			q.subs = nil
			q.mu.Unlock()
			return
		}
		if len(batch) == 0 {
			<-q.wake
		}
	}
}

// close delivers what is queued and stops.
func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	<-q.done
}

// logEvent writes e as one structured line.
func logEvent(log *slog.Logger, e Event) {
	level := slog.LevelInfo
	attrs := []slog.Attr{slog.String("event", string(e.Type))}
	if e.Slot >= 0 {
		attrs = append(attrs, slog.Int("slot", e.Slot))
	}
	if e.PID != 0 {
		attrs = append(attrs, slog.Int("pid", e.PID), slog.Int("gen", e.Gen))
	}
	msg := "worker " + string(e.Type)
	switch e.Type {
	case EventExited:
		attrs = append(attrs, slog.Int("status", e.Status), slog.Bool("crash", e.Crash))
		if e.Signal != "" {
			attrs = append(attrs, slog.String("signal", e.Signal))
		}
		if e.Crash {
			level = slog.LevelWarn
		}
	case EventDisabled:
		level, msg = slog.LevelError, "worker crashing too fast, respawn disabled"
	case EventRolloutStarted, EventRolloutFinished:
		msg = "rolling restart " + string(e.Type)[len("rollout_"):]
	case EventRolloutFailed:
		level, msg = slog.LevelError, "rolling restart failed, remaining old workers keep serving"
	case EventScaled:
		msg = "scaled"
		attrs = append(attrs, slog.Int("workers", e.Workers))
	case EventSignal:
		msg = "signal received"
		attrs = append(attrs, slog.String("signal", e.Signal))
	case supervisor.EventHung:
		level, msg = slog.LevelWarn, "worker hung: replacing it"
	case supervisor.EventRecycle:
		msg = "recycling worker"
	case supervisor.EventAutoscale:
		msg = "autoscaling"
		attrs = append(attrs, slog.Int("workers", e.Workers))
	case supervisor.EventShutdown:
		msg = "all workers stopped"
	case supervisor.EventRespawnScheduled:
		level, msg = slog.LevelDebug, "respawn scheduled"
	case EventSetupError:
		level, msg = slog.LevelError, e.Reason
	case EventSaturated:
		level, msg = slog.LevelWarn, "listen queue saturated"
	case EventSaturationCleared:
		msg = "listen queue cleared"
	}
	if e.Reason != "" && e.Type != EventSetupError {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	if e.Delay != 0 {
		attrs = append(attrs, slog.Duration("after", e.Delay))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("err", e.Err.Error()))
	}
	// The record carries the time the event happened, not the time the
	// queue got to it.
	ctx := context.Background()
	if !log.Enabled(ctx, level) {
		return
	}
	r := slog.NewRecord(e.Time, level, msg, 0)
	r.AddAttrs(attrs...)
	_ = log.Handler().Handle(ctx, r)
}
