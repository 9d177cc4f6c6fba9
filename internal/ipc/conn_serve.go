package ipc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// readLoop reads the worker's frames: first the hello, then everything
// else until the connection ends.
func (c *Conn) readLoop() {
	defer c.wg.Done()
	fr := newFrameReader(c.nc)
	fr.maxGauges = MaxGauges
	if !c.handshake(fr) {
		return
	}
	for {
		m, err := fr.next()
		if err != nil {
			c.readFailed(err)
			return
		}
		if !c.dispatch(m) {
			return
		}
	}
}

// readFailed ends the connection after a read error, telling the worker
// why when it broke the protocol.
func (c *Conn) readFailed(err error) {
	var malformed *MalformedError
	switch {
	case errors.As(err, &malformed), errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrLimit):
		c.fail(err, &Message{T: MsgError, Code: CodeProtocol, Error: err.Error()})
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		c.fail(fmt.Errorf("ipc: worker closed the connection: %w", io.EOF), nil)
	default:
		c.fail(fmt.Errorf("ipc: read: %w", err), nil)
	}
}

// handshake reads the hello within HelloTimeout and answers it.
func (c *Conn) handshake(fr *frameReader) bool {
	_ = c.nc.SetReadDeadline(time.Now().Add(c.opts.HelloTimeout))
	m, err := fr.next()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: %w within %v", ErrProtocol, errNoHello, c.opts.HelloTimeout)
		c.fail(err, &Message{T: MsgError, Code: CodeProtocol, Error: err.Error()})
		return false
	}
	if err != nil {
		c.readFailed(err)
		return false
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	if m.T != MsgHello {
		err := fmt.Errorf("%w: first message is %q, not hello", ErrProtocol, m.T)
		c.fail(err, &Message{T: MsgError, Code: CodeProtocol, Error: err.Error()})
		return false
	}
	if m.V != Version {
		msg := "protocol version " + strconv.Itoa(m.V) + " not supported: this primary speaks " + strconv.Itoa(Version)
		c.fail(fmt.Errorf("%w: %s", ErrUnsupportedVersion, msg),
			&Message{T: MsgError, Code: CodeUnsupportedVersion, Error: msg})
		return false
	}
	if err := checkLimits(m); err != nil {
		c.fail(err, &Message{T: MsgError, Code: CodeProtocol, Error: err.Error()})
		return false
	}
	if m.Slot != c.slot {
		c.log.Debug("ipc: hello from another slot", "hello_slot", m.Slot, "hello_pid", m.PID)
	}
	c.hello.Store(&Message{T: m.T, V: m.V, PID: m.PID, Slot: m.Slot, Gen: m.Gen, Lang: m.Lang})
	c.lastBeat.Store(time.Now().UnixNano())
	hb := max(c.opts.Heartbeat.Milliseconds(), 0)
	if c.opts.Heartbeat > 0 {
		hb = max(hb, 1)
	}
	welcome, err := encode(&Message{T: MsgWelcome, V: Version, HeartbeatMS: hb})
	if err != nil {
		c.fail(err, nil)
		return false
	}
	c.out.release(welcome)
	return true
}

// dispatch handles one message after the hello; false ends the read loop.
func (c *Conn) dispatch(m *Message) bool {
	if err := checkLimits(m); err != nil {
		c.fail(err, &Message{T: MsgError, Code: CodeProtocol, Error: err.Error()})
		return false
	}
	switch m.T {
	case MsgHeartbeat:
		c.lastBeat.Store(time.Now().UnixNano())
		c.requests.Store(m.Requests)
		if c.opts.OnHeartbeat != nil {
			c.opts.OnHeartbeat(m.Requests, m.Gauges)
		}
	case MsgDelegate, MsgStats, MsgStatus, MsgECV:
		return c.startRequest(m)
	case MsgNotify:
		c.safely(m, func() { c.h.Notify(c.slot, m.Type, m.Payload) })
	case MsgRecycle:
		c.safely(m, func() { c.h.Recycle(c.slot, m.Reason) })
	case MsgSubscribe:
		if err := c.topics.add(m.Topic); err != nil {
			c.fail(err, &Message{T: MsgError, Code: CodeProtocol, Error: err.Error()})
			return false
		}
	case MsgUnsubscribe:
		c.topics.remove(m.Topic)
	case MsgPrepared:
		c.prepared(m)
	case MsgHello:
		err := fmt.Errorf("%w: second hello", ErrProtocol)
		c.fail(err, &Message{T: MsgError, Code: CodeProtocol, Error: err.Error()})
		return false
	default:
		c.log.Debug("ipc: ignoring unknown message", "t", m.T)
	}
	return true
}

// safely runs a Handler method on the read goroutine, logging a panic
// instead of crashing the primary.
func (c *Conn) safely(m *Message, f func()) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("ipc: handler panicked", "t", m.T, "type", m.Type, "panic", v)
		}
	}()
	f()
}

