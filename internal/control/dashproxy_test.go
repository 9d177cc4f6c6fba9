package control_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/control/controltest"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// proxied is herd dashboard's proxy in front of a served primary.
type proxied struct {
	d    *control.Dashboard
	ts   *httptest.Server
	port string
}

func newProxy(t *testing.T, target control.Target) *proxied {
	t.Helper()
	d, err := control.NewDashboard(target)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(d)
	t.Cleanup(func() { ts.Close(); d.Close() })
	_, port, _ := strings.Cut(strings.TrimPrefix(ts.URL, "http://"), ":")
	return &proxied{d: d, ts: ts, port: port}
}

// TestDashboardProxy checks herd dashboard's proxy: refused without the
// link, the link works once, and the session reaches the primary's API
// with CSRF on every change.
func TestDashboardProxy(t *testing.T) {
	fake := controltest.New(2, 1, 4)
	s := serve(t, control.Config{Name: "p"}, fake)
	p := newProxy(t, control.Target{Socket: s.socket})

	stranger := newBrowser(t, p.ts.URL)
	if a := stranger.do("GET", "/ui/", ""); a.code != 401 || !strings.Contains(a.body, "herd dashboard") || stranger.cookie != nil {
		t.Errorf("GET /ui/ without the link = %d %q; want 401 and the page saying how to get in", a.code, a.body)
	}
	for _, path := range []string{"/stats", "/ui/session", "/info"} {
		if a := stranger.do("GET", path, ""); a.code != 401 {
			t.Errorf("GET %s without the link = %d; want 401", path, a.code)
		}
	}
	if a := stranger.do("GET", "/ui/login?token=WRONG", ""); a.code != 401 || stranger.cookie != nil {
		t.Errorf("a wrong link = %d; want 401", a.code)
	}

	link := p.d.LoginURL(p.ts.URL)
	b := newBrowser(t, "")
	if a := b.do("GET", link, ""); a.code != 303 || a.header.Get("Location") != "/ui/" || a.header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("the link = %d %s; want 303 to /ui/", a.code, a.header.Get("Location"))
	}
	checkCookie(t, b.cookie, p.port)
	again := newBrowser(t, "")
	if a := again.do("GET", link, ""); a.code != 401 || again.cookie != nil || !strings.Contains(a.body, "used already") {
		t.Errorf("the link a second time = %d %q; want 401: it works once", a.code, a.body)
	}

	b.base = p.ts.URL
	if a := b.do("GET", "/ui/", ""); a.code != 200 || !strings.Contains(a.body, "herd dashboard") {
		t.Errorf("GET /ui/ with the session = %d", a.code)
	}
	st := decode[control.StatsDoc](t, b.do("GET", "/stats", ""))
	if len(st.Workers) != 2 || st.Primary.Name != "p" {
		t.Errorf("stats through the proxy: %+v", st)
	}
	sess := decode[struct{ CSRF, Auth string }](t, b.do("GET", "/ui/session", ""))
	if sess.CSRF == "" || sess.Auth != "session" {
		t.Fatalf("session %+v", sess)
	}
	if a := b.do("POST", "/scale", `{"workers": 3}`); a.code != 403 {
		t.Errorf("POST /scale without the CSRF token = %d; want 403", a.code)
	}
	if a := b.do("POST", "/scale", `{"workers": 9}`, "X-CSRF-Token", sess.CSRF); a.code != 422 || !strings.Contains(errorOf(t, a), "outside") {
		t.Errorf("POST /scale 9 = %d %s; want the primary's 422", a.code, a.body)
	}
	if a := b.do("POST", "/scale", `{"workers": 3}`, "X-CSRF-Token", sess.CSRF); a.code != 200 {
		t.Errorf("POST /scale with the CSRF token = %d %s", a.code, a.body)
	}
	if calls := fake.Calls(); strings.Join(calls, ",") != "scale 9,scale 3" {
		t.Errorf("calls %v; want scale 9, scale 3", calls)
	}
	rebound := newBrowser(t, p.ts.URL)
	rebound.cookie = b.cookie
	if a := rebound.do("GET", "/stats", "", "Host", "evil.example:"+p.port); a.code != 403 {
		t.Errorf("a request for another host name = %d; want 403", a.code)
	}
}

// TestDashboardProxyTCP checks that the proxy reaches a TCP primary with
// the bearer token, which the browser never has, and that what the
// browser sends as Authorization is not passed on.
func TestDashboardProxyTCP(t *testing.T) {
	token := writeToken(t, "tcp-token\n", 0o600)
	s := serve(t, control.Config{Name: "t", TCPAddr: "127.0.0.1:0", TokenFile: token, Socket: control.Off}, controltest.New(1, 1, 1))
	p := newProxy(t, control.Target{Addr: s.srv.Addrs()["tcp"].String(), Token: []byte("tcp-token")})
	b := newBrowser(t, "")
	b.do("GET", p.d.LoginURL(p.ts.URL), "")
	b.base = p.ts.URL
	for _, auth := range []string{"", "Bearer wrong"} {
		a := b.do("GET", "/info", "", "Authorization", auth)
		if a.code != 200 || strings.Contains(a.body, "tcp-token") {
			t.Errorf("GET /info through the proxy (Authorization %q) = %d %q", auth, a.code, a.body)
		}
	}
	page := b.do("GET", "/ui/", "")
	if page.code != 200 || strings.Contains(page.body, "tcp-token") {
		t.Errorf("GET /ui/ = %d, or it shows the token", page.code)
	}
}

