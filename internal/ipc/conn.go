package ipc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Handler answers a worker's requests on the primary's side. Its methods
// may be called from many goroutines at once, for several workers.
type Handler interface {
	// Delegate does the work of a delegate message of type typ and returns
	// the reply's payload (nil for none). It returns an error matching
	// ErrNoHandler when nobody handles typ, ErrShuttingDown to refuse work
	// while stopping, and honours ctx, which ends at the worker's deadline
	// or when the connection closes.
	Delegate(ctx context.Context, slot int, typ string, payload json.RawMessage) (json.RawMessage, error)
	// Notify handles a fire-and-forget delegate. It is called on the
	// connection's read goroutine, in the worker's order, and should return
	// quickly: it delays that worker's later messages.
	Notify(slot int, typ string, payload json.RawMessage)
	// Stats returns the cluster stats document.
	Stats(ctx context.Context) (json.RawMessage, error)
	// Status returns the status document of the worker in slot.
	Status(ctx context.Context, slot int) (json.RawMessage, error)
	// ECV returns the node's ECV state.
	ECV() (enabled, healthy bool, reason string)
	// Recycle asks for the worker in slot to be replaced gracefully. Like
	// Notify, it runs on the read goroutine and should return quickly.
	Recycle(slot int, reason string)
}

// Defaults of ConnOptions.
const (
	DefaultHeartbeat    = time.Second
	DefaultHelloTimeout = 5 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultQueueBytes   = 4 << 20
	DefaultMaxInFlight  = 256
	// DefaultMaxInFlightBytes is 8 MiB.
	DefaultMaxInFlightBytes = 8 << 20
)

// ConnOptions configure a Conn. The zero value uses the defaults.
type ConnOptions struct {
	// Heartbeat is the interval at which the worker is asked to send
	// heartbeats. Zero means DefaultHeartbeat; negative asks for none.
	Heartbeat time.Duration
	// HelloTimeout bounds the wait for the worker's hello. Zero means
	// DefaultHelloTimeout.
	HelloTimeout time.Duration
	// WriteTimeout bounds each write to the worker; a worker that does not
	// read for that long is closed as stuck (ErrStuck). Zero means
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// QueueBytes bounds the frames waiting to be written to the worker; a
	// send that would exceed it closes the connection as stuck. Zero means
	// DefaultQueueBytes; it is raised to at least MaxFrame.
	QueueBytes int
	// MaxInFlight bounds the requests (delegate, stats, status, ecv) of one
	// worker being handled at once; further requests wait, unread, for one
	// to finish. Zero means DefaultMaxInFlight.
	MaxInFlight int
	// MaxInFlightBytes bounds the payload bytes of the requests of one
	// worker being handled at once; further requests wait, unread, as past
	// MaxInFlight (a single request is always handled). Zero means
	// DefaultMaxInFlightBytes.
	MaxInFlightBytes int
	// Logger receives the connection's errors (at error level) and ignored
	// messages (at debug level), with "slot" and "pid" attributes. Nil
	// discards them.
	Logger *slog.Logger
	// OnHeartbeat, if not nil, is called on the read goroutine with each
	// heartbeat's cumulative request count and gauges (a map the callback
	// may keep). It must not block.
	OnHeartbeat func(requests uint64, gauges map[string]float64)
}

