package logs

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// closeTimeout bounds how long Close waits for queued output.
const closeTimeout = 5 * time.Second

// maxSpare is the largest buffer kept for reuse after a write.
const maxSpare = 1 << 20

var errClosed = errors.New("sink closed")

// enqueue appends formatted lines (out, ending at the offsets in ends) to the
// queue of target, dropping the lines that do not fit. The first line is
// always taken when the queue is empty, so a line longer than the bound
// still passes.
func (s *Sink) enqueue(target int, out []byte, ends []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(out) == 0 {
		return
	}
	buf := s.bufs[target]
	if s.queued == 0 || s.queued+len(out) <= s.bound {
		buf = append(buf, out...)
		s.queued += len(out)
		s.enqueued += uint64(len(out))
	} else {
		start := 0
		for _, end := range ends {
			if n := end - start; s.queued == 0 || s.queued+n <= s.bound {
				buf = append(buf, out[start:end]...)
				s.queued += n
				s.enqueued += uint64(n)
			} else {
				s.dropped.Add(1)
				s.pending++
			}
			start = end
		}
	}
	s.bufs[target] = buf
	if s.idle && len(buf) > 0 {
		s.idle = false
		s.cond.Signal()
	}
}

// run is the writer goroutine: it takes everything queued, writes it with
// one Write per target, and repeats until closed and drained.
func (s *Sink) run() {
	defer close(s.done)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for s.empty() && !s.closed {
			s.idle = true
			s.cond.Wait()
		}
		s.idle = false
		if s.stop || s.empty() {
			return
		}
		batch := s.bufs
		s.bufs, s.spare = s.spare, [2][]byte{}
		s.mu.Unlock()
		err := s.write(batch)
		s.mu.Lock()
		s.finish(batch, err)
	}
}

func (s *Sink) empty() bool {
	return len(s.bufs[0]) == 0 && len(s.bufs[1]) == 0
}

// write writes each non-empty buffer of batch with one Write call.
func (s *Sink) write(batch [2][]byte) error {
	var first error
	for i, b := range batch {
		if len(b) == 0 {
			continue
		}
		if _, err := s.w[i].Write(b); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// finish accounts for a written batch, recycles its buffers, queues a drop
// notice if lines were dropped and wakes Flush callers. The caller holds
// s.mu.
func (s *Sink) finish(batch [2][]byte, err error) {
	for i, b := range batch {
		s.queued -= len(b)
		s.written += uint64(len(b))
		if cap(b) <= maxSpare {
			s.spare[i] = b[:0]
		}
	}
	if err != nil && s.werr == nil {
		s.werr = err
	}
	if s.pending > 0 {
		// Output flows again: announce the drops, in their place.
		buf := s.bufs[s.errTarget]
		n := len(buf)
		buf = appendNotice(buf, s.json, s.pending)
		s.bufs[s.errTarget] = buf
		s.queued += len(buf) - n
		s.enqueued += uint64(len(buf) - n)
		s.pending = 0
	}
	if s.progress != nil {
		close(s.progress)
		s.progress = nil
	}
}

// Flush waits until every line queued before the call has been written, or
// until ctx ends.
func (s *Sink) Flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	target := s.enqueued
	for s.written < target {
		if s.stop {
			return fmt.Errorf("logs: flush: %w", errClosed)
		}
		if s.progress == nil {
			s.progress = make(chan struct{})
		}
		ch := s.progress
		s.mu.Unlock()
		var err error
		select {
		case <-ch:
		case <-s.done:
			err = errClosed // unless everything was written after all
		case <-ctx.Done():
			err = ctx.Err()
		}
		s.mu.Lock()
		if err != nil && s.written < target {
			return fmt.Errorf("logs: flush: %w", err)
		}
	}
	return nil
}

// Close stops accepting lines, waits up to a few seconds for the queued ones
// to be written and stops the writer goroutine. It returns the first error
// a writer returned, if any.
func (s *Sink) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	return s.CloseContext(ctx)
}

// CloseContext is Close with the wait for queued lines bounded by ctx. When
// ctx ends first, the rest of the queue is discarded and the writer goroutine
// exits as soon as its current Write returns.
func (s *Sink) CloseContext(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.cond.Signal()
	s.mu.Unlock()
	select {
	case <-s.done:
	case <-ctx.Done():
		s.mu.Lock()
		s.stop = true
		s.mu.Unlock()
		return fmt.Errorf("logs: close: %w", ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.werr != nil {
		return fmt.Errorf("logs: write output: %w", s.werr)
	}
	return nil
}
