package herd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/herd-cluster/herd/internal/ipc"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// Request is a worker's delegated work, as a primary's handler sees it.
type Request struct {
	// Slot is the asking worker's slot.
	Slot int
	// Type is the delegated type the handler was registered for.
	Type string
	// Payload is the worker's payload, as JSON (nil when it sent none).
	Payload json.RawMessage
}

// HandlerFunc does delegated work in the primary (cluster2's delegation):
// workers ask with Worker.Delegate, and the primary does the work once for
// all of them. Its result is sent back as JSON; ctx ends at the worker's
// deadline. For Worker.Notify the result is dropped.
type HandlerFunc func(ctx context.Context, req Request) (any, error)

// ErrNoHandler is what Worker.Delegate returns when the primary has no
// handler for the type.
var ErrNoHandler = ipc.ErrNoHandler

// Handle registers fn for the delegated type typ, replacing any handler
// registered before. It may be called at any time, also before Run; in a
// worker it does nothing.
func (c *Cluster) Handle(typ string, fn HandlerFunc) {
	c.handlersMu.Lock()
	defer c.handlersMu.Unlock()
	if c.handlers == nil {
		c.handlers = make(map[string]HandlerFunc)
	}
	c.handlers[typ] = fn
}

// Publish sends payload (encoded as JSON) on topic to every worker that
// subscribed to it with Worker.Subscribe; topic "" reaches every worker.
// It never blocks and returns how many workers it was queued for.
// Primary only.
func (c *Cluster) Publish(topic string, payload any) (int, error) {
	if _, err := c.primary(); err != nil {
		return 0, err
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return 0, fmt.Errorf("herd: publish %q: %w", topic, err)
	}
	return c.channels.publish(topic, raw), nil
}

// channels holds the primary's IPC connection to each worker.
type channels struct {
	c         *Cluster
	log       *slog.Logger
	heartbeat time.Duration

	// greet, when set, is called with each new channel, under mu: what
	// every channel must be told (the cluster view) is either seen by a
	// sender iterating with each, or by greet.
	greet func(wc workerChannel)
	// silent, when set, is called with the slot and pid of a worker whose
	// channel closed because it never said hello: it does not speak the
	// protocol.
	silent func(slot, pid int)

	mu    sync.Mutex
	conns map[int]workerChannel // by pid
	wg    sync.WaitGroup
}

// workerChannel is the channel of one worker and its slot.
type workerChannel struct {
	slot int
	conn *ipc.Conn
}

// open makes the channel of a worker about to start in slot.
func (ch *channels) open(slot, gen int) (*os.File, func(pid int), error) {
	primary, worker, err := ipc.Pair()
	if err != nil {
		return nil, nil, err
	}
	return worker, func(pid int) {
		if pid == 0 {
			primary.Close()
			return
		}
		conn := ipc.Serve(primary, slot, pid, handler{c: ch.c, slot: slot}, ipc.ConnOptions{
			Heartbeat: ch.heartbeat,
			Logger:    ch.log,
			OnHeartbeat: func(requests uint64, _ map[string]float64) {
				if p := ch.c.pool.Load(); p != nil {
					p.Beat(pid, requests, true)
				}
			},
		})
		ch.mu.Lock()
		wc := workerChannel{slot: slot, conn: conn}
		ch.conns[pid] = wc
		if ch.greet != nil {
			ch.greet(wc)
		}
		ch.mu.Unlock()
		ch.wg.Add(1)
		go func() {
			defer ch.wg.Done()
			<-conn.Done()
			if _, ok := conn.Hello(); !ok && errors.Is(conn.Err(), ipc.ErrProtocol) && ch.silent != nil {
				ch.silent(slot, pid)
			}
			ch.mu.Lock()
			delete(ch.conns, pid)
			ch.mu.Unlock()
		}()
	}, nil
}

func (ch *channels) publish(topic string, payload json.RawMessage) int {
	if ch == nil {
		return 0
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	n := 0
	for _, wc := range ch.conns {
		if wc.conn.Publish(topic, payload) {
			n++
		}
	}
	return n
}

// each calls fn with every channel, under the lock new channels are
// greeted under. fn must not block.
func (ch *channels) each(fn func(wc workerChannel)) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for _, wc := range ch.conns {
		fn(wc)
	}
}

// closeAll closes every channel and waits for their goroutines.
func (ch *channels) closeAll() {
	ch.mu.Lock()
	for _, wc := range ch.conns {
		wc.conn.Close()
	}
	ch.mu.Unlock()
	ch.wg.Wait()
}

// handler answers one worker's requests.
type handler struct {
	c    *Cluster
	slot int
}

var _ ipc.Handler = handler{}

func (h handler) Delegate(ctx context.Context, slot int, typ string, payload json.RawMessage) (json.RawMessage, error) {
	h.c.handlersMu.RLock()
	fn := h.c.handlers[typ]
	h.c.handlersMu.RUnlock()
	if fn == nil {
		return nil, fmt.Errorf("%w %q", ipc.ErrNoHandler, typ)
	}
	v, err := fn(ctx, Request{Slot: slot, Type: typ, Payload: payload})
	if err != nil {
		return nil, err
	}
	if raw, ok := v.(json.RawMessage); ok {
		return raw, nil
	}
	if v == nil {
		return nil, nil
	}
	return json.Marshal(v)
}

func (h handler) Notify(slot int, typ string, payload json.RawMessage) {
	_, err := h.Delegate(context.Background(), slot, typ, payload)
	if err != nil && !errors.Is(err, ipc.ErrNoHandler) {
		h.c.cfg.Logger.Warn("notification handler failed", "slot", slot, "type", typ, "err", err)
	}
}

// Stats answers with the GET /stats document.
func (h handler) Stats(ctx context.Context) (json.RawMessage, error) {
	doc, err := h.c.statsDoc(ctx)
	if err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}

// Status answers with the worker's own entry of the GET /stats document.
func (h handler) Status(ctx context.Context, slot int) (json.RawMessage, error) {
	doc, err := h.c.statsDoc(ctx)
	if err != nil {
		return nil, err
	}
	for _, w := range doc.Workers {
		if w.Slot == slot {
			return json.Marshal(w)
		}
	}
	return nil, &supervisor.SlotError{Slot: slot}
}

func (h handler) ECV() (enabled, healthy bool, reason string) {
	return h.c.ecvState()
}

func (h handler) Recycle(slot int, reason string) {
	if p := h.c.pool.Load(); p != nil {
		p.Recycle(slot, "the worker asked: "+reason)
	}
}
