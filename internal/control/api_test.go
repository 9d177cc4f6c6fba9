package control_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/control/controltest"
	"github.com/herd-cluster/herd/internal/supervisor"
)

func TestStats(t *testing.T) {
	fake := controltest.New(2, 1, 8)
	fake.SetStatus(1, supervisor.StatusCrashed)
	s := serve(t, control.Config{Name: "app", Version: "v1.2.3"}, fake)
	a := s.do(t, "GET", "/stats", "")
	if a.code != http.StatusOK {
		t.Fatalf("GET /stats: %d %s", a.code, a.body)
	}
	doc := decode[control.StatsDoc](t, a)
	if doc.Primary.Version != "v1.2.3" || doc.Primary.Name != "app" || doc.Primary.PID == 0 ||
		doc.Primary.UptimeSeconds < 59 {
		t.Errorf("primary = %+v", doc.Primary)
	}
	c := doc.Cluster
	if c.Workers != 2 || c.Active != 1 || c.Crashed != 1 || c.MinWorkers != 1 || c.MaxWorkers != 8 {
		t.Errorf("cluster = %+v", c)
	}
	if len(doc.Workers) != 2 {
		t.Fatalf("workers = %+v", doc.Workers)
	}
	w := doc.Workers[0]
	if w.Slot != 0 || w.PID != 1000 || w.Generation != 1 || w.Status != "ACTIVE" || w.Port != 8080 ||
		w.StartedAt == nil || w.UptimeSeconds != 30 || !w.Ready || w.RSSBytes != 1000*1024 || w.CPUPercent != 1.5 {
		t.Errorf("worker 0 = %+v", w)
	}
	if w := doc.Workers[1]; w.PID != 0 || w.RSSBytes != 0 || w.Status != "CRASHED" {
		t.Errorf("worker 1 = %+v; want no process and no usage", w)
	}
	// The exact keys of the issue.
	for _, key := range []string{`"pid"`, `"uptime_seconds"`, `"total_restarts"`, `"total_crashes"`, `"workers_spawned"`,
		`"version"`, `"active"`, `"crashed"`, `"disabled"`, `"min_workers"`, `"max_workers"`, `"shutdown_requested"`,
		`"restart_in_progress"`, `"generation"`, `"status"`, `"port"`, `"started_at"`, `"exit_status"`,
		`"crash_count"`, `"respawn_disabled"`, `"rss_bytes"`, `"cpu_percent"`, `"ready"`} {
		if !strings.Contains(a.body, key) {
			t.Errorf("GET /stats lacks %s", key)
		}
	}
}

func TestHealth(t *testing.T) {
	tests := []struct {
		name   string
		status map[int]supervisor.Status
		code   int
		reason string
	}{
		{"all-active", nil, 200, ""},
		{"one-crashed", map[int]supervisor.Status{1: supervisor.StatusCrashed}, 200, ""},
		{"one-disabled", map[int]supervisor.Status{2: supervisor.StatusDisabled}, 503, "slot 2 is DISABLED"},
		{"two-disabled", map[int]supervisor.Status{0: supervisor.StatusDisabled, 2: supervisor.StatusDisabled}, 503, "slots 0, 2 are DISABLED"},
		{"none-active", map[int]supervisor.Status{0: supervisor.StatusStarting, 1: supervisor.StatusCrashed, 2: supervisor.StatusStarting}, 503, "no worker is ACTIVE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := controltest.New(3, 1, 8)
			for slot, st := range tt.status {
				fake.SetStatus(slot, st)
			}
			s := serve(t, control.Config{Name: "h"}, fake)
			a := s.do(t, "GET", "/health", "")
			doc := decode[struct{ Status, Reason string }](t, a)
			if a.code != tt.code || doc.Reason != tt.reason {
				t.Errorf("GET /health = %d %q; want %d with reason %q", a.code, a.body, tt.code, tt.reason)
			}
		})
	}
}

