package control

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ecv is the node's load-balancer rotation state (cluster2's "extended
// content verification"): enabled by operators, healthy by the monitor.
type ecv struct {
	ip, hostname string
	port         int
	url          string // probed by the monitor; "" for none

	enabled atomic.Bool

	mu      sync.Mutex
	healthy bool
	reason  string
}

func newECV(port int, monitorURL string) *ecv {
	host, _ := os.Hostname()
	e := &ecv{ip: firstIPv4(), hostname: host, port: port, url: monitorURL, healthy: monitorURL == ""}
	if monitorURL != "" {
		e.reason = "the ecv monitor has not probed " + monitorURL + " yet"
	}
	e.enabled.Store(true)
	return e
}

func (e *ecv) state() (enabled, healthy bool, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.enabled.Load(), e.healthy, e.reason
}

func (e *ecv) setHealth(healthy bool, reason string) {
	e.mu.Lock()
	e.healthy, e.reason = healthy, reason
	e.mu.Unlock()
}

// firstIPv4 returns the first non-loopback IPv4 address of this host, or
// 127.0.0.1.
func firstIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// body returns the ECV answer body for a node serving traffic or not.
func (e *ecv) body(serve bool, reason string, now time.Time) string {
	var b strings.Builder
	if serve {
		b.WriteString("status=AVAILABLE&ServeTraffic=true")
	} else {
		b.WriteString("status=DISABLED&ServeTraffic=false")
	}
	fmt.Fprintf(&b, "&ip=%s&hostname=%s&port=%d&time=%s", e.ip, e.hostname, e.port, now.UTC().Format(http.TimeFormat))
	if reason != "" {
		b.WriteString("&reason=" + url.QueryEscape(reason))
	}
	return b.String()
}

// handleECV answers the load balancer: 200 while enabled, healthy and at
// least one worker is ACTIVE, 400 otherwise.
func (s *Server) handleECV(w http.ResponseWriter, r *http.Request) {
	enabled, healthy, reason := s.ecv.state()
	switch {
	case !enabled:
		reason = "disabled by an operator"
	case healthy:
		st, err := s.c.Stats(r.Context())
		switch {
		case err != nil:
			healthy, reason = false, err.Error()
		case st.Active == 0:
			healthy, reason = false, "no worker is ACTIVE"
		}
	}
	s.ecv.write(w, enabled && healthy, reason)
}

// write answers an ECV probe: 200 and status=AVAILABLE when serve, 400
// and status=DISABLED otherwise, never cached.
func (e *ecv) write(w http.ResponseWriter, serve bool, reason string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	code := http.StatusOK
	if !serve {
		code = http.StatusBadRequest
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, e.body(serve, reason, time.Now()))
}

var (
	hostOnce         sync.Once
	hostIP, hostName string
)

// WriteECV answers a load balancer's ECV probe for an app on port exactly
// as GET /ecv on the control listener does. The library's worker-side ECV
// handler uses it.
func WriteECV(w http.ResponseWriter, serve bool, port int, reason string) {
	hostOnce.Do(func() { hostIP, hostName = firstIPv4(), hostnameOrEmpty() })
	e := &ecv{ip: hostIP, hostname: hostName, port: port}
	e.write(w, serve, reason)
}

func hostnameOrEmpty() string {
	h, _ := os.Hostname()
	return h
}

// handleECVSet returns the handler of POST ECVPath/enable or /disable.
func (s *Server) handleECVSet(enable bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !noQuery(w, r) {
			return
		}
		if s.cfg.ECVReadOnly {
			writeError(w, http.StatusForbidden, "the ecv is read-only here (--ecv-read-only)")
			return
		}
		b, ok := readBody(w, r)
		if !ok {
			return
		}
		if err := decodeOptional(bytes.NewReader(b), &struct{}{}); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		if was := s.ecv.enabled.Swap(enable); was != enable {
			s.log.Info("ecv changed through the control API", "enabled", enable)
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// monitor probes the monitor URL at once and then every interval until
// ctx is done, recording the outcome.
func (e *ecv) monitor(ctx context.Context, interval, timeout time.Duration) {
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: timeout}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		e.setHealth(probe(ctx, client, e.url))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe GETs u and reports whether it answered 2xx or 3xx, and if not why.
func probe(ctx context.Context, client *http.Client, u string) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "herd-ecv-monitor")
	resp, err := client.Do(req)
	if err != nil {
		return false, "GET " + u + ": " + err.Error()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return false, "GET " + u + ": status " + strconv.Itoa(resp.StatusCode)
	}
	return true, ""
}
