package ipc

import (
	"net"
	"runtime"
	"sync"
	"time"
)

// sendQueue is the bounded queue of encoded frames in front of one
// connection. Senders never block: push fails when the queue holds more
// than limit bytes. One writer goroutine (run) takes everything queued at
// once and writes it with a single writev, so frames sent while a write is
// in progress are batched into the next one.
type sendQueue struct {
	mu      sync.Mutex
	frames  []*[]byte
	bytes   int
	limit   int
	closed  bool
	held    bool          // the writer waits for release
	writing bool          // a write is in progress (run's or writeNow's)
	wake    chan struct{} // capacity 1: "there is something to do"
}

// newSendQueue returns a queue of at most limit bytes. A held queue
// accepts frames but writes none before release.
func newSendQueue(limit int, held bool) *sendQueue {
	return &sendQueue{limit: limit, held: held, wake: make(chan struct{}, 1)}
}

// release puts first in front of the frames queued so far and lets the
// writer send them.
func (q *sendQueue) release(first *[]byte) {
	q.mu.Lock()
	if !q.closed {
		q.frames = append([]*[]byte{first}, q.frames...)
		q.bytes += len(*first)
	} else {
		putBuf(first)
	}
	q.held = false
	q.mu.Unlock()
	q.signal()
}

// push queues an encoded frame and takes ownership of b. It fails with
// ErrClosed after close and with ErrQueueFull when the queue is over its
// limit; b is then recycled.
func (q *sendQueue) push(b *[]byte) error {
	q.mu.Lock()
	var err error
	switch {
	case q.closed:
		err = ErrClosed
	case q.bytes+len(*b) > q.limit && q.bytes > 0:
		err = ErrQueueFull
	default:
		q.frames = append(q.frames, b)
		q.bytes += len(*b)
	}
	q.mu.Unlock()
	if err != nil {
		putBuf(b)
		return err
	}
	q.signal()
	return nil
}

// close stops accepting frames, after queueing last if it is not nil
// (whatever the limit). The writer writes what is queued, then returns; if
// the queue was still held, only last is written.
func (q *sendQueue) close(last *[]byte) {
	q.mu.Lock()
	if q.held {
		for _, b := range q.frames {
			putBuf(b)
		}
		q.frames, q.bytes, q.held = nil, 0, false
	}
	if !q.closed && last != nil {
		q.frames = append(q.frames, last)
	}
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *sendQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// closeFlushTimeout bounds the writing of the frames left when a queue is
// closed.
const closeFlushTimeout = time.Second

// run writes queued frames to nc until the queue is closed and drained or a
// write fails. Each write must complete within timeout (0: no limit), and
// within closeFlushTimeout once the queue is closed.
func (q *sendQueue) run(nc net.Conn, timeout time.Duration) error {
	var batch []*[]byte
	var bufs net.Buffers
	for {
		batch = batch[:0]
		q.mu.Lock()
		busy := q.writing // writeNow is writing
		if !q.held && !busy {
			batch, q.frames = q.frames, batch[:0]
			q.bytes = 0
			q.writing = len(batch) > 0
		}
		closed := q.closed
		finished := closed && !busy
		q.mu.Unlock()
		if len(batch) == 0 {
			if finished {
				return nil
			}
			<-q.wake
			// Let the goroutines that are about to send run first, so
			// that one write carries their frames too.
			runtime.Gosched()
			continue
		}
		bufs = bufs[:0]
		for _, b := range batch {
			bufs = append(bufs, *b)
		}
		switch {
		case closed: // the last frames: do not wait long for them to go
			_ = nc.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
		case timeout > 0:
			_ = nc.SetWriteDeadline(time.Now().Add(timeout))
		}
		w := bufs // WriteTo consumes the slice it is called on
		_, err := w.WriteTo(nc)
		q.mu.Lock()
		q.writing = false
		q.mu.Unlock()
		for i, b := range batch {
			putBuf(b)
			batch[i] = nil
		}
		if err != nil {
			return err
		}
	}
}

// writeNow writes b to nc on the calling goroutine if nothing is queued
// or being written, sparing the hand-over to the writer goroutine; the
// caller may block for up to timeout (0: no limit). Otherwise it queues b
// as push does. A write error is returned for the caller to end the
// connection with.
func (q *sendQueue) writeNow(b *[]byte, nc net.Conn, timeout time.Duration) error {
	q.mu.Lock()
	if q.closed || q.held || q.writing || len(q.frames) > 0 {
		q.mu.Unlock()
		return q.push(b)
	}
	q.writing = true
	q.mu.Unlock()
	if timeout > 0 {
		_ = nc.SetWriteDeadline(time.Now().Add(timeout))
	}
	_, err := nc.Write(*b)
	putBuf(b)
	q.mu.Lock()
	q.writing = false
	more := len(q.frames) > 0 || q.closed
	q.mu.Unlock()
	if more {
		q.signal()
	}
	return err
}

// encode encodes m into a pooled buffer for push.
func encode(m *Message) (*[]byte, error) {
	b := getBuf()
	var err error
	if *b, err = appendFrame(*b, m); err != nil {
		putBuf(b)
		return nil, err
	}
	return b, nil
}