// withDefaults returns o with its zero fields set to the defaults.
func (o ConnOptions) withDefaults() ConnOptions {
	if o.Heartbeat == 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.HelloTimeout <= 0 {
		o.HelloTimeout = DefaultHelloTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.QueueBytes == 0 {
		o.QueueBytes = DefaultQueueBytes
	}
	o.QueueBytes = max(o.QueueBytes, MaxFrame+headerLen)
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.MaxInFlightBytes <= 0 {
		o.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Conn is the primary's side of one worker's channel. It reads and answers
// the worker's messages on goroutines of its own; its methods never block
// on the worker and are safe for concurrent use.
type Conn struct {
	slot int
	h    Handler
	opts ConnOptions
	log  *slog.Logger
	nc   net.Conn
	out  *sendQueue

	ctx    context.Context // ends when the connection closes
	cancel context.CancelFunc
	wg     sync.WaitGroup // the read and write goroutines and requests in flight
	done   chan struct{}
	once   sync.Once

	reqs       chan *Message // to idle request goroutines
	requesters atomic.Int32  // request goroutines running
	idle       atomic.Int32  // request goroutines waiting on reqs
	inFlight   atomic.Int32  // requests not yet answered
	payloads   *inFlightBytes

	lastBeat atomic.Int64 // unix nanoseconds
	requests atomic.Uint64
	hello    atomic.Pointer[Message] // what is kept of the hello: no payload
	topics   topicSet

	mu       sync.Mutex
	err      error
	prepares map[int][]chan error
}

// Serve starts serving the worker in slot, whose process is pid, on f (the
// primary's end of Pair), and returns at once. Serve takes ownership of f.
// If f is not a usable socket the Conn is returned already closed, with
// the reason in Err.
func Serve(f *os.File, slot, pid int, h Handler, opts ConnOptions) *Conn {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{
		slot:     slot,
		h:        h,
		opts:     opts,
		log:      opts.Logger.With("slot", slot, "pid", pid),
		out:      newSendQueue(opts.QueueBytes, true),
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
		reqs:     make(chan *Message),
		payloads: newInFlightBytes(opts.MaxInFlightBytes),
		prepares: make(map[int][]chan error),
	}
	nc, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		c.fail(fmt.Errorf("ipc: serve slot %d: %w", slot, err), nil)
		close(c.done)
		return c
	}
	c.nc = nc
	c.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
	go func() {
		c.wg.Wait()
		close(c.done)
	}()
	return c
}

// Close closes the connection and returns at once. Done is closed when
// the read and write goroutines and the Handler calls in flight (whose
// contexts Close cancels) have returned. Close is safe to call from a
// Handler method and more than once.
func (c *Conn) Close() error {
	c.fail(ErrClosed, nil)
	return nil
}

// Done is closed when the connection has ended and no Handler method is
// running or will be called for it.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended: nil while it is open, ErrClosed
// after Close, an error matching io.EOF when the worker closed its end, a
// *MalformedError, ErrFrameTooLarge, ErrStuck, ErrProtocol (with ErrLimit
// for a worker over a limit) or ErrUnsupportedVersion when the worker
// misbehaved.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// LastHeartbeat returns when the worker's last heartbeat, or its hello,
// arrived; the zero Time before the hello.
func (c *Conn) LastHeartbeat() time.Time {
	ns := c.lastBeat.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Requests returns the cumulative request count of the worker's last
// heartbeat.
func (c *Conn) Requests() uint64 { return c.requests.Load() }

// Hello returns the language the worker's client announced in its hello,
// and whether the hello has been accepted.
func (c *Conn) Hello() (lang string, ok bool) {
	m := c.hello.Load()
	if m == nil {
		return "", false
	}
	return m.Lang, true
}

// Subscribed reports whether the worker is subscribed to topic.
func (c *Conn) Subscribed(topic string) bool { return c.topics.has(topic) }

// Publish sends payload on topic to the worker if it is subscribed to
// topic; topic "" is a broadcast that every worker receives. It returns
// false when the worker is not subscribed, the payload is not valid JSON,
// or the message could not be queued (the connection is then closed as
// stuck, or was already closed). Publish never blocks.
func (c *Conn) Publish(topic string, payload json.RawMessage) bool {
	if topic != "" && !c.Subscribed(topic) {
		return false
	}
	return c.Send(&Message{T: MsgPublish, Topic: topic, Payload: payload}) == nil
}

// Send queues m for the worker without blocking. Messages sent before the
// worker's hello is accepted follow the welcome. When the send queue is
// full the connection is closed as stuck and Send returns an error matching
// ErrStuck; after the connection ended it returns an error matching
// ErrClosed.
func (c *Conn) Send(m *Message) error {
	b, err := encode(m)
	if err != nil {
		return err
	}
	return c.queued(c.out.push(b))
}

// sendNow is Send for the connection's own goroutines, which may write
// on the spot (see sendQueue.writeNow).
func (c *Conn) sendNow(m *Message) error {
	b, err := encode(m)
	if err != nil {
		return err
	}
	return c.queued(c.out.writeNow(b, c.nc, c.opts.WriteTimeout))
}

// queued handles the outcome of queueing or writing a frame.
func (c *Conn) queued(err error) error {
	switch {
	case errors.Is(err, ErrQueueFull):
		err = fmt.Errorf("%w: send queue over %d bytes", ErrStuck, c.opts.QueueBytes)
		c.fail(err, nil)
		return err
	case errors.Is(err, ErrClosed):
		return err
	case err != nil:
		c.writeFailed(err)
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return nil
}

// Rebalance tells the worker its cluster index, the cluster total and the
// epoch of that view. It does not wait for the worker.
func (c *Conn) Rebalance(index, total, epoch int) error {
	return c.Send(&Message{T: MsgRebalance, Index: index, Total: total, Epoch: epoch})
}

// Prepare announces the view of epoch to the worker and waits for its
// prepared acknowledgement. It returns the worker's error (a *RemoteError
// with code handler_error) if it could not prepare, ctx's error, or
// ErrClosed if the connection ends first.
func (c *Conn) Prepare(ctx context.Context, index, total, epoch int) error {
	ch := make(chan error, 1)
	c.mu.Lock()
	c.prepares[epoch] = append(c.prepares[epoch], ch)
	c.mu.Unlock()
	defer c.dropPrepare(epoch, ch)
	if err := c.Send(&Message{T: MsgPrepare, Index: index, Total: total, Epoch: epoch}); err != nil {
		return err
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrClosed
	}
}

// dropPrepare forgets a Prepare's waiter.
func (c *Conn) dropPrepare(epoch int, ch chan error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ws := c.prepares[epoch]
	for i, w := range ws {
		if w == ch {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(c.prepares, epoch)
	} else {
		c.prepares[epoch] = ws
	}
}

// fail ends the connection for err (the first reason wins). With a last
// frame, the writer flushes what is queued and that frame, within a short
// deadline, before closing the socket; otherwise the socket closes at once.
func (c *Conn) fail(err error, last *Message) {
	c.once.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		c.logEnd(err)
		var b *[]byte
		if last != nil {
			b, _ = encode(last)
		}
		c.out.close(b) // before cancel: no reply to a canceled call goes out
		defer c.cancel()
		if c.nc == nil {
			return
		}
		if b == nil {
			_ = c.nc.Close()
			return
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
	})
}

// errNoHello is why the channel of a worker that never said hello closes.
var errNoHello = errors.New("no hello")

// logEnd logs why the connection ended, at a level matching whose fault
// it is.
func (c *Conn) logEnd(err error) {
	switch {
	case errors.Is(err, ErrClosed):
	case errors.Is(err, io.EOF):
		c.log.Debug("ipc: worker closed the connection")
	case errors.Is(err, errNoHello):
		// The channel is optional: a command that does not speak the
		// protocol never says hello, and that is no fault.
		c.log.Debug("ipc: the worker does not use its channel", "err", err)
	default:
		c.log.Error("ipc: closing worker connection", "err", err)
	}
}

// writeLoop writes the send queue to the worker.
func (c *Conn) writeLoop() {
	defer c.wg.Done()
	if err := c.out.run(c.nc, c.opts.WriteTimeout); err != nil {
		c.writeFailed(err)
	}
	c.fail(ErrClosed, nil)
	_ = c.nc.Close()
}

// writeFailed ends the connection after a failed write.
func (c *Conn) writeFailed(err error) {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("%w: write blocked for %v", ErrStuck, c.opts.WriteTimeout)
	case errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNRESET):
		err = fmt.Errorf("ipc: worker closed the connection: %w", io.EOF)
	default:
		err = fmt.Errorf("ipc: write: %w", err)
	}
	c.fail(err, nil)
}
