package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// loadSpec describes a load: conns clients, each with one connection at a
// time, sending GET / to addr.
type loadSpec struct {
	addr  string
	conns int
	// rate is the total requests per second, spread evenly over the
	// clients; 0 sends as fast as the responses come back.
	rate float64
	// short sends one request per connection ("Connection: close").
	short bool
	// requests, when > 0, stops the load after that many attempts.
	requests int64
	// bodies counts the response bodies (which name the serving slot).
	bodies bool
	// stamps records when each successful request was sent.
	stamps bool
	// timeout bounds each request; 0 means 5s.
	timeout time.Duration
}

// loadResult is what a load saw. Every attempt is either ok (status 200,
// whole body read) or a failure, counted by kind.
type loadResult struct {
	ok, fail int64
	fails    map[string]int64
	lat      []time.Duration // from writing the request to the whole response
	clat     []time.Duration // from the scheduled send time (paced loads)
	sent     []time.Time     // with stamps: when lat[i] was sent
	bodies   map[string]int64
	elapsed  time.Duration
}

func newLoadResult() *loadResult {
	return &loadResult{fails: map[string]int64{}, bodies: map[string]int64{}}
}

func (r *loadResult) failure(kind string) {
	r.fail++
	r.fails[kind]++
}

// merge adds o to r.
func (r *loadResult) merge(o *loadResult) {
	r.ok += o.ok
	r.fail += o.fail
	for k, v := range o.fails {
		r.fails[k] += v
	}
	for k, v := range o.bodies {
		r.bodies[k] += v
	}
	r.lat = append(r.lat, o.lat...)
	r.clat = append(r.clat, o.clat...)
	r.sent = append(r.sent, o.sent...)
}

// rps is the rate of successful requests.
func (r *loadResult) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

// runLoad runs s until ctx is done (or its request budget is spent) and
// returns what it saw. Requests in flight then finish, within 5s.
func runLoad(ctx context.Context, s loadSpec) *loadResult {
	var budget *atomic.Int64
	if s.requests > 0 {
		budget = new(atomic.Int64)
		budget.Store(s.requests)
	}
	var interval time.Duration
	if s.rate > 0 {
		interval = time.Duration(float64(s.conns) / s.rate * float64(time.Second))
	}
	req := "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: herdbench\r\n"
	if s.short {
		req += "Connection: close\r\n"
	}
	start := time.Now()
	results := make([]*loadResult, s.conns)
	var wg sync.WaitGroup
	for i := range s.conns {
		c := &client{spec: &s, res: newLoadResult(), req: []byte(req + "\r\n"), budget: budget}
		results[i] = c.res
		first := start.Add(interval * time.Duration(i) / time.Duration(s.conns))
		wg.Go(func() { c.run(ctx, first, interval) })
	}
	wg.Wait()
	total := newLoadResult()
	total.elapsed = time.Since(start)
	for _, r := range results {
		total.merge(r)
	}
	return total
}

// client is one connection's worth of load.
type client struct {
	spec   *loadSpec
	res    *loadResult
	req    []byte
	budget *atomic.Int64
	conn   net.Conn
	br     *bufio.Reader
	reused bool // the connection already carried a request
}

func (c *client) run(ctx context.Context, next time.Time, interval time.Duration) {
	defer c.closeConn()
	for ctx.Err() == nil {
		if c.budget != nil && c.budget.Add(-1) < 0 {
			return
		}
		sched := time.Time{}
		if interval > 0 {
			if !sleepUntil(ctx, next) {
				return
			}
			sched, next = next, next.Add(interval)
		}
		c.attempt(sched)
	}
}

// attempt makes one request, on the open connection or a new one.
func (c *client) attempt(sched time.Time) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.spec.addr, 2*time.Second)
		if err != nil {
			c.res.failure("dial: " + errKind(err))
			time.Sleep(time.Millisecond) // no hot loop against a closed port
			return
		}
		c.conn, c.br, c.reused = conn, bufio.NewReaderSize(conn, 4096), false
	}
	start := time.Now()
	timeout := c.spec.timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	_ = c.conn.SetDeadline(start.Add(timeout))
	status, body, closing, err := c.roundTrip()
	end := time.Now()
	switch {
	case err != nil:
		kind := errKind(err)
		if c.reused {
			kind += " on a reused connection"
		}
		c.res.failure(kind)
		c.closeConn()
		return
	case status != http.StatusOK:
		c.res.failure("status " + http.StatusText(status))
	default:
		c.res.ok++
		c.res.lat = append(c.res.lat, end.Sub(start))
		if !sched.IsZero() {
			c.res.clat = append(c.res.clat, end.Sub(sched))
		}
		if c.spec.bodies {
			c.res.bodies[body]++
		}
		if c.spec.stamps {
			c.res.sent = append(c.res.sent, start)
		}
	}
	c.reused = true
	if closing || c.spec.short {
		c.closeConn()
	}
}

// roundTrip writes the request and reads the whole response.
func (c *client) roundTrip() (status int, body string, closing bool, err error) {
	if _, err := c.conn.Write(c.req); err != nil {
		return 0, "", true, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, "", true, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, "", true, err
	}
	if c.spec.bodies {
		body = string(b)
	}
	return resp.StatusCode, body, resp.Close, nil
}

func (c *client) closeConn() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.br = nil, nil
	}
}

// sleepUntil sleeps until t, or returns false when ctx ends first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// errKind names a transport error briefly.
func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed (EOF)"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return err.Error()
}
