package control

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/herd-cluster/herd/internal/logs"
)

// Limits of the streams.
const (
	heartbeat       = 15 * time.Second
	logBuffer       = 1024   // lines a follow client may lag behind
	maxLogLines     = 100000 // the most lines=
	defaultLogLines = 100
)

// streamWriter writes a stream through a buffer with a write deadline on
// every write to the connection, so that a client that stops reading fails
// the write instead of blocking the handler, however much is written
// between two flushes.
type streamWriter struct {
	rc  *http.ResponseController
	buf *bufio.Writer
}

func newStreamWriter(w http.ResponseWriter) *streamWriter {
	rc := http.NewResponseController(w)
	return &streamWriter{rc: rc, buf: bufio.NewWriterSize(deadlineWriter{w, rc}, 32<<10)}
}

// flush sends what is buffered, failing after writeTimeout.
func (sw *streamWriter) flush() error {
	if err := sw.buf.Flush(); err != nil {
		return err
	}
	_ = sw.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	return sw.rc.Flush()
}

// deadlineWriter gives each write writeTimeout to complete.
type deadlineWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(writeTimeout)) // unsupported by some test writers
	return d.w.Write(p)
}

// handleEvents streams every lifecycle event as server-sent events: event
// TYPE, data a JSON Event. A comment line opens the stream once the
// subscription is in place, and every heartbeat keeps it alive; events the
// client was too slow for are reported as an event "dropped".
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	release, ok := s.openStream(w)
	if !ok {
		return
	}
	defer release()
	ch, dropped, cancel := s.c.Events()
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sw := newStreamWriter(w)
	sw.buf.WriteString(": subscribed\n\n")
	if sw.flush() != nil {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	var reported uint64
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			sw.buf.WriteString(": keep-alive\n\n")
			reported = reportDropped(sw.buf, dropped(), reported)
		case e, ok := <-ch:
			if !ok {
				return
			}
			reported = reportDropped(sw.buf, dropped(), reported)
			writeSSE(sw.buf, toEvent(e))
			if len(ch) > 0 {
				continue // flush once the burst is written
			}
		}
		if sw.flush() != nil {
			return
		}
	}
}

// openStream takes one of the maxStreams places of an event or log stream,
// or answers 503 when none is free. release gives the place back.
func (s *Server) openStream(w http.ResponseWriter) (release func(), ok bool) {
	select {
	case s.streams <- struct{}{}:
		return func() { <-s.streams }, true
	default:
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("%v (%d): close one and try again", errStreamsFull, maxStreams))
		return nil, false
	}
}

// reportDropped writes a "dropped" event when more events were dropped
// than reported, and returns the new number reported.
func reportDropped(w *bufio.Writer, dropped, reported uint64) uint64 {
	if dropped > reported {
		writeSSE(w, Event{Type: EventDropped, Time: time.Now(), Slot: -1, Dropped: dropped - reported})
	}
	return max(dropped, reported)
}

// writeSSE writes e as one server-sent event.
func writeSSE(w *bufio.Writer, e Event) {
	b, _ := json.Marshal(e) // cannot fail: plain fields
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, b)
}

// logsQuery is what GET /logs asks for.
type logsQuery struct {
	slot   int // -1 for every slot
	lines  int
	follow bool
}

func parseLogsQuery(r *http.Request) (logsQuery, error) {
	q := logsQuery{slot: -1, lines: defaultLogLines}
	v := r.URL.Query()
	for k := range v {
		if k != "slot" && k != "lines" && k != "follow" {
			return q, fmt.Errorf("unknown query parameter %q", k)
		}
	}
	if v.Has("slot") {
		n, err := strconv.Atoi(v.Get("slot"))
		if err != nil || n < 0 {
			return q, fmt.Errorf("slot=%q: want a slot number", v.Get("slot"))
		}
		q.slot = n
	}
	if v.Has("lines") {
		n, err := strconv.Atoi(v.Get("lines"))
		if err != nil || n < 0 || n > maxLogLines {
			return q, fmt.Errorf("lines=%q: want a number from 0 to %d", v.Get("lines"), maxLogLines)
		}
		q.lines = n
	}
	var err error
	q.follow, err = boolParam(r, "follow")
	return q, err
}

// handleLogs writes the last lines of worker output as JSON lines
// (LogLine), of one slot or of every slot interleaved in capture order,
// and with follow=1 goes on with new lines until the client leaves.
func (s *Server) handleLogs(w http.ResponseWriter, r *http.Request) {
	q, err := parseLogsQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.cfg.Logs == nil {
		writeError(w, http.StatusNotFound, "worker output is not kept here")
		return
	}
	st, err := s.c.Stats(r.Context())
	if err != nil {
		writeClusterError(w, err)
		return
	}
	if q.slot >= len(st.Slots) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no worker slot %d", q.slot))
		return
	}
	var sub *logs.Subscription
	if q.follow {
		release, ok := s.openStream(w)
		if !ok {
			return
		}
		defer release()
		sub = s.cfg.Logs.Subscribe(q.slot, logBuffer) // before Tail: see Subscribe
		defer sub.Close()
	}
	slots := []int{q.slot}
	if q.slot < 0 {
		slots = slots[:0]
		for _, ws := range st.Slots {
			slots = append(slots, ws.Slot)
		}
	}
	tail, seen := s.tail(slots, q.lines)
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	sw := newStreamWriter(w)
	enc := json.NewEncoder(sw.buf)
	for _, l := range tail {
		_ = enc.Encode(toLogLine(l))
	}
	if sw.flush() != nil || sub == nil {
		return
	}
	s.follow(r, sw, enc, sub, seen)
}

// tail returns the last n lines of the slots in capture order, and per
// slot the Seq of the last line looked at.
func (s *Server) tail(slots []int, n int) ([]logs.Line, map[int]uint64) {
	seen := make(map[int]uint64, len(slots))
	var all []logs.Line
	for _, slot := range slots {
		lines := s.cfg.Logs.Tail(slot, n)
		if len(lines) > 0 {
			seen[slot] = lines[len(lines)-1].Seq
		}
		all = append(all, lines...)
	}
	slices.SortFunc(all, func(a, b logs.Line) int { return cmp.Compare(a.Seq, b.Seq) })
	return all[max(0, len(all)-n):], seen
}

// follow streams the subscription's lines not already sent, and a notice
// when lines were dropped, until the client leaves or the server stops.
func (s *Server) follow(r *http.Request, sw *streamWriter, enc *json.Encoder, sub *logs.Subscription, seen map[int]uint64) {
	var reported uint64
	for {
		select {
		case <-r.Context().Done():
			return
		case l, ok := <-sub.C():
			if !ok {
				return
			}
			if d := sub.Dropped(); d > reported {
				_ = enc.Encode(LogLine{Time: time.Now(), Slot: -1, Stream: "herd", Dropped: d - reported,
					Text: fmt.Sprintf("herd: dropped %d lines: this client reads too slowly", d-reported)})
				reported = d
			}
			if l.Seq > seen[l.Slot] {
				_ = enc.Encode(toLogLine(l))
			}
			if len(sub.C()) > 0 {
				continue
			}
		}
		if sw.flush() != nil {
			return
		}
	}
}
