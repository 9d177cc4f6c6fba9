package control

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// The dashboard: a page served at /ui/ from files embedded in the binary
// (plain HTML, CSS and JavaScript, no build step, nothing fetched from
// elsewhere), which draws the cluster from the API: GET /stats, /history
// and /info, the /events and /logs streams, and the API's POSTs for its
// actions. On the unix socket it is served as it is; the TCP address and
// herd dashboard put it behind a login (see gate).

//go:embed ui
var uiFiles embed.FS

// pageTemplates are the login and link pages the gate serves.
var pageTemplates = template.Must(template.ParseFS(uiFiles, "ui/login.html", "ui/link.html"))

// The templates of pageTemplates.
const (
	loginPage = "login.html"
	linkPage  = "link.html"
)

// pageData fills a page template.
type pageData struct {
	Error string
}

// contentSecurityPolicy lets the page load only its own files and talk
// only to its own origin; no inline script, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// pageHeaders sets the headers of every dashboard file: the policy above,
// no referrer (a login link never leaks), no sniffing, no framing.
func pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
}

// writePage answers code with the page template name.
func writePage(w http.ResponseWriter, code int, name string, data pageData) {
	var b bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&b, name, data); err != nil {
		writeError(w, http.StatusInternalServerError, "rendering the page failed")
		return
	}
	h := w.Header()
	pageHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

// asset is one embedded file, read once.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// uiAssets maps the URL paths of the dashboard's files to them: /ui/ is
// index.html; the templates are not served as files.
var uiAssets = sync.OnceValue(func() map[string]asset {
	m := map[string]asset{}
	_ = fs.WalkDir(uiFiles, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == "ui/"+loginPage || p == "ui/"+linkPage {
			return err
		}
		b, err := uiFiles.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		a := asset{body: b, ctype: mime.TypeByExtension(path.Ext(p)), etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		if strings.HasSuffix(p, ".js") {
			a.ctype = "text/javascript; charset=utf-8" // whatever the host's mime.types says
		}
		url := "/" + p
		if p == "ui/index.html" {
			url = uiPath
		}
		m[url] = a
		return nil
	})
	return m
})

// serveAsset serves one embedded file, revalidated by its ETag.
func serveAsset(a asset) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		pageHeaders(h)
		h.Set("Content-Type", a.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	}
}

// routesUI adds the dashboard's files and the endpoints only it needs.
func (s *Server) routesUI(rt router) {
	for p, a := range uiAssets() {
		rt.handle(http.MethodGet, p, serveAsset(a))
	}
	rt.handle(http.MethodGet, "/ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, uiPath, http.StatusMovedPermanently)
	})
	// Behind a login the gate answers this; here (the unix socket, or a
	// client with the bearer token) no CSRF token is needed.
	rt.handle(http.MethodGet, sessionPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, sessionDoc{Auth: "none"})
	})
	rt.handle(http.MethodGet, "/history", s.handleHistory)
	rt.handle(http.MethodGet, "/info", s.handleInfo)
}

// dashboard is what the dashboard adds to a Server: the usage history and
// its sampler, the browser sessions of the TCP address, and the build
// information of the workers' program.
type dashboard struct {
	hist     *history
	sessions *sessions
	builds   builds
}

func newDashboard(cfg Config, c Cluster) *dashboard {
	return &dashboard{hist: newHistory(c, cfg.HistoryInterval), sessions: newSessions()}
}

// tcpGate is the handler of the TCP address: the API with the bearer
// token, and the dashboard behind a login with it.
func (s *Server) tcpGate() http.Handler {
	return &gate{sessions: s.ui.sessions, bearer: s.cfg.Token, next: s.api}
}