func TestRestart(t *testing.T) {
	fake := controltest.New(2, 1, 8)
	s := serve(t, control.Config{Name: "r"}, fake)

	a := s.do(t, "POST", "/restart", "")
	if a.code != http.StatusAccepted || decode[struct{ Status string }](t, a).Status != "started" {
		t.Fatalf("POST /restart = %d %s; want 202 started", a.code, a.body)
	}
	a = s.do(t, "POST", "/restart", `{"slot": 1}`)
	if a.code != http.StatusConflict {
		t.Errorf("second POST /restart = %d %s; want 409", a.code, a.body)
	}
	fake.FinishRestart(nil)

	a = s.do(t, "POST", "/restart", `{"slot": 5}`)
	if a.code != http.StatusNotFound || !strings.Contains(errorOf(t, a), "no worker slot 5") {
		t.Errorf("restart slot 5 = %d %s; want 404", a.code, a.body)
	}
	fake.AutoRestart = true
	a = s.do(t, "POST", "/restart?wait=1", `{"slot": 1}`)
	if a.code != http.StatusOK || decode[struct{ Status string }](t, a).Status != "finished" {
		t.Errorf("restart?wait=1 = %d %s; want 200 finished", a.code, a.body)
	}
	fake.RestartErr = errTest("new worker of slot 0 could not start")
	a = s.do(t, "POST", "/restart?wait=1", "{}")
	if a.code != http.StatusInternalServerError || !strings.Contains(errorOf(t, a), "could not start") {
		t.Errorf("failing restart?wait=1 = %d %s; want 500 with the error", a.code, a.body)
	}
	want := []string{"restart -1", "restart 1", "restart 5", "restart 1", "restart -1"}
	if got := fake.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls %q; want %q", got, want)
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }

func TestScale(t *testing.T) {
	fake := controltest.New(2, 1, 4)
	s := serve(t, control.Config{Name: "s"}, fake)
	a := s.do(t, "POST", "/scale", `{"workers": 3}`)
	if a.code != http.StatusOK || decode[struct{ Workers int }](t, a).Workers != 3 {
		t.Fatalf("scale 3 = %d %s", a.code, a.body)
	}
	a = s.do(t, "POST", "/scale", `{"workers": 5}`)
	if a.code != http.StatusUnprocessableEntity || !strings.Contains(errorOf(t, a), "outside min-workers 1 and max-workers 4") {
		t.Errorf("scale 5 = %d %s; want 422 from the RangeError", a.code, a.body)
	}
	if got := fake.Calls(); !slices.Equal(got, []string{"scale 3", "scale 5"}) {
		t.Errorf("calls %q", got)
	}
}

func TestSignal(t *testing.T) {
	fake := controltest.New(2, 1, 4)
	s := serve(t, control.Config{Name: "s"}, fake)
	for _, body := range []string{`{"signal": "USR1"}`, `{"signal": "sigusr1", "slot": 1}`, `{"signal": 10}`, `{"signal": "10", "slot": 0}`} {
		a := s.do(t, "POST", "/signal", body)
		if doc := decode[struct{ Status, Signal string }](t, a); a.code != 200 || doc.Signal != "USR1" {
			t.Errorf("POST /signal %s = %d %s", body, a.code, a.body)
		}
	}
	a := s.do(t, "POST", "/signal", `{"signal": "HUP", "slot": 7}`)
	if a.code != http.StatusNotFound || !strings.Contains(errorOf(t, a), "no worker slot 7") {
		t.Errorf("signal slot 7 = %d %s; want 404", a.code, a.body)
	}
	want := []string{"signal SIGUSR1 -1", "signal SIGUSR1 1", "signal SIGUSR1 -1", "signal SIGUSR1 0", "signal SIGHUP 7"}
	if got := fake.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls %q; want %q", got, want)
	}
}

func TestStop(t *testing.T) {
	fake := controltest.New(1, 1, 4)
	stopped := make(chan struct{}, 2)
	fake.OnStop = func(_ time.Duration) { stopped <- struct{}{} }
	s := serve(t, control.Config{Name: "s"}, fake)
	for _, body := range []string{"", `{"timeout": "10s"}`} {
		a := s.do(t, "POST", "/stop", body)
		if a.code != http.StatusAccepted || decode[struct{ Status string }](t, a).Status != "stopping" {
			t.Errorf("POST /stop %s = %d %s", body, a.code, a.body)
		}
		<-stopped
	}
	if got := fake.Calls(); !slices.Equal(got, []string{"stop 0s", "stop 10s"}) {
		t.Errorf("calls %q", got)
	}
}

