package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/control/controltest"
	"github.com/herd-cluster/herd/internal/testkit"
)

// btest is the cluster, dashboard and browser of TestDashboardBrowser.
type btest struct {
	p          *primary
	socket     string
	tcp, token string
	link       string
	browser    string // chromium's path
	tab        *page
	client     *control.Client
}

// rows is the JavaScript that lists the workers table's rows.
const rows = `[...document.querySelectorAll('#rows tr')]`

// showRows is what a failed wait on the table prints.
const showRows = rows + `.map((r) => JSON.stringify(r.dataset)).join(' ') + ' | ' + (document.querySelector('#error').textContent)`

// TestDashboardBrowser drives the dashboard in a real chromium against a
// real cluster started with herd run, through herd dashboard, and then
// logs in on the TCP control address.
func TestDashboardBrowser(t *testing.T) {
	path := chromium(t)
	isolate(t)
	runtime := os.Getenv("XDG_RUNTIME_DIR")
	env := []string{"XDG_RUNTIME_DIR=" + runtime}
	bt := &btest{socket: filepath.Join(runtime, "herd", "dash.sock"), browser: path,
		token: filepath.Join(t.TempDir(), "token"), tcp: testkit.FreeAddr(t)}
	if err := os.WriteFile(bt.token, []byte("s3cret-dashboard\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bt.p = startPrimary(t, bt.socket, 2, env, "run", "--name", "dash", "--workers", "2", "--max-workers", "3",
		"--ready-delay", "50ms", "--startup-delay", "0", "--respawn-delay", "50ms", "--shutdown-timeout", "5s",
		"--listen", "127.0.0.1:0", "--control-addr", bt.tcp, "--token-file", bt.token, "--",
		"sh", "-c", workerScript)
	var err error
	if bt.client, err = control.NewClient(control.Target{Socket: bt.socket}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bt.client.Close)
	bt.link = startDashboard(t, env, "--name", "dash")
	bt.tab = newBrowser(t, path)
	for _, step := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"refused-without-link", bt.refused}, {"loads", bt.loads}, {"kill-9", bt.kill}, {"reload", bt.reload},
		{"scale-up", bt.scaleUp}, {"log-tail", bt.logTail}, {"refused-action", bt.refusedAction},
		{"screenshot", bt.screenshot}, {"keyboard", bt.keyboard}, {"phone-and-dark", bt.phoneAndDark},
		{"tcp-login", bt.tcpLogin},
	} {
		if !t.Run(step.name, step.f) {
			return // each step needs the ones before
		}
	}
}

func (bt *btest) refused(t *testing.T) {
	base, _, _ := strings.Cut(bt.link, "/ui/login")
	bt.tab.run(t, "opening the page without the link", chromedp.Navigate(base+"/ui/"))
	if got := eval[string](t, bt.tab, `document.body.innerText`); !strings.Contains(got, "needs the link herd dashboard printed") {
		t.Errorf("the page without the link shows %q", got)
	}
	if n := eval[int](t, bt.tab, rows+`.length`); n != 0 {
		t.Errorf("the page without the link shows %d workers", n)
	}
}

func (bt *btest) loads(t *testing.T) {
	bt.tab.run(t, "opening the link", chromedp.Navigate(bt.link))
	bt.tab.waitJS(t, "the table of 2 workers", 10*time.Second, rows+`.length === 2 && `+rows+`.every((r) => r.dataset.status === 'ACTIVE')`, showRows)
	doc, err := bt.client.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range doc.Workers {
		if got := eval[string](t, bt.tab, fmt.Sprintf(`document.querySelector('#rows tr[data-slot="%d"]').dataset.pid`, w.Slot)); got != fmt.Sprint(w.PID) {
			t.Errorf("slot %d shows pid %s; want %d", w.Slot, got, w.PID)
		}
	}
	if got := eval[string](t, bt.tab, `location.pathname + location.search`); got != "/ui/" {
		t.Errorf("the page is at %s; want /ui/ (the link's token gone from the address bar)", got)
	}
	bt.tab.waitJS(t, "the event stream", 10*time.Second, `document.querySelector('#conn').textContent === 'live'`, `document.querySelector('#conn').textContent`)
}

