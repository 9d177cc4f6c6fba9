package membership

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Session is one instance's membership in a cluster: static, or registered
// in etcd with a lease like etcd's concurrency.Session. Create it with New,
// Join, follow the views, and Leave.
type Session struct {
	key string
	o   *options

	emitMu sync.Mutex // serialises emit, so callbacks run one at a time
	mu     sync.Mutex // guards the fields below
	view   View
	state  sessionState
	err    error
	views  chan View
	done   chan struct{}

	// Dynamic sessions only.
	cli       *clientv3.Client
	ownClient bool
	n         *node
	reqs      chan request
	cancel    context.CancelFunc
	joined    chan struct{} // closed once first registered
	loopDone  chan struct{} // closed when the loop returns
	bg        sync.WaitGroup
}

// sessionState is where a Session is in its life.
type sessionState int

const (
	stateNew sessionState = iota
	stateJoined
	stateClosed
)

// New returns a session of cluster key configured by opts; it does not
// contact etcd yet. Give either WithStatic or WithEndpoints (or
// WithClient).
func New(key string, opts ...Option) (*Session, error) {
	o, err := newOptions(key, opts)
	if err != nil {
		return nil, err
	}
	s := &Session{key: key, o: o, view: fenceView(o.threads), views: make(chan View, 1), done: make(chan struct{})}
	if o.static {
		return s, nil
	}
	s.cli, s.ownClient = o.client, false
	if s.cli == nil {
		s.cli, err = clientv3.New(clientv3.Config{Endpoints: o.endpoints, TLS: o.tls, Logger: zap.NewNop(),
			DialOptions: []grpc.DialOption{reconnect(o.ttl)}})
		if err != nil {
			return nil, fmt.Errorf("membership: etcd client: %w", err)
		}
		s.ownClient = true
	}
	s.reqs = make(chan request)
	s.joined = make(chan struct{})
	s.loopDone = make(chan struct{})
	return s, nil
}

// reconnect makes the client connect again within a renewal interval of
// losing etcd, instead of backing off for up to two minutes: a session
// that cannot renew fences itself within two thirds of its TTL.
func reconnect(ttl time.Duration) grpc.DialOption {
	b := backoff.DefaultConfig
	b.BaseDelay, b.MaxDelay = min(b.BaseDelay, ttl/12), ttl/6
	return grpc.WithConnectParams(grpc.ConnectParams{Backoff: b, MinConnectTimeout: ttl / 6})
}

// ID returns the instance identifier, generated unless WithInstanceID
// gave one.
func (s *Session) ID() string { return s.o.id }

// View returns the latest view.
func (s *Session) View() View {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.view
}

// Views returns a channel that holds the latest view not yet received:
// a receiver that falls behind skips to the newest. Use WithOnRebalance
// to see every view, in step with the session.
func (s *Session) Views() <-chan View { return s.views }

// Done returns a channel closed when the session has ended: after Leave
// or Close, or when it gave up on its own (see Err).
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the session ended on its own, or nil.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Join makes the instance a member. A static session takes its indices at
// once. A dynamic one registers in etcd, retrying with backoff while etcd
// cannot be reached, and returns once registered; its views follow as the
// cluster rebalances. If ctx ends first, Join returns ctx's error and the
// session keeps trying in the background until Leave or Close.
func (s *Session) Join(ctx context.Context) error {
	s.mu.Lock()
	switch s.state {
	case stateJoined:
		s.mu.Unlock()
		return ErrJoined
	case stateClosed:
		s.mu.Unlock()
		return ErrClosed
	}
	s.state = stateJoined
	s.mu.Unlock()
	if s.o.static {
		s.emit(s.staticView(s.o.threads))
		return nil
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.n = newNode(s)
	go s.loop(runCtx)
	select {
	case <-s.joined:
		return nil
	case <-s.done:
		if err := s.Err(); err != nil {
			return err
		}
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("membership: join: %w", context.Cause(ctx))
	}
}

// loop runs the dynamic session until it ends.
func (s *Session) loop(ctx context.Context) {
	err := s.n.run(ctx)
	close(s.loopDone)
	if err != nil && !errors.Is(err, errStopped) {
		s.o.logger.Error("membership session ended", "err", err)
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		s.finish(context.Background(), false)
	}
}

// SetThreads changes this instance's thread count, as when its supervisor
// scales; the cluster rebalances. In a static cluster the new count must
// still fit the total.
func (s *Session) SetThreads(ctx context.Context, n int) error {
	if n < 1 {
		return fmt.Errorf("membership: thread count %d: must be at least 1", n)
	}
	if s.o.static {
		if s.o.base+n > s.o.total {
			return fmt.Errorf("membership: static base %d with %d threads does not fit a total of %d", s.o.base, n, s.o.total)
		}
		s.mu.Lock()
		s.o.threads = n
		joined := s.state == stateJoined
		s.mu.Unlock()
		if joined {
			s.emit(s.staticView(n))
		}
		return nil
	}
	return s.request(ctx, request{kind: reqThreads, threads: n})
}

// Leave leaves the cluster gracefully: the instance gives up its indices
// (a view with Index -1), resigns as sequencer and revokes its lease, so
// the others rebalance at once. The session ends.
func (s *Session) Leave(ctx context.Context) error {
	return s.finish(ctx, true)
}

// Close ends the session without leaving: the instance gives up its
// indices (a view with Index -1) but its member key stays until its lease
// expires, as if the process had died.
func (s *Session) Close() error {
	return s.finish(context.Background(), false)
}

// finish ends the session, gracefully if leave.
func (s *Session) finish(ctx context.Context, leave bool) error {
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		return nil
	}
	prev := s.state
	s.state = stateClosed
	s.mu.Unlock()
	var err error
	if !s.o.static && prev == stateJoined {
		err = s.n.stop(ctx, leave)
	}
	if !s.o.static && s.ownClient {
		s.cli.Close()
		s.bg.Wait()
	}
	s.emit(fenceView(s.o.threads))
	close(s.done)
	return err
}

// staticView returns the view of a static instance with n threads.
func (s *Session) staticView(n int) View {
	return View{Index: s.o.base, Threads: n, Total: s.o.total,
		Members: []Member{{ID: s.o.id, Base: s.o.base, Threads: n, Addr: s.o.addr}}}
}

// emit makes v the current view if it differs from it: it calls the
// rebalance callback and offers v on the Views channel.
func (s *Session) emit(v View) {
	s.emitMu.Lock()
	defer s.emitMu.Unlock()
	s.mu.Lock()
	same := s.view.equal(v)
	s.view = v
	s.mu.Unlock()
	if same {
		return
	}
	s.o.logger.Debug("view", "index", v.Index, "threads", v.Threads, "total", v.Total, "epoch", v.Epoch)
	if s.o.onRebalance != nil {
		s.o.onRebalance(v)
	}
	select {
	case <-s.views:
	default:
	}
	s.views <- v
}
