package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Target says where a primary's API is: a unix socket, or a TCP address
// with a bearer token.
type Target struct {
	// Socket is the path of the unix socket; it wins over Addr.
	Socket string
	// Addr is a TCP host:port (a bare :port means 127.0.0.1).
	Addr string
	// Token is sent as "Authorization: Bearer" to Addr.
	Token []byte
}

// String names the target in messages.
func (t Target) String() string {
	if t.Socket != "" {
		return t.Socket
	}
	return t.Addr
}

// Client talks to a primary's management API.
type Client struct {
	target Target
	base   string
	hc     *http.Client
}

// NewClient returns a client of the API at t. It does not connect yet.
func NewClient(t Target) (*Client, error) {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2}
	c := &Client{target: t, hc: &http.Client{Transport: tr}}
	switch {
	case t.Socket != "":
		var d net.Dialer
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", t.Socket)
		}
		c.base = "http://herd"
	case t.Addr != "":
		addr, err := NormalizeAddr(t.Addr)
		if err != nil {
			return nil, fmt.Errorf("control: %w", err)
		}
		c.base = "http://" + addr
	default:
		return nil, errors.New("control: no socket or address to reach the primary")
	}
	return c, nil
}

// Close releases the client's idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// NoPrimaryError is the error of a client that found no primary: nothing
// listens on the socket or address.
type NoPrimaryError struct {
	Where string
	Err   error
}

// Error says where no primary runs.
func (e *NoPrimaryError) Error() string { return "no herd primary is running at " + e.Where }

// Unwrap returns the connection error.
func (e *NoPrimaryError) Unwrap() error { return e.Err }

// APIError is an error answer of the API.
type APIError struct {
	Code    int    // HTTP status
	Message string // the answer's "error"
}

// Error returns the message the primary gave.
func (e *APIError) Error() string { return e.Message }

// do sends a request with an optional JSON body and returns the response
// to a 2xx status; other statuses become an *APIError.
func (c *Client) do(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("control: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.target.Socket == "" && len(c.target.Token) > 0 {
		req.Header.Set("Authorization", "Bearer "+string(c.target.Token))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, &NoPrimaryError{Where: c.target.String(), Err: err}
		}
		return nil, fmt.Errorf("control: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, apiError(resp)
	}
	return resp, nil
}

// apiError reads the error answer resp.
func apiError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb errorBody
	if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
		eb.Error = strings.TrimSpace(string(b))
		if eb.Error == "" {
			eb.Error = resp.Status
		}
	}
	return &APIError{Code: resp.StatusCode, Message: eb.Error}
}

// call does a request and decodes its JSON answer into out, if not nil.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.do(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("control: reading the answer: %w", err)
	}
	return nil
}

// Stats returns GET /stats.
func (c *Client) Stats(ctx context.Context) (StatsDoc, error) {
	var doc StatsDoc
	err := c.call(ctx, http.MethodGet, "/stats", nil, &doc)
	return doc, err
}

// Restart starts a rolling restart of every slot (slot < 0) or one, and
// returns once it started.
func (c *Client) Restart(ctx context.Context, slot int) error {
	return c.call(ctx, http.MethodPost, "/restart", slotBody(slot), nil)
}

// RestartWait runs a rolling restart and returns its outcome.
func (c *Client) RestartWait(ctx context.Context, slot int) error {
	return c.call(ctx, http.MethodPost, "/restart?wait=1", slotBody(slot), nil)
}

func slotBody(slot int) any {
	if slot < 0 {
		return struct{}{}
	}
	return map[string]int{"slot": slot}
}

// Scale sets the number of workers.
func (c *Client) Scale(ctx context.Context, n int) error {
	return c.call(ctx, http.MethodPost, "/scale", map[string]int{"workers": n}, nil)
}

// Signal sends sig (a name or number) to every worker (slot < 0) or one.
func (c *Client) Signal(ctx context.Context, sig string, slot int) error {
	req := map[string]any{"signal": sig}
	if slot >= 0 {
		req["slot"] = slot
	}
	return c.call(ctx, http.MethodPost, "/signal", req, nil)
}

// Stop asks the primary to stop its workers, killing those still running
// after timeout (0 means the configured shutdown timeout), and exit.
func (c *Client) Stop(ctx context.Context, timeout time.Duration) error {
	req := map[string]string{}
	if timeout > 0 {
		req["timeout"] = timeout.String()
	}
	return c.call(ctx, http.MethodPost, "/stop", req, nil)
}

// SetECV takes the node into (true) or out of load-balancer rotation.
func (c *Client) SetECV(ctx context.Context, path string, enabled bool) error {
	action := "/disable"
	if enabled {
		action = "/enable"
	}
	return c.call(ctx, http.MethodPost, ecvPath(path)+action, nil, nil)
}

// ECV returns the status code and body of GET path (DefaultECVPath when
// empty).
func (c *Client) ECV(ctx context.Context, path string) (int, string, error) {
	resp, err := c.do(ctx, http.MethodGet, ecvPath(path), nil)
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == http.StatusBadRequest {
		return ae.Code, ae.Message, nil // the ECV's "DISABLED" answer
	}
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b), err
}

func ecvPath(p string) string {
	if p == "" {
		return DefaultECVPath
	}
	return p
}

// Events follows GET /events, calling fn with every event until fn
// returns an error (Events returns it, or nil for ErrStop), ctx ends
// (ctx.Err()) or the stream ends (io.EOF: the primary stopped). ready, if
// not nil, is called once the subscription is in place.
func (c *Client) Events(ctx context.Context, ready func(), fn func(Event) error) error {
	resp, err := c.do(ctx, http.MethodGet, "/events", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ": subscribed") && ready != nil:
			ready()
		case strings.HasPrefix(line, "data: "):
			var e Event
			if err := json.Unmarshal([]byte(line[len("data: "):]), &e); err != nil {
				return fmt.Errorf("control: bad event: %w", err)
			}
			if err := fn(e); err != nil {
				return stopped(err)
			}
		}
	}
	switch err := sc.Err(); {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return fmt.Errorf("control: reading events: %w", err)
	}
	return io.EOF
}

// ErrStop, returned by a callback of Events or Logs, ends the stream
// without an error.
var ErrStop = errors.New("stop")

func stopped(err error) error {
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}

// LogsQuery selects worker output for Logs.
type LogsQuery struct {
	Slot   int // -1 for every slot
	Lines  int // the last lines to send first
	Follow bool
}

// Logs calls fn with the lines GET /logs sends for q, until the stream ends
// or fn returns an error (Logs returns it, or nil for ErrStop).
func (c *Client) Logs(ctx context.Context, q LogsQuery, fn func(LogLine) error) error {
	v := url.Values{"lines": {strconv.Itoa(q.Lines)}}
	if q.Slot >= 0 {
		v.Set("slot", strconv.Itoa(q.Slot))
	}
	if q.Follow {
		v.Set("follow", "1")
	}
	resp, err := c.do(ctx, http.MethodGet, "/logs?"+v.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var l LogLine
		if err := dec.Decode(&l); err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("control: reading logs: %w", err)
		}
		if err := fn(l); err != nil {
			return stopped(err)
		}
	}
}