func (bt *btest) kill(t *testing.T) {
	doc, err := bt.client.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	old := doc.Workers[0].PID
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	bt.tab.waitJS(t, "slot 0's row to show its new worker and one restart, without a reload", 2*time.Second,
		fmt.Sprintf(`(() => { const r = document.querySelector('#rows tr[data-slot="0"]'); return r.dataset.pid !== '%d' && r.dataset.pid !== '0' && r.dataset.restarts === '1'; })()`, old), showRows)
	bt.tab.waitJS(t, "the crash in the timeline", 5*time.Second,
		fmt.Sprintf(`document.querySelector('#events').innerText.includes('slot 0 pid %d exited: killed by SIGKILL (crash)')`, old), `document.querySelector('#events').innerText`)
	bt.tab.waitJS(t, "slot 0 ACTIVE again", 10*time.Second, `document.querySelector('#rows tr[data-slot="0"]').dataset.status === 'ACTIVE'`, showRows)
}

func (bt *btest) reload(t *testing.T) {
	before := eval[map[string]string](t, bt.tab, `Object.fromEntries(`+rows+`.map((r) => [r.dataset.slot, r.dataset.gen]))`)
	bt.tab.confirm(t, "#a-reload")
	want := make([]string, 0, len(before))
	for slot, gen := range before {
		var g int
		fmt.Sscan(gen, &g)
		want = append(want, fmt.Sprintf(`document.querySelector('#rows tr[data-slot="%s"]').dataset.gen === '%d'`, slot, g+1))
	}
	bt.tab.waitJS(t, "every slot's generation +1", 20*time.Second, strings.Join(want, " && "), showRows)
	bt.tab.waitJS(t, "the rollout in the timeline", 10*time.Second,
		`document.querySelector('#events').innerText.includes('rolling restart of 2 workers started') && document.querySelector('#events').innerText.includes('rolling restart finished in')`,
		`document.querySelector('#events').innerText`)
	if got := eval[string](t, bt.tab, `document.querySelector('#rollout-text').textContent`); got != "finished" && got != "2 of 2 slots replaced" {
		t.Errorf("rollout progress says %q; want it finished", got)
	}
}

func (bt *btest) scaleUp(t *testing.T) {
	bt.tab.confirm(t, "#a-scale-up")
	bt.tab.waitJS(t, "a third row", 10*time.Second, rows+`.length === 3`, showRows)
	bt.tab.waitJS(t, "slot 2 ACTIVE", 10*time.Second, `document.querySelector('#rows tr[data-slot="2"]').dataset.status === 'ACTIVE'`, showRows)
}

func (bt *btest) logTail(t *testing.T) {
	bt.tab.choose(t, "#log-slot", "1")
	bt.tab.waitJS(t, "slot 1's first line in its log tail", 10*time.Second,
		`document.querySelector('#log-lines').innerText.includes('[1] hello 1 gen')`, `document.querySelector('#log-lines').innerText`)
	bt.tab.choose(t, "#a-signal", "USR1")
	bt.tab.choose(t, "#a-signal-slot", "1")
	bt.tab.confirm(t, "#a-signal-form button[type=submit]")
	bt.tab.waitJS(t, "the worker's answer to USR1 in its log tail", 10*time.Second,
		`document.querySelector('#log-lines').innerText.includes('[1] got USR1 1')`, `document.querySelector('#log-lines').innerText`)
	if got := eval[string](t, bt.tab, `document.querySelector('#log-lines').innerText`); strings.Contains(got, "[0] ") {
		t.Errorf("slot 1's log tail shows slot 0's output:\n%s", got)
	}
}

func (bt *btest) refusedAction(t *testing.T) {
	bt.tab.run(t, "typing 9 workers", chromedp.SetValue(chromedp.CSS("#a-scale-n"), "9"))
	bt.tab.confirm(t, "#a-scale-set")
	bt.tab.waitJS(t, "the primary's refusal", 10*time.Second,
		`!document.querySelector('#error').hidden && document.querySelector('#error').textContent.includes('workers 9 is outside min-workers 1 and max-workers 3')`,
		`document.querySelector('#error').textContent`)
	if n := eval[int](t, bt.tab, rows+`.length`); n != 3 {
		t.Errorf("%d rows after a refused scale; want 3", n)
	}
}

