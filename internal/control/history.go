package control

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herd-cluster/herd/internal/supervisor"
)

// Bounds of the usage history the primary keeps for the dashboard.
const (
	// DefaultHistoryInterval is how often the history samples every
	// worker while a dashboard reads it, when Config.HistoryInterval is
	// zero.
	DefaultHistoryInterval = 5 * time.Second
	// idleFactor slows the sampling down while no dashboard reads the
	// history: every idleFactor intervals (30 s by default), so that an
	// idle primary costs next to nothing.
	idleFactor = 6
	// watchedFor is how long after a read of the history a dashboard
	// counts as open (its page reads every interval while visible).
	watchedFor = 30 * time.Second
	// HistoryWindow is how far back the history goes.
	HistoryWindow = 15 * time.Minute
	// maxHistorySlots bounds the slots with a history (the default
	// --max-workers); higher slots get none, so the memory stays bounded
	// at maxHistorySlots × HistoryWindow/interval points.
	maxHistorySlots = 1024
	// recentEvents is how many lifecycle events the history keeps for a
	// page opened after they happened.
	recentEvents = 256
)

// usagePoint is one sample of a slot's worker: 24 bytes.
type usagePoint struct {
	at  int64 // unix milliseconds
	rss uint64
	pid int32
	cpu float32
}

// slotHistory is one slot's usage ring and its restarts by reason.
type slotHistory struct {
	points   []usagePoint // a ring once full: points[next] is the oldest
	next     int
	restarts map[string]uint64
}

// history samples the CPU and memory of every slot's worker and keeps
// HistoryWindow of them per slot, so that a slot's chart goes on across
// respawns, rollouts and recycles (it is keyed by slot, not by pid): once
// per interval while a dashboard reads the history, idleFactor times less
// often otherwise. It also counts each slot's restarts by reason and keeps
// the recent lifecycle events, from one subscription to the cluster's
// events. The sampler goroutine writes and the handlers read under mu.
type history struct {
	c        Cluster
	interval time.Duration
	size     int // points per slot
	now      func() time.Time

	lastRead atomic.Int64  // unix nanoseconds of the last read of the history
	fast     atomic.Bool   // whether the sampler runs every interval
	wake     chan struct{} // a read while the sampler idles: sample now

	mu      sync.Mutex
	slots   map[int]*slotHistory
	events  []Event // a ring once full: events[evNext] is the oldest
	evNext  int
	dropped uint64 // events the subscription lost, as last reported
}

func newHistory(c Cluster, interval time.Duration) *history {
	if interval <= 0 {
		interval = DefaultHistoryInterval
	}
	return &history{
		c: c, interval: interval, size: int(HistoryWindow/interval) + 1, now: time.Now,
		slots: make(map[int]*slotHistory), wake: make(chan struct{}, 1),
	}
}

// next returns the wait before the next sample: the interval while a
// dashboard reads the history, idleFactor intervals otherwise.
func (h *history) next() time.Duration {
	watched := h.now().UnixNano()-h.lastRead.Load() < watchedFor.Nanoseconds()
	h.fast.Store(watched)
	if watched {
		return h.interval
	}
	return idleFactor * h.interval
}

// read notes that a dashboard reads the history, and wakes an idle
// sampler so that the page's charts fill in at once.
func (h *history) read() {
	h.lastRead.Store(h.now().UnixNano())
	if !h.fast.Load() {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// run samples at once and then as next says, and records every event,
// until ctx is done.
func (h *history) run(ctx context.Context) {
	ch, dropped, cancel := h.c.Events()
	defer cancel()
	h.sample(ctx)
	t := time.NewTimer(h.next())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-ch:
			if !ok {
				ch = nil // the cluster stopped: sample until the server stops
				continue
			}
			h.record(toEvent(e), dropped())
		case <-h.wake:
			h.sample(ctx)
			t.Reset(h.next())
		case <-t.C:
			h.sample(ctx)
			t.Reset(h.next())
		}
	}
}

// sample measures every slot's worker in one pass: one Stats and one
// Usage for all running workers. A slot without a running worker gets a sample
// with pid 0, which breaks its line on the charts.
func (h *history) sample(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, h.interval)
	defer cancel()
	st, err := h.c.Stats(sctx)
	if err != nil {
		return
	}
	type measured struct {
		slot int
		p    usagePoint
	}
	at := h.now().UnixMilli()
	usage := h.c.Usage(workerPIDs(st), 0) // one pass over /proc, taken now
	var got []measured
	for _, w := range st.Slots {
		if w.Slot < 0 || w.Slot >= maxHistorySlots {
			continue
		}
		p := usagePoint{at: at}
		if u, ok := usage[w.PID]; ok && w.PID > 0 && u.RSS > 0 { // absent or 0: it ended meanwhile
			p.rss, p.pid, p.cpu = u.RSS, int32(w.PID), float32(u.CPUPercent)
		}
		got = append(got, measured{w.Slot, p})
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range got {
		sh := h.slot(m.slot)
		if len(sh.points) < h.size {
			sh.points = append(sh.points, m.p)
			continue
		}
		sh.points[sh.next] = m.p
		sh.next = (sh.next + 1) % h.size
	}
}

