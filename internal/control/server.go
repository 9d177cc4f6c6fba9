package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Timeouts and sizes of the HTTP servers.
const (
	// readHeaderTimeout bounds the reading of a request's headers, from
	// the moment the server waits for them. On the TCP listener that needs
	// a token it is also how long a connection may stay unauthenticated:
	// a request without the right token is answered 401 and its
	// connection closed.
	readHeaderTimeout = 5 * time.Second
	// bodyTimeout bounds the reading of a request's body.
	bodyTimeout = 10 * time.Second
	// idleTimeout closes a kept-alive connection that sends no new request.
	idleTimeout = 30 * time.Second
	// maxHeaderBytes bounds a request's line and headers.
	maxHeaderBytes  = 64 << 10
	shutdownTimeout = 5 * time.Second
	// writeTimeout bounds each write of a stream, so that a client that
	// stops reading is dropped instead of holding a goroutine forever.
	writeTimeout = 10 * time.Second
	// maxStreams bounds the event and log streams open at once: each holds
	// a buffer of events or lines.
	maxStreams = 16
)

// Server is the management API of one primary. Create it with New (which
// binds its listeners) and run it with Serve.
type Server struct {
	cfg     Config
	c       Cluster
	log     *slog.Logger
	api     http.Handler // the full API, unauthenticated (unix socket, tests)
	ecv     *ecv
	ui      *dashboard
	started time.Time

	bound      []bound
	socketPath string        // removed by Close; "" when there is none
	streams    chan struct{} // a token per open stream, maxStreams at most
	refusals   *refusalLog

	closeOnce sync.Once
	closeErr  error
}

// bound is one listener and what it serves.
type bound struct {
	name string
	l    net.Listener
	h    http.Handler
}

// New checks cfg and binds its listeners: the unix socket (refusing one a
// live primary still serves, with ErrInUse), and the TCP, ECV and metrics
// addresses that are set. Serve serves them; Close releases them if Serve
// is never called.
func New(cfg Config, c Cluster) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.TCPAddr != "" && len(cfg.Token) == 0 {
		if cfg.TokenFile == "" {
			return nil, errors.New("control: a TCP address needs a token file")
		}
		if cfg.Token, err = ReadTokenFile(cfg.TokenFile); err != nil {
			return nil, err
		}
		if private, err := tokenFilePrivate(cfg.TokenFile); err == nil && !private {
			cfg.Logger.Warn("the control token file is readable by group or others: chmod 600 it", "path", cfg.TokenFile)
		}
	}
	monitor, err := cfg.monitorURL()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, c: c, log: cfg.Logger, started: time.Now(), ecv: newECV(cfg.Port, monitor),
		streams: make(chan struct{}, maxStreams), ui: newDashboard(cfg, c)}
	s.refusals = &refusalLog{log: s.log.Warn, last: map[string]time.Time{}}
	s.api = s.routes(true)
	if err := s.bind(); err != nil {
		s.Close()
		return nil, err
	}
	s.limit()
	return s, nil
}

// limit bounds the connections of every listener (see limitListener): the
// TCP API admits a quarter of its connections unauthenticated at once.
func (s *Server) limit() {
	n := s.cfg.MaxConns
	if n <= 0 {
		n = defaultMaxConns(len(s.bound))
	}
	for i, b := range s.bound {
		unauth := 0
		if b.name == "tcp" {
			unauth = max(n/4, 1)
		}
		s.bound[i].l = newLimitListener(b.l, b.name, n, unauth, s.refusals.refused)
	}
}

// bind binds every configured listener, in order.
func (s *Server) bind() error {
	cfg := s.cfg
	if cfg.Socket != Off {
		l, err := listenUnix(cfg.Socket)
		if err != nil {
			return err
		}
		s.socketPath = cfg.Socket
		s.bound = append(s.bound, bound{"unix", l, s.api})
	}
	tcp := []struct {
		name, addr string
		h          func() http.Handler
	}{
		{"tcp", cfg.TCPAddr, s.tcpGate},
		{"ecv", cfg.ECVAddr, func() http.Handler { return s.ecvOnly() }},
		{"metrics", cfg.MetricsAddr, func() http.Handler { return s.metricsOnly() }},
	}
	for _, t := range tcp {
		if t.addr == "" {
			continue
		}
		l, err := listenTCP(t.addr)
		if err != nil {
			return err
		}
		s.bound = append(s.bound, bound{t.name, l, t.h()})
	}
	return nil
}

// Handler returns the whole API without authentication, as served on the
// unix socket.
func (s *Server) Handler() http.Handler { return s.api }

// Addrs returns the bound addresses by kind: "unix", "tcp", "ecv",
// "metrics".
func (s *Server) Addrs() map[string]net.Addr {
	m := make(map[string]net.Addr, len(s.bound))
	for _, b := range s.bound {
		m[b.name] = b.l.Addr()
	}
	if s.socketPath != "" {
		m["unix"] = &net.UnixAddr{Name: s.socketPath, Net: "unix"}
	}
	return m
}

// ECV returns the ECV state: whether operators left the node in rotation,
// and whether the ECV monitor's last probe passed (always healthy without
// a monitor; unhealthy until the first probe with one) and why not. It does
// not include worker liveness, which GET ECVPath adds.
func (s *Server) ECV() (enabled, healthy bool, reason string) {
	return s.ecv.state()
}

// Serve serves the API until ctx is done, then stops: streams end, other
// requests get a few seconds to finish, the listeners close and the socket
// file is removed. It returns nil after ctx ended, or the error that made
// a listener fail.
func (s *Server) Serve(ctx context.Context) error {
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, len(s.bound))
	var servers []*http.Server
	for _, b := range s.bound {
		srv := &http.Server{
			Handler:           b.h,
			ReadHeaderTimeout: readHeaderTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			BaseContext:       func(net.Listener) context.Context { return base },
			ConnContext:       withConn,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(b.l); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("control: serving %s: %w", b.name, err)
			}
		}()
	}
	var wg sync.WaitGroup
	if s.ecv.url != "" {
		wg.Go(func() { s.ecv.monitor(base, s.cfg.ECVInterval, s.cfg.ECVTimeout) })
	}
	if s.cfg.Socket != Off || s.cfg.TCPAddr != "" {
		wg.Go(func() { s.ui.hist.run(base) }) // the dashboard's history
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel() // ends streams and the monitor
	sctx, scancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer scancel()
	for _, srv := range servers {
		if serr := srv.Shutdown(sctx); serr != nil {
			srv.Close()
		}
	}
	wg.Wait()
	return errors.Join(err, s.Close())
}

// Close closes the listeners and removes the socket file. Serve calls it;
// call it only when Serve is not called.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		for _, b := range s.bound {
			if err := b.l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				s.closeErr = errors.Join(s.closeErr, err)
			}
		}
		if s.socketPath != "" {
			if err := os.Remove(s.socketPath); err != nil && !os.IsNotExist(err) {
				s.closeErr = errors.Join(s.closeErr, fmt.Errorf("control: %w", err))
			}
		}
	})
	return s.closeErr
}