func (bt *btest) screenshot(t *testing.T) {
	// The primary samples every 5s and the page reads what is new as often:
	// a line joins two samples once the page has read a later one.
	bt.tab.waitJS(t, "the charts to grow without a reload", 20*time.Second,
		`document.querySelectorAll('#chart-mem circle.latest').length === 3 && [...document.querySelectorAll('#chart-mem path.series')].some((p) => p.getAttribute('d').includes('L'))`,
		`document.querySelector('#chart-mem').innerHTML`)
	bt.tab.waitJS(t, "the summary of 3 workers", 10*time.Second,
		`document.querySelector('#s-workers').firstChild.textContent === '3' && document.querySelector('#s-active').firstChild.textContent === '3' && document.querySelector('#s-restarts').firstChild.textContent === '3'`,
		`document.querySelector('#summary').innerText`)
	bt.tab.screenshot(t, "dashboard.png")
}

// unlabelled lists the controls a screen reader could not name.
const unlabelled = `[...document.querySelectorAll('input, select, button, [tabindex]')].filter((e) => !e.hidden && e.offsetParent !== null)
	.filter((e) => !((e.labels && e.labels.length) || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby') || (e.tagName === 'BUTTON' && e.textContent.trim())))
	.map((e) => e.outerHTML.slice(0, 80))`

func (bt *btest) keyboard(t *testing.T) {
	if got := eval[[]string](t, bt.tab, unlabelled); len(got) != 0 {
		t.Errorf("controls without a label: %q", got)
	}
	gens := rows + `.map((r) => r.dataset.gen).join()`
	before := eval[string](t, bt.tab, gens)
	eval[bool](t, bt.tab, `(document.querySelector('#a-reload').focus(), document.activeElement.id === 'a-reload')`)
	bt.tab.run(t, "pressing Enter", chromedp.KeyEvent(kb.Enter))
	bt.tab.run(t, "the dialog", chromedp.WaitVisible(chromedp.CSS("#confirm[open]")))
	if got := eval[string](t, bt.tab, `document.activeElement.id`); got != "confirm-cancel" {
		t.Errorf("focus in the dialog on %q; want the Cancel button", got)
	}
	bt.tab.run(t, "pressing Escape", chromedp.KeyEvent(kb.Escape), chromedp.WaitNotPresent(chromedp.CSS("#confirm[open]")))
	if got := eval[string](t, bt.tab, `document.activeElement.id`); got != "a-reload" {
		t.Errorf("focus after the dialog on %q; want back on the button", got)
	}
	if after := eval[string](t, bt.tab, gens); after != before {
		t.Errorf("generations %s after a cancelled restart; want %s", after, before)
	}
}

func (bt *btest) phoneAndDark(t *testing.T) {
	bg := `getComputedStyle(document.documentElement).backgroundColor`
	light := eval[string](t, bt.tab, bg)
	bt.tab.run(t, "a phone-sized dark screen", chromedp.EmulateViewport(390, 844))
	if _, err := chromedp.Call(bt.tab.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		chromedp.Call(bt.tab.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{})
		bt.tab.run(t, "the desktop size again", chromedp.EmulateViewport(1280, 900))
	}()
	if dark := eval[string](t, bt.tab, bg); dark == light {
		t.Errorf("the background is %s in dark mode too", dark)
	}
	bt.tab.waitJS(t, "the page to fit the phone's width", 5*time.Second, `document.documentElement.scrollWidth <= window.innerWidth`,
		`document.documentElement.scrollWidth + ' > ' + window.innerWidth`)
	if got := eval[string](t, bt.tab, `getComputedStyle(document.querySelector('#rows td')).display`); got != "flex" {
		t.Errorf("rows on a phone are laid out %q; want each worker as a block of labelled lines", got)
	}
	bt.tab.screenshot(t, "dashboard-phone-dark.png")
}

