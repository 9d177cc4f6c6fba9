package control

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Paths the gate answers itself.
const (
	uiPath      = "/ui/"
	loginPath   = "/ui/login"
	logoutPath  = "/ui/logout"
	sessionPath = "/ui/session"
	// maxLoginBody bounds the login form.
	maxLoginBody = 4 << 10
)

// publicPaths are served without a session: what the login page needs.
var publicPaths = map[string]bool{"/ui/style.css": true, "/ui/favicon.svg": true}

// gate admits to next the requests of browsers with a session (see
// sessions), and on the TCP address also every request that carries the
// bearer token, as before: curl and the herd client are not affected.
// It serves the login itself. Exactly one of bearer and link is set.
type gate struct {
	sessions *sessions
	// bearer is the API's token (TCP): requests carrying it pass, and the
	// login form takes it.
	bearer []byte
	// link is the one-time token of herd dashboard's login link.
	link *oneTime
	// loopbackOnly refuses requests whose Host is not a loopback name.
	loopbackOnly bool
	next         http.Handler
}

// ServeHTTP implements http.Handler.
func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.loopbackOnly && !loopbackHost(r.Host) {
		writeError(w, http.StatusForbidden, "the dashboard answers only to a loopback host name such as 127.0.0.1")
		return
	}
	switch r.URL.Path {
	case loginPath:
		g.login(w, r)
		return
	case logoutPath:
		g.logout(w, r)
		return
	}
	if g.bearer != nil && r.Header.Get("Authorization") != "" {
		requireToken(g.bearer, g.next).ServeHTTP(w, r)
		return
	}
	_, csrf, ok := g.sessions.fromRequest(r)
	switch {
	case !ok && safeMethod(r.Method) && publicPaths[r.URL.Path]:
	case !ok:
		g.refuse(w, r)
		return
	case r.URL.Path == sessionPath:
		writeJSON(w, http.StatusOK, sessionDoc{CSRF: csrf, Auth: "session"})
		return
	case !safeMethod(r.Method) && !csrfOK(r, csrf):
		writeError(w, http.StatusForbidden, "missing or wrong CSRF token (X-CSRF-Token): reload the dashboard")
		return
	}
	g.next.ServeHTTP(w, r)
}

// sessionDoc is the answer of GET /ui/session: the CSRF token the page
// sends with every change, and how the page is authenticated ("session"
// behind a login, "none" on the unix socket, which needs neither).
type sessionDoc struct {
	CSRF string `json:"csrf"`
	Auth string `json:"auth"`
}

// refuse answers a request without a session: a page is sent to the
// login (TCP) or told to use herd dashboard's link; the API answers 401.
func (g *gate) refuse(w http.ResponseWriter, r *http.Request) {
	page := r.Method == http.MethodGet && (r.URL.Path == "/ui" || r.URL.Path == uiPath)
	switch {
	case page && g.bearer != nil:
		http.Redirect(w, r, loginPath, http.StatusSeeOther)
	case page:
		writePage(w, http.StatusUnauthorized, linkPage, pageData{Error: "This page needs the link herd dashboard printed."})
	case g.bearer != nil:
		requireToken(g.bearer, g.next).ServeHTTP(w, r) // the API's own 401
	default:
		writeError(w, http.StatusUnauthorized, "no dashboard session: open the link herd dashboard printed")
	}
}

// login serves /ui/login: with a session already, the page; behind herd
// dashboard, GET ?token= spends the one-time link; on TCP, GET shows the
// form and POST checks the token it sends.
func (g *gate) login(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := g.sessions.fromRequest(r); ok && safeMethod(r.Method) {
		http.Redirect(w, r, uiPath, http.StatusSeeOther)
		return
	}
	switch {
	case g.link != nil && r.Method == http.MethodGet:
		if !g.link.spend(r.URL.Query().Get("token")) {
			writePage(w, http.StatusUnauthorized, linkPage, pageData{
				Error: "This link is not valid or was used already: each link herd dashboard prints works once."})
			return
		}
		g.startSession(w, r)
	case g.bearer != nil && r.Method == http.MethodGet:
		writePage(w, http.StatusOK, loginPage, pageData{})
	case g.bearer != nil && r.Method == http.MethodPost:
		g.checkLogin(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, r.Method+" "+loginPath+": method not allowed")
	}
}

// checkLogin starts a session for a login form carrying the bearer token.
func (g *gate) checkLogin(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "login from another site refused")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err != nil {
		writePage(w, http.StatusBadRequest, loginPage, pageData{Error: "The login form could not be read."})
		return
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(r.PostForm.Get("token"))))
	want := sha256.Sum256(g.bearer)
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		writePage(w, http.StatusUnauthorized, loginPage, pageData{Error: "Wrong token."})
		return
	}
	g.startSession(w, r)
}

// startSession gives the browser a new session and sends it to the page.
func (g *gate) startSession(w http.ResponseWriter, r *http.Request) {
	id, _ := g.sessions.create()
	setCookie(w, r, id)
	pageHeaders(w.Header())
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, uiPath, http.StatusSeeOther)
}

// logout ends the session of a POST carrying its CSRF token.
func (g *gate) logout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, r.Method+" "+logoutPath+": method not allowed")
		return
	}
	id, csrf, ok := g.sessions.fromRequest(r)
	switch {
	case !ok:
		writeError(w, http.StatusUnauthorized, "no session")
		return
	case !csrfOK(r, csrf):
		writeError(w, http.StatusForbidden, "missing or wrong CSRF token (X-CSRF-Token)")
		return
	}
	g.sessions.end(id)
	clearCookie(w, r)
	w.WriteHeader(http.StatusNoContent)
}
