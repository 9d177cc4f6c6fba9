package control

import (
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
)

// Dashboard serves the dashboard and the API of the primary at a Target to
// a browser on this machine, as herd dashboard does on a loopback port: it
// forwards every request to the primary's socket (or TCP address, adding
// the bearer token the browser never sees). A browser gets in once, with
// the one-time link LoginURL gives, which it exchanges for a session; the
// session's changes need its CSRF token (see sessions). Requests whose
// Host is not a loopback name are refused, so that a page of another site
// whose name was made to resolve to 127.0.0.1 cannot use it.
type Dashboard struct {
	gate   *gate
	token  string
	client *Client
}

// NewDashboard returns the dashboard of the primary at t.
func NewDashboard(t Target) (*Dashboard, error) {
	c, err := NewClient(t)
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(c.base)
	if err != nil {
		return nil, errors.New("control: bad primary address")
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(base)
			pr.Out.Host = base.Host
			h := pr.Out.Header
			h.Del("Cookie") // the session is the proxy's, not the primary's
			h.Del("Authorization")
			h.Del(csrfHeader)
			if t.Socket == "" && len(t.Token) > 0 {
				h.Set("Authorization", "Bearer "+string(t.Token))
			}
		},
		Transport:     c.hc.Transport,
		FlushInterval: -1, // streams (events, logs) go through as they come
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Del("Set-Cookie")
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, http.StatusBadGateway, "no herd primary answers at "+t.String()+": "+err.Error())
		},
	}
	token := rand.Text()
	return &Dashboard{
		gate:   &gate{sessions: newSessions(), link: newOneTime(token), loopbackOnly: true, next: rp},
		token:  token,
		client: c,
	}, nil
}

// ServeHTTP implements http.Handler.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) { d.gate.ServeHTTP(w, r) }

// LoginURL returns the one-time link of the dashboard served at base
// (such as http://127.0.0.1:8080): the first browser to open it gets a
// session, and it is then spent.
func (d *Dashboard) LoginURL(base string) string {
	return base + loginPath + "?token=" + url.QueryEscape(d.token)
}

// Close releases the idle connections to the primary.
func (d *Dashboard) Close() { d.client.Close() }
