// Package logs forwards worker output to the primary's output without ever
// blocking a worker, and keeps the last lines of every slot for inspection.
//
// Each worker pipe is drained by a Capture goroutine that splits the data
// into lines. Lines are formatted and appended to a bounded in-memory queue
// that a single writer goroutine writes out; when the queue is full, lines
// are dropped and counted, and a notice is written once output flows again.
// Independently of the queue, every line is kept in a per-slot ring and
// offered to subscribers (Subscribe), each behind a bounded channel that
// drops and counts what a slow reader cannot take. RotatingFile is a
// size-rotated log file to write the output to.
package logs

import (
	"io"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Stream identifies which worker pipe a line came from.
type Stream uint8

const (
	// Stdout is a worker's standard output.
	Stdout Stream = iota
	// Stderr is a worker's standard error.
	Stderr
)

// String returns "stdout" or "stderr".
func (s Stream) String() string {
	switch s {
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	}
	return "stream(" + strconv.Itoa(int(s)) + ")"
}

// Line is one line of worker output, as kept in a slot's ring.
type Line struct {
	Time   time.Time
	Slot   int
	PID    int
	Stream Stream
	Text   string
	// Seq orders lines across slots: it grows by one for every line the
	// Sink captures, in the order lines enter the rings.
	Seq uint64
}

// Config configures a Sink. The zero value is usable: output is discarded.
type Config struct {
	// Stdout and Stderr receive worker stdout and stderr lines; nil means
	// io.Discard. Drop notices go to Stderr.
	Stdout, Stderr io.Writer
	// Format is "text" ("[<slot>] <text>\n", the default for any other
	// value) or "json" (one object per line with the keys time, slot, pid,
	// stream and msg).
	Format string
	// QueueBytes bounds the formatted bytes queued or being written; 0
	// means 8 MiB.
	QueueBytes int
	// RingLines is the number of lines kept per slot; 0 means 1000.
	RingLines int
	// MaxLine is the longest line in bytes; longer lines are split. 0
	// means 64 KiB.
	MaxLine int
}

const (
	defaultQueueBytes = 8 << 20
	defaultRingLines  = 1000
	defaultMaxLine    = 64 << 10
	minReadBuffer     = 64 << 10
)

// Sink receives worker output from Capture, writes it to the configured
// writers from one goroutine, and keeps per-slot rings of recent lines.
// All methods are safe for concurrent use.
type Sink struct {
	json      bool
	bound     int
	ringLines int
	maxLine   int
	w         [2]io.Writer // write targets; index 1 unused when both are the same
	errTarget int          // target index of Stderr, where notices go

	dropped atomic.Uint64
	seq     atomic.Uint64 // the last Line.Seq given

	subMu sync.Mutex                      // serializes changes to subs
	subs  atomic.Pointer[[]*Subscription] // copy on write

	mu       sync.Mutex
	cond     *sync.Cond // signals the writer; uses mu
	bufs     [2][]byte  // formatted lines waiting for the writer, per target
	spare    [2][]byte  // recycled buffers
	queued   int        // bytes in bufs plus bytes being written
	enqueued uint64     // total bytes ever queued
	written  uint64     // total bytes ever handed to the writers
	pending  uint64     // drops not yet announced
	idle     bool       // the writer waits on cond
	closed   bool       // no more lines are accepted
	stop     bool       // the writer must exit after its current write
	werr     error      // first write error
	progress chan struct{}
	done     chan struct{} // closed when the writer goroutine exits

	ringMu sync.Mutex
	rings  map[int]*ring
}

// New returns a Sink for cfg and starts its writer goroutine. Call Close to
// stop it.
func New(cfg Config) *Sink {
	s := &Sink{
		json:      cfg.Format == "json",
		bound:     orDefault(cfg.QueueBytes, defaultQueueBytes),
		ringLines: orDefault(cfg.RingLines, defaultRingLines),
		maxLine:   orDefault(cfg.MaxLine, defaultMaxLine),
		w:         [2]io.Writer{orDiscard(cfg.Stdout), orDiscard(cfg.Stderr)},
		errTarget: int(Stderr),
		done:      make(chan struct{}),
		rings:     make(map[int]*ring),
	}
	if samePointer(s.w[0], s.w[1]) {
		// One queue keeps the arrival order of both streams.
		s.w[1] = nil
		s.errTarget = 0
	}
	s.cond = sync.NewCond(&s.mu)
	go s.run()
	return s
}

// Dropped returns how many lines were dropped because the queue was full.
func (s *Sink) Dropped() uint64 {
	return s.dropped.Load()
}

// Tail returns up to n of the slot's most recent lines, oldest first. With
// streams given, only lines of those streams are considered.
func (s *Sink) Tail(slot, n int, stream ...Stream) []Line {
	s.ringMu.Lock()
	r := s.rings[slot]
	s.ringMu.Unlock()
	if r == nil || n <= 0 {
		return nil
	}
	return r.tail(n, stream)
}

// Forget drops the ring of a slot that was removed. Output still captured
// for the slot afterwards is written but no longer kept.
func (s *Sink) Forget(slot int) {
	s.ringMu.Lock()
	delete(s.rings, slot)
	s.ringMu.Unlock()
}

// ringFor returns the slot's ring, creating it if needed.
func (s *Sink) ringFor(slot int) *ring {
	s.ringMu.Lock()
	defer s.ringMu.Unlock()
	r := s.rings[slot]
	if r == nil {
		r = &ring{size: s.ringLines}
		s.rings[slot] = r
	}
	return r
}

// target returns the queue index for a stream's lines.
func (s *Sink) target(stream Stream) int {
	if stream == Stderr {
		return s.errTarget
	}
	return 0
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// samePointer reports whether a and b are the same pointer-typed writer
// (e.g. one *os.File). Other kinds are not compared: == could panic.
func samePointer(a, b io.Writer) bool {
	ta := reflect.TypeOf(a)
	if ta == nil || ta != reflect.TypeOf(b) || ta.Kind() != reflect.Pointer {
		return false
	}
	return a == b
}
