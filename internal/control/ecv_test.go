package control_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/control/controltest"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// checkECV checks an ECV answer: its status, headers and body fields.
func checkECV(t *testing.T, a answer, code int, status, reason string) {
	t.Helper()
	if a.code != code {
		t.Errorf("ECV = %d %q; want %d", a.code, a.body, code)
	}
	if cc := a.header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control %q; want no-cache", cc)
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q; want text/plain", ct)
	}
	serve := strconv.FormatBool(status == "AVAILABLE")
	prefix := "status=" + status + "&ServeTraffic=" + serve + "&ip="
	if !strings.HasPrefix(a.body, prefix) {
		t.Errorf("body %q; want it to start with %q", a.body, prefix)
	}
	for _, key := range []string{"&hostname=", "&port=8080&", "&time="} {
		if !strings.Contains(a.body, key) {
			t.Errorf("body %q lacks %q", a.body, key)
		}
	}
	_, tm, _ := strings.Cut(a.body, "&time=")
	tm, _, _ = strings.Cut(tm, "&")
	if _, err := time.Parse(http.TimeFormat, tm); err != nil {
		t.Errorf("time %q: %v", tm, err)
	}
	if reason != "" && !strings.Contains(a.body, "&reason="+reason) {
		t.Errorf("body %q; want reason %q", a.body, reason)
	}
}

func TestECV(t *testing.T) {
	fake := controltest.New(2, 1, 4)
	s := serve(t, control.Config{Name: "e", Port: 8080}, fake)
	checkECV(t, s.do(t, "GET", "/ecv", ""), 200, "AVAILABLE", "")
	if a := s.do(t, "HEAD", "/ecv", ""); a.code != 200 || a.body != "" {
		t.Errorf("HEAD /ecv = %d %q", a.code, a.body)
	}

	if a := s.do(t, "POST", "/ecv/disable", ""); a.code != http.StatusNoContent {
		t.Fatalf("POST /ecv/disable = %d %s", a.code, a.body)
	}
	checkECV(t, s.do(t, "GET", "/ecv", ""), 400, "DISABLED", "disabled+by+an+operator")
	if enabled, healthy, _ := s.srv.ECV(); enabled || !healthy {
		t.Errorf("ECV() = %v, %v; want disabled and healthy", enabled, healthy)
	}
	if a := s.do(t, "POST", "/ecv/enable", ""); a.code != http.StatusNoContent {
		t.Fatalf("POST /ecv/enable = %d %s", a.code, a.body)
	}
	checkECV(t, s.do(t, "GET", "/ecv", ""), 200, "AVAILABLE", "")

	fake.SetStatus(0, supervisor.StatusCrashed)
	fake.SetStatus(1, supervisor.StatusStarting)
	checkECV(t, s.do(t, "GET", "/ecv", ""), 400, "DISABLED", "no+worker+is+ACTIVE")
	if a := s.do(t, "POST", "/ecv/enable", `{"x":1}`); a.code != 400 {
		t.Errorf("enable with a body = %d; want 400", a.code)
	}
}

func TestECVReadOnlyAndPath(t *testing.T) {
	s := serve(t, control.Config{Name: "e", Port: 8080, ECVPath: "/lb/check", ECVReadOnly: true}, controltest.New(1, 1, 1))
	checkECV(t, s.do(t, "GET", "/lb/check", ""), 200, "AVAILABLE", "")
	if a := s.do(t, "GET", "/ecv", ""); a.code != 404 {
		t.Errorf("GET /ecv with another path = %d", a.code)
	}
	a := s.do(t, "POST", "/lb/check/disable", "")
	if a.code != http.StatusForbidden || !strings.Contains(errorOf(t, a), "read-only") {
		t.Errorf("disable while read-only = %d %s; want 403", a.code, a.body)
	}
	if enabled, _, _ := s.srv.ECV(); !enabled {
		t.Error("read-only ECV was disabled")
	}
}

