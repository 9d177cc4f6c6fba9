package logs

import (
	"bytes"
	"io"
	"time"
	"unicode/utf8"
)

// span is one line inside a read buffer, without its line terminator.
type span struct{ start, end int }

// capturer reads one worker pipe. Its buffers are reused for every read so
// the steady state does not allocate per line.
type capturer struct {
	s      *Sink
	slot   int
	pid    int
	stream Stream
	target int
	ring   *ring
	buf    []byte // read buffer; holds at most one partial line between reads
	spans  []span // lines of the current chunk
	out    []byte // the chunk's lines, formatted
	ends   []int  // end offset in out of each formatted line
	tbuf   []byte // formatted time, json only
}

// Capture starts a goroutine that reads r until EOF or an error and hands
// every line to the output queue and the slot's ring. Lines end at "\n" (a
// preceding "\r" is stripped) or at end of input; lines longer than MaxLine
// are split. The returned channel is closed once r is fully read and all of
// its lines are queued (not necessarily written). Capture keeps draining r
// after Close, so the worker never blocks; lines are then only kept in the
// ring.
func (s *Sink) Capture(slot, pid int, stream Stream, r io.Reader) <-chan struct{} {
	c := &capturer{
		s:      s,
		slot:   slot,
		pid:    pid,
		stream: stream,
		target: s.target(stream),
		ring:   s.ringFor(slot),
		buf:    make([]byte, max(2*s.maxLine, minReadBuffer)),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.run(r)
	}()
	return done
}

// run reads r, delivering complete lines after every read and the rest at
// the end.
func (c *capturer) run(r io.Reader) {
	n := 0 // bytes in c.buf
	for {
		m, err := r.Read(c.buf[n:])
		n += m
		final := err != nil
		var used int
		c.spans, used = splitLines(c.buf[:n], c.s.maxLine, final, c.spans[:0])
		if len(c.spans) > 0 {
			c.deliver(c.buf[:used])
		}
		n = copy(c.buf, c.buf[used:n])
		if final {
			return
		}
	}
}

// splitLines appends the lines of data to spans and returns them with the
// number of bytes they use. Unless final, an unterminated tail shorter than
// maxLine+1 bytes is left for the next read.
func splitLines(data []byte, maxLine int, final bool, spans []span) ([]span, int) {
	start := 0
	for start < len(data) {
		rest := data[start:]
		i := bytes.IndexByte(rest[:min(len(rest), maxLine+1)], '\n')
		switch {
		case i >= 0:
			spans = append(spans, span{start, start + trimCR(rest[:i])})
			start += i + 1
		case len(rest) > maxLine:
			cut := runeCut(rest, maxLine)
			spans = append(spans, span{start, start + cut})
			start += cut
		case final:
			spans = append(spans, span{start, start + trimCR(rest)})
			start = len(data)
		default:
			return spans, start
		}
	}
	return spans, start
}

// trimCR returns len(b) less a trailing '\r'.
func trimCR(b []byte) int {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return n - 1
	}
	return len(b)
}

// runeCut returns where to split b (len(b) > n) to get at most n bytes
// without cutting a UTF-8 sequence, unless b has none in reach.
func runeCut(b []byte, n int) int {
	for cut := n; cut > 0 && cut > n-utf8.UTFMax; cut-- {
		if utf8.RuneStart(b[cut]) {
			return cut
		}
	}
	return n
}

// deliver formats the chunk's lines, queues them and records them in the
// ring.
func (c *capturer) deliver(chunk []byte) {
	now := time.Now()
	c.format(chunk, now)
	c.s.enqueue(c.target, c.out, c.ends)

	// One string for the whole chunk: ring lines share it. Subscribers get
	// the lines under the ring's lock, so that a Tail taken after Subscribe
	// and the subscription together miss no line (see Subscribe).
	text := string(chunk)
	c.ring.mu.Lock()
	subs := c.s.subs.Load()
	for _, sp := range c.spans {
		l := Line{Time: now, Slot: c.slot, PID: c.pid, Stream: c.stream, Text: text[sp.start:sp.end], Seq: c.s.seq.Add(1)}
		c.ring.push(l)
		if subs != nil {
			publish(*subs, l)
		}
	}
	c.ring.mu.Unlock()
}

// format fills c.out and c.ends with the chunk's lines in the sink's format.
func (c *capturer) format(chunk []byte, now time.Time) {
	c.out, c.ends = c.out[:0], c.ends[:0]
	if c.s.json {
		c.tbuf = now.AppendFormat(c.tbuf[:0], time.RFC3339Nano)
	}
	for _, sp := range c.spans {
		line := chunk[sp.start:sp.end]
		if c.s.json {
			c.out = appendJSON(c.out, c.tbuf, c.slot, c.pid, c.stream, line)
		} else {
			c.out = appendText(c.out, c.slot, line)
		}
		c.ends = append(c.ends, len(c.out))
	}
}
