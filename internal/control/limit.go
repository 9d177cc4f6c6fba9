package control

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Limits of the connections the API holds. Every open connection costs the
// primary a file descriptor, and the primary needs descriptors to start
// workers (pipes, the IPC channel): however many clients connect, the API
// never holds more than a share of them.
const (
	// maxConnsPerListener caps MaxConns' default for one listener.
	maxConnsPerListener = 64
	// minConnsPerListener is the least a listener is allowed, whatever
	// the fd limit.
	minConnsPerListener = 4
	// apiFDShare is the part of the primary's fd limit (RLIMIT_NOFILE) the
	// API's connections may take together: one in apiFDShare.
	apiFDShare = 4
	// refusedLogEvery bounds how often refused connections are logged.
	refusedLogEvery = time.Minute
)

// defaultMaxConns is the connections each of n listeners may hold: a share
// of a quarter of the fd limit, at most maxConnsPerListener.
func defaultMaxConns(n int) int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || n <= 0 {
		return maxConnsPerListener
	}
	per := int(min(rl.Cur, 1<<20)) / apiFDShare / n
	return min(max(per, minConnsPerListener), maxConnsPerListener)
}

// limitListener bounds the connections accepted from a listener that are
// open at once, and, on a listener that needs a bearer token, the ones
// that have not shown it yet.
//
// Over max, a new connection is closed at once: refusing costs one accept
// and one close, and the client learns it was refused instead of waiting
// in the kernel's queue. Over maxUnauth, the oldest connection that has
// not yet authenticated is closed to make room, so that a flood of idle
// connections cannot lock out an operator whose request comes at once.
// netutil.LimitListener is not used: it makes Accept wait instead of
// refusing, and knows nothing of authentication.
type limitListener struct {
	net.Listener
	name      string
	max       int
	maxUnauth int // 0: every connection counts as authenticated
	onRefuse  func(name string, open int)

	mu     sync.Mutex
	open   int
	unauth []*limitConn // oldest first
}

func newLimitListener(l net.Listener, name string, maxConns, maxUnauth int, onRefuse func(string, int)) *limitListener {
	return &limitListener{Listener: l, name: name, max: maxConns, maxUnauth: maxUnauth, onRefuse: onRefuse}
}

// Accept returns the next connection within the limits, closing the ones
// over them.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc, evict, open := l.admit(c)
		if evict != nil {
			evict.Close()
		}
		if lc != nil {
			return lc, nil
		}
		_ = c.Close()
		if l.onRefuse != nil {
			l.onRefuse(l.name, open)
		}
	}
}

// admit counts c in, or returns nil when the listener is full. evict is
// an unauthenticated connection to close to make room.
func (l *limitListener) admit(c net.Conn) (lc, evict *limitConn, open int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.max {
		if l.maxUnauth == 0 || len(l.unauth) == 0 {
			return nil, nil, l.open
		}
		// Full: an operator still gets in, in place of the oldest
		// connection that has not authenticated.
		evict = l.unauth[0]
		l.dropUnauth(evict)
	}
	lc = &limitConn{Conn: c, l: l}
	l.open++
	if l.maxUnauth > 0 {
		l.unauth = append(l.unauth, lc)
		if evict == nil && len(l.unauth) > l.maxUnauth {
			evict = l.unauth[0]
			l.dropUnauth(evict)
		}
	}
	return lc, evict, l.open
}

// dropUnauth removes c from the unauthenticated connections; l.mu is held.
func (l *limitListener) dropUnauth(c *limitConn) {
	for i, u := range l.unauth {
		if u == c {
			l.unauth = append(l.unauth[:i], l.unauth[i+1:]...)
			return
		}
	}
}

// limitConn is a connection counted by its limitListener until closed.
type limitConn struct {
	net.Conn
	l      *limitListener
	once   sync.Once
	authed atomic.Bool
}

// Close closes the connection and gives its place back.
func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.open--
		if !c.authed.Load() {
			c.l.dropUnauth(c)
		}
		c.l.mu.Unlock()
	})
	return err
}

// authenticated records that the connection carried a valid token: it no
// longer counts against the unauthenticated limit.
func (c *limitConn) authenticated() {
	if c.authed.Swap(true) {
		return
	}
	c.l.mu.Lock()
	c.l.dropUnauth(c)
	c.l.mu.Unlock()
}

// connKey is the context key of the connection a request came on.
type connKey struct{}

// withConn is an http.Server's ConnContext: it lets handlers reach the
// limitConn of their request.
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// markAuthenticated records that the connection of the request r carried a
// valid token.
func markAuthenticated(ctx context.Context) {
	if lc, ok := ctx.Value(connKey{}).(*limitConn); ok {
		lc.authenticated()
	}
}

// refusalLog logs refused connections, at most once per refusedLogEvery
// per listener, so that a flood does not flood the log too.
type refusalLog struct {
	log  func(msg string, args ...any)
	mu   sync.Mutex
	last map[string]time.Time
}

func (r *refusalLog) refused(name string, open int) {
	r.mu.Lock()
	now := time.Now()
	if t, ok := r.last[name]; ok && now.Sub(t) < refusedLogEvery {
		r.mu.Unlock()
		return
	}
	r.last[name] = now
	r.mu.Unlock()
	r.log("control: too many connections, closing new ones at once", "listener", name, "open", open)
}

// errStreamsFull is why a stream is refused when too many are open.
var errStreamsFull = errors.New("too many event and log streams are open")