func (bt *btest) tcpLogin(t *testing.T) {
	tab := newTab(t, bt.tab.ctx, chromedp.WithNewBrowserContext())
	base := "http://" + bt.tcp
	tab.run(t, "opening the TCP address", chromedp.Navigate(base+"/ui/"))
	if got := eval[string](t, tab, `location.pathname`); got != "/ui/login" {
		t.Fatalf("without a session the page is at %s; want /ui/login", got)
	}
	for _, tt := range []struct{ token, want string }{{"wrong", "/ui/login"}, {"s3cret-dashboard", "/ui/"}} {
		tab.run(t, "typing the token", chromedp.SendKeys(chromedp.CSS("#token"), tt.token))
		tab.click(t, "button[type=submit]")
		tab.waitJS(t, "the answer to the login", 10*time.Second, fmt.Sprintf(`location.pathname === %q && document.readyState === 'complete' && (%q !== '/ui/login' || document.querySelector('#login-error') !== null)`, tt.want, tt.want), `location.pathname + " " + document.body.innerText`)
	}
	tab.waitJS(t, "the table of 3 workers", 10*time.Second, rows+`.length === 3`, showRows)
	cookies, err := chromedp.Call(tab.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(bt.tcp, ":")
	var found bool
	for _, c := range cookies.Cookies {
		if c.Name == "herd_session_"+port {
			found = true
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || !c.Session || strings.Contains(c.Value, "s3cret") {
				t.Errorf("session cookie %+v; want HttpOnly, SameSite=Strict, ending with the session, without the token", c)
			}
		}
	}
	if !found {
		t.Errorf("no session cookie among %d", len(cookies.Cookies))
	}
	for _, expr := range []string{`document.cookie`, `JSON.stringify(localStorage) + JSON.stringify(sessionStorage)`, `document.documentElement.outerHTML`} {
		if got := eval[string](t, tab, expr); strings.Contains(got, "s3cret") || strings.Contains(got, "herd_session") {
			t.Errorf("%s shows the token or the session: %.200q", expr, got)
		}
	}
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	if code := httpCode(t, hc, base, "GET", "/stats", "", "s3cret-dashboard"); code != 200 {
		t.Errorf("curl with the bearer token = %d; want 200", code)
	}
}

// TestDashboardCommand checks herd dashboard's own errors.
func TestDashboardCommand(t *testing.T) {
	isolate(t)
	missing := filepath.Join(t.TempDir(), "none.sock")
	wantFail(t, cli(t, "dashboard", "--control", missing, "--addr", "0.0.0.0:0"), 2, `"0.0.0.0" is not a loopback address`)
	wantFail(t, cli(t, "dashboard", "--control", missing, "--addr", "nope"), 2, "--addr: must be host:port")
	wantFail(t, cli(t, "dashboard", "--control", missing), 1, "no herd primary is running at "+missing)
	wantFail(t, cli(t, "dashboard", "extra"), 2, "unexpected argument")
}

// TestDashboardLink runs herd dashboard against a primary and follows its
// link with a plain HTTP client: it works once, and its session reaches
// the primary's API.
func TestDashboardLink(t *testing.T) {
	startFake(t, control.Config{Name: "app"}, controltest.New(2, 1, 4))
	link := startDashboard(t, []string{"XDG_RUNTIME_DIR=" + os.Getenv("XDG_RUNTIME_DIR")}, "--name", "app")
	if !strings.HasPrefix(link, "http://127.0.0.1:") || !strings.Contains(link, "/ui/login?token=") {
		t.Fatalf("link %q; want http://127.0.0.1:PORT/ui/login?token=…", link)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode != 303 || len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("the link = %d, cookies %v; want 303 and an HttpOnly, SameSite=Strict session cookie", resp.StatusCode, cookies)
	}
	base, _, _ := strings.Cut(link, "/ui/login")
	req, _ := http.NewRequest("GET", base+"/stats", nil)
	req.AddCookie(cookies[0])
	if resp, err = hc.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /stats with the session = %d; want 200", resp.StatusCode)
	}
	if resp, err = hc.Get(link); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("the link a second time = %d; want 401", resp.StatusCode)
	}
}