// slot returns the history of slot, creating it. The caller holds h.mu.
func (h *history) slot(slot int) *slotHistory {
	sh := h.slots[slot]
	if sh == nil {
		sh = &slotHistory{restarts: make(map[string]uint64)}
		h.slots[slot] = sh
	}
	return sh
}

// record keeps e among the recent events and counts a restart; dropped is
// how many events the subscription has lost so far.
func (h *history) record(e Event, dropped uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if dropped > h.dropped {
		h.keep(Event{Type: EventDropped, Time: e.Time, Slot: -1, Dropped: dropped - h.dropped})
		h.dropped = dropped
	}
	if e.Type == string(supervisor.EventStarted) && e.Gen > 1 && e.Slot >= 0 && e.Slot < maxHistorySlots {
		h.slot(e.Slot).restarts[restartReason(e.Reason)]++
	}
	if e.Type == string(supervisor.EventStatus) {
		return // a worker's STATUS= text may come often: the events that matter stay
	}
	h.keep(e)
}

// keep adds e to the ring of recent events. The caller holds h.mu.
func (h *history) keep(e Event) {
	if len(h.events) < recentEvents {
		h.events = append(h.events, e)
		return
	}
	h.events[h.evNext] = e
	h.evNext = (h.evNext + 1) % recentEvents
}

// restartReason names why a slot's worker was started again, from the
// reason of its "started" event, as the restart counters of GET /stats do:
// a respawn is a crash's restart.
func restartReason(start string) string {
	switch start {
	case "respawn", "start", "":
		return "crash"
	}
	return start
}

// HistoryDoc is the document of GET /history: each slot's usage over the
// last HistoryWindow and the recent lifecycle events, oldest first. With
// since, only the samples taken after it, and no events: what a page that
// follows /events needs to keep its charts current.
type HistoryDoc struct {
	// IntervalSeconds is the time between samples while a dashboard reads
	// the history; IdleIntervalSeconds while none does.
	IntervalSeconds     float64       `json:"interval_seconds"`
	IdleIntervalSeconds float64       `json:"idle_interval_seconds"`
	WindowSeconds       float64       `json:"window_seconds"`
	Slots               []SlotHistory `json:"slots"`
	Events              []Event       `json:"events"`
}

// SlotHistory is one slot's samples, in columns (entry i of each is one
// sample; pid 0 when no worker ran), and its restarts by reason (crash,
// rollout, recycle, hung, scale) since the API started.
type SlotHistory struct {
	Slot     int               `json:"slot"`
	Restarts map[string]uint64 `json:"restarts"`
	Time     []int64           `json:"time"` // unix milliseconds
	PID      []int             `json:"pid"`
	RSS      []uint64          `json:"rss_bytes"`
	CPU      []float64         `json:"cpu_percent"`
}

// doc returns the history of slot (every slot when slot < 0) as it is
// now; with since > 0 (unix ms), only the samples taken after it and no
// events.
func (h *history) doc(slot int, since int64) HistoryDoc {
	cutoff := max(h.now().Add(-HistoryWindow).UnixMilli(), since+1)
	h.mu.Lock()
	defer h.mu.Unlock()
	doc := HistoryDoc{
		IntervalSeconds: h.interval.Seconds(), IdleIntervalSeconds: (idleFactor * h.interval).Seconds(),
		WindowSeconds: HistoryWindow.Seconds(),
		Slots:         []SlotHistory{}, Events: make([]Event, 0, len(h.events)),
	}
	for id, sh := range h.slots {
		if slot >= 0 && id != slot {
			continue
		}
		s := SlotHistory{Slot: id, Restarts: maps.Clone(sh.restarts)}
		ordered := append(slices.Clone(sh.points[sh.next:]), sh.points[:sh.next]...)
		for _, p := range ordered {
			if p.at < cutoff {
				continue
			}
			s.Time = append(s.Time, p.at)
			s.PID = append(s.PID, int(p.pid))
			s.RSS = append(s.RSS, p.rss)
			s.CPU = append(s.CPU, float64(p.cpu))
		}
		doc.Slots = append(doc.Slots, s)
	}
	slices.SortFunc(doc.Slots, func(a, b SlotHistory) int { return a.Slot - b.Slot })
	if since == 0 {
		doc.Events = append(append(doc.Events, h.events[h.evNext:]...), h.events[:h.evNext]...)
	}
	return doc
}

// handleHistory serves GET /history[?slot=N][&since=UNIXMS].
func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r, "slot", "since") {
		return
	}
	v := r.URL.Query()
	slot, since := -1, int64(0)
	if v.Has("slot") {
		n, err := strconv.Atoi(v.Get("slot"))
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("slot=%q: want a slot number", v.Get("slot")))
			return
		}
		slot = n
	}
	if v.Has("since") {
		n, err := strconv.ParseInt(v.Get("since"), 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("since=%q: want a time in unix milliseconds", v.Get("since")))
			return
		}
		since = n
	}
	s.ui.hist.read()
	writeJSON(w, http.StatusOK, s.ui.hist.doc(slot, since))
}