// TestDashboardProxyStream follows the event stream through the proxy and
// checks that closing it leaves no goroutine and no subscription behind.
func TestDashboardProxyStream(t *testing.T) {
	fake := controltest.New(1, 1, 1)
	s := serve(t, control.Config{Name: "s"}, fake)
	waitUntil(t, "the history to subscribe", func() bool { return fake.Subscribers() == 1 })
	p := newProxy(t, control.Target{Socket: s.socket})
	b := newBrowser(t, "")
	b.do("GET", p.d.LoginURL(p.ts.URL), "")
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", p.ts.URL+"/events", nil)
	req.AddCookie(b.cookie)
	resp, err := b.hc.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /events through the proxy: %v %v", err, resp)
	}
	r := &sseReader{t: t, sc: bufio.NewScanner(resp.Body)}
	waitUntil(t, "the stream's subscription", func() bool { return fake.Subscribers() == 2 })
	fake.Emit(supervisor.Event{Type: supervisor.EventExited, Slot: 0, PID: 1000, Gen: 1, Status: -1, Signal: "KILL", Crash: true})
	if typ, e := r.next(); typ != "exited" || e.PID != 1000 || !e.Crash {
		t.Errorf("event %s %+v; want the crash", typ, e)
	}
	cancel()
	resp.Body.Close()
	waitUntil(t, "the stream's subscription to end", func() bool { return fake.Subscribers() == 1 })
	b.hc.CloseIdleConnections()
	p.d.Close()
	s.hc.CloseIdleConnections()
}

// TestInfo checks GET /info: what runs, and nothing of the environment.
func TestInfo(t *testing.T) {
	t.Setenv("HERD_TEST_SECRET", "env-value-7f3a9")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		command []string
		goBuild bool
	}{
		{"command", []string{"sh", "-c", "exec sleep 1"}, false},
		{"go-command", []string{exe, "-test.run=none"}, true},
		{"library", nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := serve(t, control.Config{Name: "i", Command: tt.command, Dir: "/srv/app", ECVReadOnly: true}, controltest.New(1, 1, 1))
			a := s.do(t, "GET", "/info", "")
			if strings.Contains(a.body, "env-value-7f3a9") {
				t.Fatal("GET /info shows an environment value")
			}
			doc := decode[control.InfoDoc](t, a)
			want := tt.command
			if want == nil {
				want = os.Args
			}
			if strings.Join(doc.Command, " ") != strings.Join(want, " ") || doc.Dir != "/srv/app" || doc.Name != "i" || doc.PID != os.Getpid() {
				t.Errorf("info %+v; want command %q in /srv/app", doc, want)
			}
			if (doc.Go != nil) != tt.goBuild || doc.Go != nil && !strings.HasPrefix(doc.Go.GoVersion, "go") {
				t.Errorf("go build %+v; want one: %v", doc.Go, tt.goBuild)
			}
			if !doc.ECV.ReadOnly || !doc.ECV.Enabled || doc.ECV.Path != "/ecv" {
				t.Errorf("ecv %+v; want read-only, enabled, /ecv", doc.ECV)
			}
		})
	}
}

// TestHistoryEndpoint checks GET /history against the sampler of a
// running server: samples per slot, kept across a new worker in the slot.
func TestHistoryEndpoint(t *testing.T) {
	fake := controltest.New(2, 1, 2)
	fake.AutoRestart = true
	s := serve(t, control.Config{Name: "h", HistoryInterval: 5 * time.Millisecond}, fake)
	var doc control.HistoryDoc
	waitUntil(t, "samples of both slots", func() bool {
		doc = decode[control.HistoryDoc](t, s.do(t, "GET", "/history", ""))
		return len(doc.Slots) == 2 && len(doc.Slots[0].Time) >= 2 && len(doc.Slots[1].Time) >= 2
	})
	if doc.IntervalSeconds != 0.005 || doc.WindowSeconds != 900 || doc.Slots[0].PID[0] != 1000 || doc.Slots[0].RSS[0] != 1000*1024 {
		t.Errorf("history %+v", doc)
	}
	if err := s.client.Restart(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a sample of slot 0's new worker", func() bool {
		doc = decode[control.HistoryDoc](t, s.do(t, "GET", "/history?slot=0", ""))
		pids := doc.Slots[0].PID
		return len(doc.Slots) == 1 && pids[0] == 1000 && pids[len(pids)-1] == 1100
	})
	var types []string
	for _, e := range doc.Events {
		types = append(types, e.Type)
	}
	if !strings.Contains(strings.Join(types, ","), "rollout_started,started,ready,stopping,exited,rollout_finished") {
		t.Errorf("recent events %v; want the rollout's", types)
	}
	last := doc.Slots[0].Time[len(doc.Slots[0].Time)-1]
	later := decode[control.HistoryDoc](t, s.do(t, "GET", fmt.Sprintf("/history?since=%d", last), ""))
	for _, sl := range later.Slots {
		if len(sl.Time) > 0 && sl.Time[0] <= last || len(later.Events) != 0 {
			t.Errorf("since %d: slot %d from %v, %d events; want only later samples and no events", last, sl.Slot, sl.Time, len(later.Events))
		}
	}
	for _, bad := range []string{"/history?slot=x", "/history?slot=-1", "/history?x=1", "/history?since=-5", "/history?since=now"} {
		if a := s.do(t, "GET", bad, ""); a.code != 400 {
			t.Errorf("GET %s = %d; want 400", bad, a.code)
		}
	}
}
