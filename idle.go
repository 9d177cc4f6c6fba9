package herd

import (
	"net"
	"sync"
	"time"
)

// idleListener closes the connections it accepts once they have been idle
// (no read or write) for longer than timeout: cluster2's "timeout".
type idleListener struct {
	net.Listener
	timeout time.Duration
}

func (l idleListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ic := &idleConn{Conn: c, timeout: l.timeout}
	ic.mu.Lock()
	ic.extendLocked(time.Now())
	ic.mu.Unlock()
	return ic, nil
}

// idleConn keeps a deadline of the last activity plus timeout. Deadlines the
// code above sets (http.Server sets its own on every request) are kept, and
// the earlier of the two applies. The idle deadline is only moved when a
// quarter of the timeout has passed since it was last set, so a busy
// connection does not pay for a timer update on every call.
type idleConn struct {
	net.Conn
	timeout time.Duration

	mu          sync.Mutex
	extended    time.Time // when the idle deadline was last moved
	read, write time.Time // deadlines set from above; zero: none
}

func (c *idleConn) extendLocked(now time.Time) {
	c.extended = now
	c.applyLocked()
}

func (c *idleConn) applyLocked() {
	idle := c.extended.Add(c.timeout)
	_ = c.Conn.SetReadDeadline(earliest(idle, c.read))
	_ = c.Conn.SetWriteDeadline(earliest(idle, c.write))
}

func earliest(idle, set time.Time) time.Time {
	if !set.IsZero() && set.Before(idle) {
		return set
	}
	return idle
}

func (c *idleConn) touch() {
	now := time.Now()
	c.mu.Lock()
	if now.Sub(c.extended) > c.timeout/4 {
		c.extendLocked(now)
	}
	c.mu.Unlock()
}

func (c *idleConn) Read(b []byte) (int, error) {
	c.touch()
	return c.Conn.Read(b)
}

func (c *idleConn) Write(b []byte) (int, error) {
	c.touch()
	return c.Conn.Write(b)
}

func (c *idleConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read, c.write = t, t
	c.applyLocked()
	return nil
}

func (c *idleConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read = t
	c.applyLocked()
	return nil
}

func (c *idleConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.write = t
	c.applyLocked()
	return nil
}