// prepared delivers a prepared acknowledgement to the Prepare calls
// waiting for its epoch.
func (c *Conn) prepared(m *Message) {
	var err error
	if m.Error != "" {
		err = &RemoteError{Code: CodeHandlerError, Message: m.Error}
	}
	c.mu.Lock()
	ws := c.prepares[m.Epoch]
	delete(c.prepares, m.Epoch)
	c.mu.Unlock()
	for _, w := range ws {
		w <- err
	}
}

// maxIdleRequesters is how many goroutines a Conn keeps waiting for
// requests once they are done with one.
const maxIdleRequesters = 16

// startRequest hands request m to an idle request goroutine, or starts one
// if fewer than MaxInFlight run; otherwise it waits for one to be free,
// leaving the worker's later frames unread. It waits the same way while
// the payloads in flight are over MaxInFlightBytes. False means the
// connection ended while waiting.
func (c *Conn) startRequest(m *Message) bool {
	if !c.payloads.take(len(m.Payload), c.ctx.Done()) {
		return false
	}
	c.inFlight.Add(1)
	select {
	case c.reqs <- m:
		return true
	default:
	}
	if int(c.requesters.Load()) < c.opts.MaxInFlight {
		c.requesters.Add(1)
		c.wg.Add(1)
		go c.requestLoop(m)
		return true
	}
	select {
	case c.reqs <- m:
		return true
	case <-c.ctx.Done():
		c.inFlight.Add(-1)
		c.payloads.release(len(m.Payload))
		return false
	}
}

// requestLoop answers m, then the requests handed to it while it is one
// of the maxIdleRequesters idle goroutines. Reusing goroutines spares each
// request the start of a new one and the growth of its stack.
func (c *Conn) requestLoop(m *Message) {
	defer func() {
		c.requesters.Add(-1)
		c.wg.Done()
	}()
	for {
		c.serveRequest(m)
		if c.idle.Add(1) > maxIdleRequesters {
			c.idle.Add(-1)
			return
		}
		select {
		case m = <-c.reqs:
			c.idle.Add(-1)
		case <-c.ctx.Done():
			c.idle.Add(-1)
			return
		}
	}
}

// serveRequest answers one request. If the worker gave a deadline, the
// timeout reply goes out at the deadline even when the handler is late; the
// handler's answer is then dropped.
func (c *Conn) serveRequest(m *Message) {
	defer c.payloads.release(len(m.Payload)) // once the handler is done with it
	if m.TimeoutMS <= 0 {
		payload, err := c.call(c.ctx, m)
		c.reply(m, payload, err)
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, time.Duration(m.TimeoutMS)*time.Millisecond)
	defer cancel()
	var replied atomic.Bool
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && replied.CompareAndSwap(false, true) {
			c.reply(m, nil, ctx.Err())
		}
	})
	payload, err := c.call(ctx, m)
	stop()
	if replied.CompareAndSwap(false, true) {
		c.reply(m, payload, err)
	}
}

// call runs the Handler method for request m. A panicking handler fails
// the request instead of the primary.
func (c *Conn) call(ctx context.Context, m *Message) (payload json.RawMessage, err error) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("ipc: handler panicked", "t", m.T, "type", m.Type, "panic", v)
			payload, err = nil, fmt.Errorf("handler panicked: %v", v)
		}
	}()
	switch m.T {
	case MsgDelegate:
		return c.h.Delegate(ctx, c.slot, m.Type, m.Payload)
	case MsgStats:
		return c.h.Stats(ctx)
	case MsgStatus:
		return c.h.Status(ctx, c.slot)
	default: // MsgECV
		enabled, healthy, reason := c.h.ECV()
		b := append([]byte(`{"enabled":`), strconv.FormatBool(enabled)...)
		b = append(append(b, `,"healthy":`...), strconv.FormatBool(healthy)...)
		b = appendString(append(b, `,"reason":`...), reason)
		return append(b, '}'), nil
	}
}

// reply sends the answer to request m.
func (c *Conn) reply(m *Message, payload json.RawMessage, err error) {
	r := &Message{T: MsgReply, ID: m.ID}
	switch {
	case err == nil:
		r.Payload = payload
	case errors.Is(err, ErrNoHandler):
		r.Code, r.Error = CodeNoHandler, "no handler for "+m.T+" "+strconv.Quote(m.Type)
	case errors.Is(err, ErrShuttingDown):
		r.Code, r.Error = CodeShuttingDown, err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		r.Code, r.Error = CodeTimeout, fmt.Sprintf("no answer within %dms", m.TimeoutMS)
	default:
		r.Code, r.Error = CodeHandlerError, err.Error()
	}
	if c.inFlight.Add(-1) == 0 { // alone: write on the spot
		err = c.sendNow(r)
	} else { // let the writer batch this reply with the others
		err = c.Send(r)
	}
	if err != nil && r.Payload != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrStuck) {
		// The handler's payload could not be encoded (not JSON, too large).
		err = c.sendNow(&Message{T: MsgReply, ID: m.ID, Code: CodeHandlerError, Error: err.Error()})
	}
	if err != nil && !errors.Is(err, ErrClosed) {
		c.log.Debug("ipc: reply not sent", "id", m.ID, "err", err)
	}
}
