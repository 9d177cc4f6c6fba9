package control_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/testkit"

	"go.uber.org/goleak"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/control/controltest"
)

var _ control.Cluster = (*controltest.Cluster)(nil)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// served is a Server running on a unix socket in a temporary directory.
type served struct {
	srv    *control.Server
	socket string
	client *control.Client
	hc     *http.Client // speaks to the socket
	log    *testkit.Buffer
}

// serve starts a Server for fake on a socket of its own and stops it when
// the test ends. cfg.Socket is set unless cfg has one.
func serve(t *testing.T, cfg control.Config, fake control.Cluster) *served {
	t.Helper()
	if cfg.Socket == "" {
		cfg.Socket = filepath.Join(t.TempDir(), "c.sock")
	}
	lb := &testkit.Buffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(lb, nil))
	}
	srv, err := control.New(cfg, fake)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	s := &served{srv: srv, socket: cfg.Socket, log: lb}
	if cfg.Socket != control.Off {
		s.client, err = control.NewClient(control.Target{Socket: cfg.Socket})
		if err != nil {
			t.Fatal(err)
		}
		s.hc = unixHTTP(cfg.Socket)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if s.client != nil {
			s.client.Close()
			s.hc.CloseIdleConnections()
		}
	})
	return s
}

// unixHTTP returns an http.Client that reaches every URL through socket.
func unixHTTP(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
}

// answer is a response read whole.
type answer struct {
	code   int
	header http.Header
	body   string
}

// request sends method path with body (JSON text, or nothing when empty)
// through hc to base and reads the answer.
func request(t *testing.T, hc *http.Client, base, method, path, body string, header ...string) answer {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// do sends a request to the served socket.
func (s *served) do(t *testing.T, method, path, body string) answer {
	t.Helper()
	return request(t, s.hc, "http://herd", method, path, body)
}

// decode unmarshals a JSON answer, failing the test on bad JSON.
func decode[T any](t *testing.T, a answer) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(a.body), &v); err != nil {
		t.Fatalf("answer %d %q: %v", a.code, a.body, err)
	}
	return v
}

// errorOf returns the "error" of a JSON error answer, failing the test
// when the answer is not one.
func errorOf(t *testing.T, a answer) string {
	t.Helper()
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error answer Content-Type %q; want application/json", ct)
	}
	e := decode[struct{ Error string }](t, a)
	if e.Error == "" {
		t.Errorf("answer %d %q has no error", a.code, a.body)
	}
	return e.Error
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
