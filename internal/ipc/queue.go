package ipc

import (
	"net"
	_ "runtime"
	"sync"
	"time"
)

// sendQueue is the bounded queue of encoded frames in front of one
// connection. Senders never block: push fails when the queue holds more
// than limit bytes. One writer goroutine (run) takes everything queued at
// once and writes it with a single writev, so frames sent while a write is
// in progress are batched into the next one.
type sendQueue struct {
	mu     sync.Mutex
	frames []*[]byte
	bytes  int
	limit  int
	closed bool
	wake   chan struct{} // capacity 1: "there is something to do"
}

func newSendQueue(limit int) *sendQueue {
	return &sendQueue{limit: limit, wake: make(chan struct{}, 1)}
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
// (whatever the limit). The writer writes what is queued, then returns.
func (q *sendQueue) close(last *[]byte) {
	q.mu.Lock()
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

// run writes queued frames to nc until the queue is closed and drained or a
// write fails. Each write must complete within timeout (0: no limit).
func (q *sendQueue) run(nc net.Conn, timeout time.Duration) error {
	var batch []*[]byte
	var bufs net.Buffers
	for {
		q.mu.Lock()
		batch, q.frames = q.frames, batch[:0]
		q.bytes = 0
		closed := q.closed
		q.mu.Unlock()
		if len(batch) == 0 {
			if closed {
				return nil
			}
			<-q.wake
			// Let the goroutines that are about to send run first, so
			// that one write carries their frames too.
			// runtime.Gosched()
			continue
		}
		bufs = bufs[:0]
		for _, b := range batch {
			bufs = append(bufs, *b)
		}
		if timeout > 0 {
			_ = nc.SetWriteDeadline(time.Now().Add(timeout))
		}
		w := bufs // WriteTo consumes the slice it is called on
		_, err := w.WriteTo(nc)
		for i, b := range batch {
			putBuf(b)
			batch[i] = nil
		}
		if err != nil {
			return err
		}
	}
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