// TestBadInput checks every kind of bad request gets a 4xx JSON error and
// reaches the cluster not at all.
func TestBadInput(t *testing.T) {
	big := `{"workers": 1, "pad": "` + strings.Repeat("x", 1<<20) + `"}`
	tests := []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"malformed", "POST", "/scale", `{"workers": `, 400, "bad JSON"},
		{"not an object", "POST", "/scale", `[3]`, 400, "bad JSON"},
		{"unknown field", "POST", "/scale", `{"workers": 3, "force": true}`, 400, `unknown field "force"`},
		{"trailing data", "POST", "/scale", `{"workers": 3} {"workers": 4}`, 400, "data after"},
		{"trailing garbage", "POST", "/scale", `{"workers": 3}x`, 400, "data after"},
		{"missing workers", "POST", "/scale", `{}`, 400, `"workers" is required`},
		{"empty scale", "POST", "/scale", ``, 400, "empty body"},
		{"negative workers", "POST", "/scale", `{"workers": -1}`, 400, "negative"},
		{"string workers", "POST", "/scale", `{"workers": "3"}`, 400, "bad JSON"},
		{"float workers", "POST", "/scale", `{"workers": 2.5}`, 400, "bad JSON"},
		{"too large", "POST", "/scale", big, 413, "larger than"},
		{"unknown signal", "POST", "/signal", `{"signal": "FOO"}`, 400, `unknown signal "FOO"`},
		{"signal 0", "POST", "/signal", `{"signal": 0}`, 400, "outside 1-64"},
		{"signal 65", "POST", "/signal", `{"signal": "65"}`, 400, "outside 1-64"},
		{"no signal", "POST", "/signal", `{"slot": 1}`, 400, `"signal" is required`},
		{"negative slot", "POST", "/signal", `{"signal": "USR1", "slot": -2}`, 400, "negative"},
		{"restart negative slot", "POST", "/restart", `{"slot": -1}`, 400, "negative"},
		{"restart unknown field", "POST", "/restart", `{"slots": 1}`, 400, "unknown field"},
		{"restart bad wait", "POST", "/restart?wait=maybe", ``, 400, "wait="},
		{"stop bad timeout", "POST", "/stop", `{"timeout": "soon"}`, 400, "not a duration"},
		{"stop negative timeout", "POST", "/stop", `{"timeout": "-1s"}`, 400, "negative"},
		{"stop number timeout", "POST", "/stop", `{"timeout": 10}`, 400, "bad JSON"},
		{"unknown query", "GET", "/stats?verbose=1", ``, 400, `unknown query parameter "verbose"`},
		{"logs bad slot", "GET", "/logs?slot=x", ``, 400, "slot="},
		{"logs unknown slot", "GET", "/logs?slot=9", ``, 404, "no worker slot 9"},
		{"logs bad lines", "GET", "/logs?lines=-5", ``, 400, "lines="},
		{"logs huge lines", "GET", "/logs?lines=100001", ``, 400, "lines="},
		{"unknown path", "GET", "/nope", ``, 404, "no endpoint /nope"},
		{"wrong method", "GET", "/scale", ``, 405, "method not allowed"},
		{"wrong method post", "POST", "/stats", `{}`, 405, "method not allowed"},
		{"ecv wrong method", "DELETE", "/ecv", ``, 405, "method not allowed"},
	}
	fake := controltest.New(2, 1, 4)
	s := serve(t, control.Config{Name: "b", Logs: newSink(t)}, fake)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := s.do(t, tt.method, tt.path, tt.body)
			if a.code != tt.code {
				t.Fatalf("%s %s %.40q = %d %s; want %d", tt.method, tt.path, tt.body, a.code, a.body, tt.code)
			}
			if msg := errorOf(t, a); !strings.Contains(msg, tt.want) {
				t.Errorf("error %q; want it to contain %q", msg, tt.want)
			}
			if a.code == 405 && a.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	if calls := fake.Calls(); len(calls) != 0 {
		t.Errorf("bad requests reached the cluster: %q", calls)
	}
	if a := s.do(t, "GET", "/scale", ""); a.header.Get("Allow") != "POST" {
		t.Errorf("Allow = %q; want POST", a.header.Get("Allow"))
	}
}

// TestNoMetrics checks /metrics without a handler is a JSON 404, and with
// one is the handler's answer.
func TestMetrics(t *testing.T) {
	s := serve(t, control.Config{Name: "m"}, controltest.New(1, 1, 1))
	if a := s.do(t, "GET", "/metrics", ""); a.code != 404 {
		t.Errorf("GET /metrics without handler = %d", a.code)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write([]byte("herd_workers 1\n"))
	})
	s = serve(t, control.Config{Name: "m", Metrics: h}, controltest.New(1, 1, 1))
	if a := s.do(t, "GET", "/metrics", ""); a.code != 200 || a.body != "herd_workers 1\n" {
		t.Errorf("GET /metrics = %d %q", a.code, a.body)
	}
}