// TestECVMonitor probes an app through its port and follows its health.
func TestECVMonitor(t *testing.T) {
	var failing atomic.Bool
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || failing.Load() {
			http.Error(w, "sick", http.StatusInternalServerError)
		}
	}))
	defer app.Close()
	_, portText, _ := net.SplitHostPort(app.Listener.Addr().String())
	port, _ := strconv.Atoi(portText)

	s := serve(t, control.Config{Name: "m", Port: port, ECVMonitor: "/healthz", ECVInterval: 5 * time.Millisecond},
		controltest.New(1, 1, 1))
	waitUntil(t, "the monitor to pass", func() bool { _, h, _ := s.srv.ECV(); return h })
	if a := s.do(t, "GET", "/ecv", ""); a.code != 200 {
		t.Errorf("healthy app: ECV %d %s", a.code, a.body)
	}
	failing.Store(true)
	waitUntil(t, "the monitor to fail", func() bool { _, h, _ := s.srv.ECV(); return !h })
	a := s.do(t, "GET", "/ecv", "")
	if a.code != 400 || !strings.Contains(a.body, "&reason=GET+http%3A%2F%2F127.0.0.1%3A"+portText+"%2Fhealthz%3A+status+500") {
		t.Errorf("failing app: ECV %d %s", a.code, a.body)
	}
}

func TestECVMonitorConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg  control.Config
		want string
	}{
		{control.Config{Name: "x", Socket: control.Off, ECVMonitor: "/health"}, "no TCP port"},
		{control.Config{Name: "x", Socket: control.Off, ECVMonitor: "ftp://h/x", Port: 1}, "neither a path nor"},
		{control.Config{Name: "x", Socket: control.Off, ECVPath: "ecv"}, "must start with /"},
		{control.Config{Name: "x", Socket: control.Off, ECVPath: "/stats"}, "not be an API path"},
		{control.Config{Name: "x", Socket: control.Off, MetricsAddr: ":0"}, "no metrics handler"},
		{control.Config{Name: "x", Socket: control.Off, ECVAddr: "nope"}, "address"},
		{control.Config{Socket: ""}, "neither a name nor a socket"},
		{control.Config{Name: "a/b"}, "cannot be part of a file name"},
	} {
		if _, err := control.New(tt.cfg, controltest.New(1, 1, 1)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v; want an error with %q", tt.cfg, err, tt.want)
		}
	}
}

// TestECVAddr checks the public ECV listener serves only GET ECVPath,
// without a token, and the metrics listener only /metrics.
func TestECVAddr(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("m 1\n")) })
	s := serve(t, control.Config{Name: "e", Port: 8080, ECVAddr: "127.0.0.1:0", MetricsAddr: ":0", Metrics: metrics,
		Socket: control.Off}, controltest.New(1, 1, 1))
	addrs := s.srv.Addrs()
	ecvBase := "http://" + addrs["ecv"].String()
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	checkECV(t, request(t, hc, ecvBase, "GET", "/ecv", ""), 200, "AVAILABLE", "")
	for _, p := range []struct{ method, path string }{{"GET", "/stats"}, {"POST", "/ecv/disable"}, {"GET", "/metrics"}} {
		if a := request(t, hc, ecvBase, p.method, p.path, ""); a.code != 404 {
			t.Errorf("ECV listener: %s %s = %d; want 404", p.method, p.path, a.code)
		}
	}
	mbase := "http://" + addrs["metrics"].String()
	if !strings.HasPrefix(addrs["metrics"].String(), "127.0.0.1:") {
		t.Errorf("metrics on %s; want loopback for a bare :port", addrs["metrics"])
	}
	if a := request(t, hc, mbase, "GET", "/metrics", ""); a.code != 200 || a.body != "m 1\n" {
		t.Errorf("metrics listener: %d %q", a.code, a.body)
	}
	if a := request(t, hc, mbase, "GET", "/ecv", ""); a.code != 404 {
		t.Errorf("metrics listener: GET /ecv = %d; want 404", a.code)
	}
}
