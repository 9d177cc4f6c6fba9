package ipc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herd-cluster/herd/internal/envvar"
)

// SubscriptionBuffer is how many publishes a subscription's channel holds;
// publishes arriving while it is full are dropped, so a slow subscriber
// never delays replies.
const SubscriptionBuffer = 256

// Client is a worker's side of the channel to its primary. Its methods are
// safe for concurrent use.
type Client struct {
	nc        net.Conn
	out       *sendQueue
	log       *slog.Logger
	heartbeat time.Duration

	ctx    context.Context // ends when the connection ends
	cancel context.CancelFunc
	io     sync.WaitGroup // read, write and heartbeat goroutines
	done   chan struct{}
	once   sync.Once

	nextID   atomic.Uint64
	requests atomic.Uint64

	mu          sync.Mutex
	err         error
	pending     map[uint64]chan *Message
	subs        map[string][]*subscription
	gauges      map[string]float64
	onRebalance func(index, total, epoch int)
	onPrepare   func(ctx context.Context, index, total, epoch int) error
	view        *Message   // the last rebalance
	events      []*Message // rebalances and prepares for the callback goroutine
	eventWake   chan struct{}
}

// ClientOption configures Dial and NewClient.
type ClientOption func(*clientOptions)

type clientOptions struct {
	logger  *slog.Logger
	version int
}

// WithLogger sends the client's debug messages (ignored and dropped
// messages) and errors to l. Without it they are discarded.
func WithLogger(l *slog.Logger) ClientOption {
	return func(o *clientOptions) { o.logger = l }
}

// Dial connects to the primary through the socket whose fd number is in
// HERD_IPC, announcing the slot and generation from HERD_WORKER_ID and
// HERD_GENERATION. It returns ErrNoIPC when HERD_IPC is unset. Dial takes
// the fd (it is closed in this process and not inherited by children) and
// removes HERD_IPC from the environment, so a second Dial returns ErrNoIPC.
// ctx bounds the hello exchange.
func Dial(ctx context.Context, opts ...ClientOption) (*Client, error) {
	s, ok := os.LookupEnv(EnvFD)
	if !ok || s == "" {
		return nil, ErrNoIPC
	}
	_ = os.Unsetenv(EnvFD)
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 0 {
		return nil, fmt.Errorf("ipc: %s=%q is not a file descriptor", EnvFD, s)
	}
	slot, _ := strconv.Atoi(os.Getenv(envvar.WorkerID))
	gen, _ := strconv.Atoi(os.Getenv(envvar.Generation))
	return NewClient(ctx, os.NewFile(uintptr(fd), "herd-ipc"), slot, gen, opts...)
}

// NewClient connects to the primary through f, the worker's end of Pair,
// announcing slot and gen in the hello; it takes ownership of f. It returns
// once the primary has welcomed the client, with an error matching
// ErrUnsupportedVersion if the primary refused its protocol version, or
// ctx's error if ctx ends first.
func NewClient(ctx context.Context, f *os.File, slot, gen int, opts ...ClientOption) (*Client, error) {
	o := clientOptions{version: Version}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	nc, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		return nil, fmt.Errorf("ipc: %w", err)
	}
	fr := newFrameReader(nc)
	hello := &Message{T: MsgHello, V: o.version, PID: os.Getpid(), Slot: slot, Gen: gen, Lang: "go"}
	welcome, err := handshake(ctx, nc, fr, hello)
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	c := &Client{
		nc:        nc,
		out:       newSendQueue(DefaultQueueBytes, false),
		log:       o.logger,
		heartbeat: time.Duration(welcome.HeartbeatMS) * time.Millisecond,
		done:      make(chan struct{}),
		pending:   make(map[uint64]chan *Message),
		subs:      make(map[string][]*subscription),
		gauges:    make(map[string]float64),
		eventWake: make(chan struct{}, 1),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.start(fr)
	return c, nil
}

// handshake sends hello and reads the primary's answer within ctx.
func handshake(ctx context.Context, nc net.Conn, fr *frameReader, hello *Message) (*Message, error) {
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	err := WriteFrame(nc, hello)
	var m *Message
	if err == nil {
		m, err = fr.next()
	}
	if !stop() || ctx.Err() != nil {
		return nil, fmt.Errorf("ipc: hello: %w", context.Cause(ctx))
	}
	_ = nc.SetDeadline(time.Time{})
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("ipc: hello: primary closed the connection: %w", err)
	case err != nil:
		return nil, fmt.Errorf("ipc: hello: %w", err)
	case m.T == MsgError:
		return nil, fmt.Errorf("ipc: hello refused: %w", remoteError(m))
	case m.T != MsgWelcome:
		return nil, fmt.Errorf("%w: primary answered hello with %q", ErrProtocol, m.T)
	case m.V != Version:
		return nil, fmt.Errorf("%w: primary speaks %d, this client %d", ErrUnsupportedVersion, m.V, Version)
	}
	return m, nil
}

