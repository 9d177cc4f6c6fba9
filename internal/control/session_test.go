package control_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/control/controltest"
)

// browser is an HTTP client that keeps one cookie by hand and follows no
// redirect, so that a test sees every answer and every cookie flag.
type browser struct {
	t      *testing.T
	hc     *http.Client
	base   string
	cookie *http.Cookie
}

func newBrowser(t *testing.T, base string) *browser {
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(hc.CloseIdleConnections)
	return &browser{t: t, hc: hc, base: base}
}

// do sends a request with the cookie and the headers (name, value pairs),
// reads the answer and keeps a cookie it sets.
func (b *browser) do(method, path, body string, header ...string) answer {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base+path, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		b.cookie = c
	}
	return answer{resp.StatusCode, resp.Header, string(data)}
}

// checkCookie checks the flags of a session cookie.
func checkCookie(t *testing.T, c *http.Cookie, port string) {
	t.Helper()
	if c == nil {
		t.Fatal("no session cookie")
	}
	if c.Name != "herd_session_"+port || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Value == "" {
		t.Errorf("cookie %s; want herd_session_%s, HttpOnly, SameSite=Strict, Path=/", c, port)
	}
	if c.MaxAge != 0 || !c.Expires.IsZero() {
		t.Errorf("cookie %s has an expiry; want one that ends with the browser session", c)
	}
}

// TestTCPLogin checks the dashboard's login on the TCP address: refused
// without the token, a session cookie with it, CSRF on every change, and
// the bearer token working as before.
func TestTCPLogin(t *testing.T) {
	token := writeToken(t, "s3cret-token\n", 0o600)
	fake := controltest.New(2, 1, 4)
	s := serve(t, control.Config{Name: "a", TCPAddr: "127.0.0.1:0", TokenFile: token}, fake)
	addr := s.srv.Addrs()["tcp"].String()
	_, port, _ := strings.Cut(addr, ":")
	b := newBrowser(t, "http://"+addr)

	if a := b.do("GET", "/ui/", ""); a.code != 303 || a.header.Get("Location") != "/ui/login" {
		t.Errorf("GET /ui/ without a session = %d %s; want 303 to /ui/login", a.code, a.header.Get("Location"))
	}
	for _, p := range []string{"/stats", "/history", "/info", "/ui/session", "/ui/app.js", "/events"} {
		if a := b.do("GET", p, ""); a.code != 401 {
			t.Errorf("GET %s without a session = %d; want 401", p, a.code)
		}
	}
	if a := b.do("GET", "/ui/style.css", ""); a.code != 200 {
		t.Errorf("GET /ui/style.css (the login page's) = %d; want 200", a.code)
	}
	a := b.do("GET", "/ui/login", "")
	if a.code != 200 || !strings.Contains(a.body, `name="token"`) || strings.Contains(a.body, "s3cret") {
		t.Errorf("login page %d %q; want a form without the token", a.code, a.body)
	}
	form := "application/x-www-form-urlencoded"
	for _, wrong := range []string{"token=s3cret", "token=", "other=s3cret-token", "token=S3CRET-TOKEN"} {
		if a := b.do("POST", "/ui/login", wrong, "Content-Type", form); a.code != 401 || b.cookie != nil || !strings.Contains(a.body, "Wrong token") {
			t.Errorf("login with %q = %d, cookie %v; want 401 and none", wrong, a.code, b.cookie)
		}
	}
	if a := b.do("POST", "/ui/login", "token=s3cret-token", "Content-Type", form, "Origin", "http://evil.example"); a.code != 403 || b.cookie != nil {
		t.Errorf("login from another origin = %d; want 403", a.code)
	}
	a = b.do("POST", "/ui/login", "token="+url.QueryEscape("s3cret-token"), "Content-Type", form, "Origin", "http://"+addr)
	if a.code != 303 || a.header.Get("Location") != "/ui/" {
		t.Fatalf("login = %d %s; want 303 to /ui/", a.code, a.header.Get("Location"))
	}
	checkCookie(t, b.cookie, port)
	if strings.Contains(b.cookie.Value, "s3cret") {
		t.Error("the cookie holds the token")
	}

	page := b.do("GET", "/ui/", "")
	if page.code != 200 || !strings.Contains(page.body, "herd dashboard") || page.header.Get("Content-Security-Policy") == "" {
		t.Errorf("GET /ui/ with a session = %d, CSP %q", page.code, page.header.Get("Content-Security-Policy"))
	}
	if a := b.do("GET", "/stats", ""); a.code != 200 {
		t.Errorf("GET /stats with a session = %d", a.code)
	}
	sess := decode[struct{ CSRF, Auth string }](t, b.do("GET", "/ui/session", ""))
	if sess.CSRF == "" || sess.Auth != "session" || sess.CSRF == b.cookie.Value {
		t.Fatalf("session %+v; want a CSRF token of its own", sess)
	}

	body := `{"workers": 3}`
	for _, tt := range []struct {
		name   string
		header []string
		code   int
	}{
		{"no CSRF token", nil, 403},
		{"wrong CSRF token", []string{"X-CSRF-Token", "nope"}, 403},
		{"another origin", []string{"X-CSRF-Token", sess.CSRF, "Origin", "http://evil.example"}, 403},
		{"another site", []string{"X-CSRF-Token", sess.CSRF, "Sec-Fetch-Site", "cross-site"}, 403},
		{"same site, other origin", []string{"X-CSRF-Token", sess.CSRF, "Sec-Fetch-Site", "same-site"}, 403},
		{"right", []string{"X-CSRF-Token", sess.CSRF, "Origin", "http://" + addr, "Sec-Fetch-Site", "same-origin"}, 200},
	} {
		if a := b.do("POST", "/scale", body, tt.header...); a.code != tt.code {
			t.Errorf("%s: POST /scale = %d %s; want %d", tt.name, a.code, a.body, tt.code)
		}
	}
	if calls := fake.Calls(); len(calls) != 1 || calls[0] != "scale 3" {
		t.Errorf("calls %v; want only the one with the CSRF token", calls)
	}

	// curl and the herd client: the bearer token, no CSRF token.
	curl := newBrowser(t, "http://"+addr)
	if a := curl.do("POST", "/scale", `{"workers": 2}`, "Authorization", "Bearer s3cret-token"); a.code != 200 {
		t.Errorf("POST /scale with the bearer token = %d %s; want 200", a.code, a.body)
	}
	if a := curl.do("GET", "/stats", "", "Authorization", "Bearer wrong"); a.code != 401 {
		t.Errorf("GET /stats with a wrong bearer token = %d; want 401", a.code)
	}
	forged := newBrowser(t, "http://"+addr)
	forged.cookie = &http.Cookie{Name: b.cookie.Name, Value: "MADEUPSESSIONID"}
	if a := forged.do("GET", "/stats", ""); a.code != 401 {
		t.Errorf("GET /stats with a made-up session = %d; want 401", a.code)
	}

	old := *b.cookie
	if a := b.do("POST", "/ui/logout", "", "X-CSRF-Token", sess.CSRF); a.code != 204 || b.cookie.MaxAge >= 0 {
		t.Errorf("logout = %d, cookie %s; want 204 and the cookie removed", a.code, b.cookie)
	}
	b.cookie = &old
	if a := b.do("GET", "/stats", ""); a.code != 401 {
		t.Errorf("GET /stats after logout = %d; want 401", a.code)
	}
}

