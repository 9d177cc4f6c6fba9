package control

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Browser sessions. A browser cannot send the API's bearer token by
// itself, and must never see it: a listener that needs the token (the TCP
// address, and the loopback port of herd dashboard) gives a browser a
// session instead, once it logged in (with the bearer token in a form on
// TCP; with the one-time link herd dashboard prints). The session is a
// random id in an HttpOnly, SameSite=Strict cookie, which the page's
// scripts cannot read. Every request that changes something must also
// carry the session's CSRF token in the X-CSRF-Token header: only the
// dashboard's own page can read it (GET /ui/session), so another site, or
// another server on the same host (cookies do not tell ports apart), cannot
// make the browser act with the cookie.
const (
	// sessionIdle ends a session unused for this long.
	sessionIdle = 12 * time.Hour
	// maxSessions bounds the sessions kept; past it the one unused for the
	// longest is ended.
	maxSessions = 64
	// csrfHeader carries a session's CSRF token.
	csrfHeader = "X-CSRF-Token"
	// cookiePrefix names the session cookie, followed by the listener's
	// port: cookies are shared by every port of a host, and two herd
	// listeners on one host must not overwrite each other's.
	cookiePrefix = "herd_session_"
)

// session is one browser's login.
type session struct {
	csrf string
	used time.Time
}

// sessions are the browser sessions of one listener. The map is keyed by a
// hash of the cookie value, so that the lookup's timing says nothing about
// the ids held.
type sessions struct {
	now func() time.Time

	mu sync.Mutex
	m  map[[sha256.Size]byte]*session
}

func newSessions() *sessions {
	return &sessions{now: time.Now, m: make(map[[sha256.Size]byte]*session)}
}

// create starts a session and returns its cookie value and CSRF token.
func (ss *sessions) create() (id, csrf string) {
	id, csrf = rand.Text(), rand.Text()
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.expire(now)
	if len(ss.m) >= maxSessions {
		var oldest [sha256.Size]byte
		var at time.Time
		for k, s := range ss.m {
			if at.IsZero() || s.used.Before(at) {
				oldest, at = k, s.used
			}
		}
		delete(ss.m, oldest)
	}
	ss.m[sha256.Sum256([]byte(id))] = &session{csrf: csrf, used: now}
	return id, csrf
}

// expire ends the sessions idle for too long. The caller holds ss.mu.
func (ss *sessions) expire(now time.Time) {
	for k, s := range ss.m {
		if now.Sub(s.used) > sessionIdle {
			delete(ss.m, k)
		}
	}
}

// get returns the CSRF token of the session id and marks it used.
func (ss *sessions) get(id string) (csrf string, ok bool) {
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	k := sha256.Sum256([]byte(id))
	s := ss.m[k]
	switch {
	case s == nil:
		return "", false
	case now.Sub(s.used) > sessionIdle:
		delete(ss.m, k)
		return "", false
	}
	s.used = now
	return s.csrf, true
}

// end ends the session id.
func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, sha256.Sum256([]byte(id)))
}

// cookieName is the session cookie of the listener r arrived on.
func cookieName(r *http.Request) string {
	port := "0"
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, p, err := net.SplitHostPort(a.String()); err == nil {
			port = p
		}
	}
	return cookiePrefix + port
}

// fromRequest returns the session id r carries and its CSRF token.
func (ss *sessions) fromRequest(r *http.Request) (id, csrf string, ok bool) {
	c, err := r.Cookie(cookieName(r))
	if err != nil || c.Value == "" {
		return "", "", false
	}
	csrf, ok = ss.get(c.Value)
	return c.Value, csrf, ok
}

// setCookie gives the browser the session id: HttpOnly, SameSite=Strict,
// for the whole listener, Secure when the request came over TLS, and with
// no expiry, so that it ends with the browser session.
func setCookie(w http.ResponseWriter, r *http.Request, id string) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName(r), Value: id, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// clearCookie removes the session cookie from the browser.
func clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName(r), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// csrfOK reports whether a request of the session with token csrf may
// change something: it carries the token and does not come from another
// site or origin.
func csrfOK(r *http.Request, csrf string) bool {
	got := sha256.Sum256([]byte(r.Header.Get(csrfHeader)))
	want := sha256.Sum256([]byte(csrf))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || r.Header.Get(csrfHeader) == "" {
		return false
	}
	return sameOrigin(r)
}

// sameOrigin reports whether a browser's request comes from a page of the
// host it is sent to, by the headers browsers set on their own:
// Sec-Fetch-Site when it is there, else Origin. A request with neither
// (not from a browser) passes, and so does Origin "null", which browsers
// send for the page's own form posts under its no-referrer policy: the
// CSRF token is what protects the API.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// safeMethod reports whether method changes nothing.
func safeMethod(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// oneTime is the token of herd dashboard's login link: the first request
// that shows it gets a session, and it is spent.
type oneTime struct {
	mu    sync.Mutex
	sum   [sha256.Size]byte
	spent bool
}

func newOneTime(token string) *oneTime {
	return &oneTime{sum: sha256.Sum256([]byte(token))}
}

// spend reports whether token is the link's token, not yet spent, and
// spends it.
func (o *oneTime) spend(token string) bool {
	got := sha256.Sum256([]byte(token))
	o.mu.Lock()
	defer o.mu.Unlock()
	if subtle.ConstantTimeCompare(got[:], o.sum[:]) != 1 || token == "" || o.spent {
		return false
	}
	o.spent = true
	return true
}

// loopbackHost reports whether the Host header names this machine by a
// loopback address or "localhost": a page of another site whose name was
// made to resolve to 127.0.0.1 sends its own name, and is refused.
func loopbackHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