// start runs the client's goroutines.
func (c *Client) start(fr *frameReader) {
	c.io.Add(3)
	go c.readLoop(fr)
	go c.writeLoop()
	go c.heartbeatLoop()
	events := make(chan struct{})
	go func() {
		defer close(events)
		c.eventLoop()
	}()
	go func() {
		c.io.Wait()
		<-events
		close(c.done)
	}()
}

// Close sends what is queued (waiting at most a second), closes the
// connection and waits for the client's goroutines, except one running an
// OnRebalance or OnPrepare callback, whose context it cancels: Done is
// closed once that returns too. Calls in progress fail with ErrClosed.
func (c *Client) Close() error {
	c.fail(ErrClosed, true)
	c.io.Wait()
	return nil
}

// Done is closed when the connection has ended and all of the client's
// goroutines have returned.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended: nil while it is open, ErrClosed
// after Close, or the cause (the primary closed it, sent an error, or broke
// the protocol).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// closedErr is the error of a call on a client that has ended.
func (c *Client) closedErr() error {
	err := c.Err()
	if err == nil || errors.Is(err, ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrClosed, err)
}

// fail ends the connection for err (the first reason wins). With flush the
// writer sends what is queued before closing the socket.
func (c *Client) fail(err error, flush bool) {
	c.once.Do(func() {
		c.mu.Lock()
		c.err = err
		for topic, ss := range c.subs {
			for _, s := range ss {
				close(s.ch)
			}
			delete(c.subs, topic)
		}
		c.mu.Unlock()
		if !errors.Is(err, ErrClosed) {
			c.log.Error("ipc: connection to the primary ended", "err", err)
		}
		c.cancel()
		c.out.close(nil)
		if flush {
			_ = c.nc.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
		} else {
			_ = c.nc.Close()
		}
	})
}

// readLoop reads the primary's frames until the connection ends.
func (c *Client) readLoop(fr *frameReader) {
	defer c.io.Done()
	for {
		m, err := fr.next()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("ipc: primary closed the connection: %w", io.EOF)
			}
			c.fail(err, false)
			return
		}
		switch m.T {
		case MsgReply:
			c.deliverReply(m)
		case MsgPublish:
			c.deliverPublish(m)
		case MsgRebalance, MsgPrepare:
			c.queueEvent(m)
		case MsgError:
			c.fail(fmt.Errorf("ipc: primary closed the connection: %w", remoteError(m)), false)
			return
		default:
			c.log.Debug("ipc: ignoring unknown message", "t", m.T)
		}
	}
}

// writeLoop writes the send queue to the primary.
func (c *Client) writeLoop() {
	defer c.io.Done()
	if err := c.out.run(c.nc, DefaultWriteTimeout); err != nil {
		c.fail(fmt.Errorf("ipc: write: %w", err), false)
	}
	_ = c.nc.Close()
}

// heartbeatLoop sends a heartbeat every interval the primary asked for, at
// instants aligned to the wall clock (multiples of the interval since the
// Unix epoch): every worker of a primary beats at the same instants, so
// the primary wakes once per interval for all of them rather than once per
// worker. Waking an idle process is what a heartbeat costs it.
func (c *Client) heartbeatLoop() {
	defer c.io.Done()
	if c.heartbeat <= 0 {
		return
	}
	t := time.NewTimer(untilAligned(time.Now(), c.heartbeat))
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.sendHeartbeat()
			t.Reset(untilAligned(time.Now(), c.heartbeat))
		}
	}
}

// untilAligned is the time from now to the next multiple of d since the
// Unix epoch, never less than half of d, so that a timer firing a little
// early does not beat twice in one interval.
func untilAligned(now time.Time, d time.Duration) time.Duration {
	ns := now.UnixNano()
	wait := time.Duration(int64(d) - ns%int64(d))
	if wait < d/2 {
		wait += d
	}
	return wait
}

// sendHeartbeat queues a heartbeat with the request count and gauges.
func (c *Client) sendHeartbeat() {
	c.mu.Lock()
	b, err := encode(&Message{T: MsgHeartbeat, Requests: c.requests.Load(), Gauges: c.gauges})
	c.mu.Unlock()
	if err == nil {
		err = c.out.push(b)
	}
	if err != nil && !errors.Is(err, ErrClosed) {
		c.log.Debug("ipc: heartbeat not sent", "err", err)
	}
}
