package ipc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Delegate asks the primary to do work of type typ, with payload encoded as
// JSON (a json.RawMessage is sent as is; nil sends no payload), and returns
// the reply's payload. ctx's deadline is sent as timeout_ms and the primary
// answers by then; when ctx ends first Delegate returns ctx.Err() and the
// late reply is discarded. Errors from the primary are *RemoteError values
// matching ErrNoHandler, ErrShuttingDown or context.DeadlineExceeded by
// their code. Delegate may be called from many goroutines at once.
func (c *Client) Delegate(ctx context.Context, typ string, payload any) (json.RawMessage, error) {
	if err := checkType(typ); err != nil {
		return nil, err
	}
	raw, err := marshalPayload(payload)
	if err != nil {
		return nil, err
	}
	return c.call(ctx, &Message{T: MsgDelegate, Type: typ, Payload: raw})
}

// Notify sends work of type typ to the primary without waiting for it to
// be done or for an answer (a delegate without reply).
func (c *Client) Notify(typ string, payload any) error {
	if err := checkType(typ); err != nil {
		return err
	}
	raw, err := marshalPayload(payload)
	if err != nil {
		return err
	}
	return c.send(&Message{T: MsgNotify, Type: typ, Payload: raw})
}

// Stats returns the cluster stats document from the primary.
func (c *Client) Stats(ctx context.Context) (json.RawMessage, error) {
	return c.call(ctx, &Message{T: MsgStats})
}

// Status returns this worker's status document as the primary sees it.
func (c *Client) Status(ctx context.Context) (json.RawMessage, error) {
	return c.call(ctx, &Message{T: MsgStatus})
}

// ECV returns the node's ECV state: whether it is enabled for traffic,
// whether its health check passes, and why not.
func (c *Client) ECV(ctx context.Context) (enabled, healthy bool, reason string, err error) {
	raw, err := c.call(ctx, &Message{T: MsgECV})
	if err != nil {
		return false, false, "", err
	}
	var v struct {
		Enabled bool   `json:"enabled"`
		Healthy bool   `json:"healthy"`
		Reason  string `json:"reason"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, false, "", fmt.Errorf("ipc: ecv reply: %w", err)
	}
	return v.Enabled, v.Healthy, v.Reason, nil
}

// Recycle asks the primary to replace this worker gracefully: a new worker
// is started and made ready before this one is asked to stop. A reason
// longer than MaxText is shortened to it.
func (c *Client) Recycle(reason string) error {
	return c.send(&Message{T: MsgRecycle, Reason: truncate(reason, MaxText)})
}

// AddRequests adds n to the cumulative request count that the next
// heartbeat reports.
func (c *Client) AddRequests(n uint64) { c.requests.Add(n) }

// SetGauge sets a named value that every following heartbeat reports. NaN
// and infinite values are not sent, nor names longer than MaxName, nor
// new names once MaxGauges are set.
func (c *Client) SetGauge(name string, v float64) {
	if len(name) > MaxName {
		return
	}
	c.mu.Lock()
	if _, ok := c.gauges[name]; ok || len(c.gauges) < MaxGauges {
		c.gauges[name] = v
	}
	c.mu.Unlock()
}

// checkType refuses a delegated type longer than MaxName.
func checkType(typ string) error {
	if len(typ) > MaxName {
		return fmt.Errorf("ipc: %w: type of %d bytes, limit %d", ErrLimit, len(typ), MaxName)
	}
	return nil
}

// truncate shortens s to at most n bytes, on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// marshalPayload encodes a payload argument.
func marshalPayload(v any) (json.RawMessage, error) {
	switch p := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		return p, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("ipc: payload: %w", err)
	}
	return b, nil
}

// call sends request m with a fresh id and waits for its reply.
func (c *Client) call(ctx context.Context, m *Message) (json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		ms := (time.Until(dl) + time.Millisecond - 1) / time.Millisecond
		if ms <= 0 {
			return nil, context.DeadlineExceeded
		}
		m.TimeoutMS = int64(ms)
	}
	m.ID = c.nextID.Add(1)
	ch := make(chan *Message, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.closedErr()
	}
	alone := len(c.pending) == 0
	c.pending[m.ID] = ch
	c.mu.Unlock()
	b, err := encode(m)
	switch {
	case err != nil:
	case alone: // write on the spot; a call in flight would batch better
		err = c.queued(c.out.writeNow(b, c.nc, DefaultWriteTimeout))
	default:
		err = c.queued(c.out.push(b))
	}
	if err != nil {
		c.forget(m.ID)
		return nil, err
	}
	select {
	case r := <-ch:
		if err := remoteError(r); err != nil {
			return nil, err
		}
		return r.Payload, nil
	case <-ctx.Done():
		c.forget(m.ID)
		return nil, ctx.Err()
	case <-c.ctx.Done():
		c.forget(m.ID)
		return nil, c.closedErr()
	}
}

// forget drops a pending request; its reply, if any, will be discarded.
func (c *Client) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// send queues m for the primary.
func (c *Client) send(m *Message) error {
	b, err := encode(m)
	if err != nil {
		return err
	}
	return c.queued(c.out.push(b))
}

// queued handles the outcome of queueing or writing a frame.
func (c *Client) queued(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrClosed):
		return c.closedErr()
	case errors.Is(err, ErrQueueFull):
		return fmt.Errorf("%w: the primary is not reading", err)
	}
	c.fail(fmt.Errorf("ipc: write: %w", err), false)
	return c.closedErr()
}

// deliverReply hands a reply to the call waiting for it.
func (c *Client) deliverReply(m *Message) {
	c.mu.Lock()
	ch, ok := c.pending[m.ID]
	delete(c.pending, m.ID)
	c.mu.Unlock()
	if !ok {
		c.log.Debug("ipc: discarding reply to a call that gave up", "id", m.ID)
		return
	}
	ch <- m
}
