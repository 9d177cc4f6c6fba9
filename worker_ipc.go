package herd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/ipc"
)

// ErrNoChannel is returned by the Worker methods that talk to the primary
// when the worker has no channel to it (it was not started by a herd
// primary that gives one).
var ErrNoChannel = errors.New("herd: no channel to the primary")

// Message is what a worker receives on a topic it subscribed to.
type Message struct {
	Topic   string
	Payload json.RawMessage
}

// Delegate asks the primary to do work of type typ once for all workers
// (cluster2's delegation): the primary's handler registered with
// Cluster.Handle runs with payload (encoded as JSON) and its result comes
// back as JSON. The deadline of ctx travels with the request; replies are
// matched to requests, so Delegate may be called from many goroutines. A
// type with no handler fails at once with an error matching ErrNoHandler.
// In single-process mode the handler runs in this process.
func (w *Worker) Delegate(ctx context.Context, typ string, payload any) (json.RawMessage, error) {
	if w.local != nil {
		raw, err := json.Marshal(payload)
		if err != nil {
			return nil, err
		}
		return handler{c: w.local}.Delegate(ctx, w.id, typ, raw)
	}
	if w.ipc == nil {
		return nil, ErrNoChannel
	}
	return w.ipc.Delegate(ctx, typ, payload)
}

// Notify hands work of type typ to the primary without waiting for it.
func (w *Worker) Notify(typ string, payload any) error {
	if w.local != nil {
		raw, err := json.Marshal(payload)
		if err != nil {
			return err
		}
		handler{c: w.local}.Notify(w.id, typ, raw)
		return nil
	}
	if w.ipc == nil {
		return ErrNoChannel
	}
	return w.ipc.Notify(typ, payload)
}

// Subscribe returns the messages the primary publishes on topic, until
// cancel is called or the channel to the primary ends. Messages published
// to every worker (topic "") arrive on every subscription. A worker may
// subscribe to 256 topics of at most 1024 bytes each, 64 KiB together;
// past that Subscribe returns an error.
func (w *Worker) Subscribe(topic string) (<-chan Message, func(), error) {
	if w.ipc == nil {
		return nil, nil, ErrNoChannel
	}
	in, cancel, err := w.ipc.Subscribe(topic)
	if err != nil {
		return nil, nil, err
	}
	out := make(chan Message, cap(in))
	go func() {
		defer close(out)
		for m := range in {
			out <- Message{Topic: m.Topic, Payload: m.Payload}
		}
	}()
	return out, cancel, nil
}

// ClusterStats returns the cluster's stats: the document GET /stats
// serves, which workers in any language receive over IPC.
func (w *Worker) ClusterStats(ctx context.Context) (StatsDoc, error) {
	var doc StatsDoc
	if w.ipc == nil {
		return doc, ErrNoChannel
	}
	raw, err := w.ipc.Stats(ctx)
	if err != nil {
		return doc, err
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return doc, fmt.Errorf("herd: stats from the primary: %w", err)
	}
	return doc, nil
}

// Status returns this worker's own entry of the stats document.
func (w *Worker) Status(ctx context.Context) (WorkerDoc, error) {
	var ws WorkerDoc
	if w.ipc == nil {
		return ws, ErrNoChannel
	}
	raw, err := w.ipc.Status(ctx)
	if err != nil {
		return ws, err
	}
	if err := json.Unmarshal(raw, &ws); err != nil {
		return ws, fmt.Errorf("herd: status from the primary: %w", err)
	}
	return ws, nil
}

// StatsDoc is the cluster's stats as GET /stats and the IPC stats message
// carry them (JSON with snake_case names).
type StatsDoc = control.StatsDoc

// WorkerDoc is one slot's entry of a StatsDoc.
type WorkerDoc = control.WorkerStats

// Recycle asks the primary to replace this worker gracefully: a new worker
// is started and this one is asked to stop once the new one is ready.
func (w *Worker) Recycle(reason string) error {
	if w.ipc == nil {
		return ErrNoChannel
	}
	return w.ipc.Recycle(reason)
}

// AddRequests adds n to the requests this worker reports to the primary,
// which recycles it after Config.MaxRequests. ServeHTTP and CountRequests
// count for you.
func (w *Worker) AddRequests(n uint64) {
	if w.ipc != nil {
		w.ipc.AddRequests(n)
	}
}

// SetGauge reports a value of the application's with the next heartbeat.
func (w *Worker) SetGauge(name string, v float64) {
	if w.ipc != nil {
		w.ipc.SetGauge(name, v)
	}
}

// CountRequests wraps h so that every request it serves is counted for
// Config.MaxRequests.
func (w *Worker) CountRequests(h http.Handler) http.Handler {
	if w.ipc == nil {
		return h
	}
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.ipc.AddRequests(1)
		h.ServeHTTP(rw, r)
	})
}

// openChannel connects the worker to the primary when the primary gave it
// a channel.
func (w *Worker) openChannel(ctx context.Context) error {
	c, err := ipc.Dial(ctx)
	switch {
	case errors.Is(err, ipc.ErrNoIPC):
		return nil
	case err != nil:
		return fmt.Errorf("herd: channel to the primary: %w", err)
	}
	w.ipc = c
	c.OnRebalance(w.cluster.apply)
	return nil
}

// ECVHandler returns cluster2's ECV endpoint for the app's own mux (mount
// it at /ecv): 200 and "status=AVAILABLE&ServeTraffic=true&…" while the
// primary's ECV is enabled and healthy and validate (when not nil) returns
// nil; 400 and "status=DISABLED&ServeTraffic=false&…&reason=…" otherwise.
// Operators take the node out of rotation with `herd ecv disable`.
func (w *Worker) ECVHandler(validate func(*http.Request) error) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		enabled, healthy, reason := true, true, ""
		if w.ipc != nil {
			var err error
			enabled, healthy, reason, err = w.ipc.ECV(r.Context())
			if err != nil {
				healthy, reason = false, "asking the primary: "+err.Error()
			}
		}
		switch {
		case !enabled:
			healthy, reason = false, "disabled by an operator"
		case healthy && validate != nil:
			if err := validate(r); err != nil {
				healthy, reason = false, err.Error()
			}
		}
		control.WriteECV(rw, healthy, w.port, reason)
	})
}