// TestUnixSocketPage checks that the unix socket serves the page as it is:
// no login, no CSRF token.
func TestUnixSocketPage(t *testing.T) {
	fake := controltest.New(1, 1, 2)
	s := serve(t, control.Config{Name: "u"}, fake)
	page := s.do(t, "GET", "/ui/", "")
	if page.code != 200 || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /ui/ = %d %s", page.code, page.header.Get("Content-Type"))
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy", "X-Content-Type-Options"} {
		if page.header.Get(h) == "" {
			t.Errorf("GET /ui/ lacks %s", h)
		}
	}
	if strings.Contains(page.body, "<script>") || strings.Contains(page.body, "http://") && !strings.Contains(page.body, "http://www.w3.org") {
		t.Error("the page has an inline script or loads something from elsewhere")
	}
	for p, ctype := range map[string]string{"/ui/app.js": "text/javascript", "/ui/style.css": "text/css", "/ui/favicon.svg": "image/svg+xml"} {
		a := s.do(t, "GET", p, "")
		if a.code != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), ctype) || a.header.Get("ETag") == "" {
			t.Errorf("GET %s = %d %q; want 200 %s with an ETag", p, a.code, a.header.Get("Content-Type"), ctype)
		}
	}
	if a := s.do(t, "GET", "/ui/login.html", ""); a.code != 404 {
		t.Errorf("GET /ui/login.html (a template) = %d; want 404", a.code)
	}
	if a := s.do(t, "GET", "/ui", ""); a.code != 200 {
		t.Errorf("GET /ui (redirected) = %d; want 200", a.code)
	}
	sess := decode[struct{ CSRF, Auth string }](t, s.do(t, "GET", "/ui/session", ""))
	if sess.CSRF != "" || sess.Auth != "none" {
		t.Errorf("session on the socket %+v; want none", sess)
	}
	if a := s.do(t, "POST", "/scale", `{"workers": 2}`); a.code != 200 {
		t.Errorf("POST /scale on the socket = %d; want 200 without any token", a.code)
	}
	if _, err := control.New(control.Config{Name: "x", Socket: control.Off, ECVPath: "/info"}, fake); err == nil {
		t.Error("ECV path /info accepted; want refused as an API path")
	}
}
