package control

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// router dispatches on the exact path and then the method, answering
// unknown paths with 404 and wrong methods with 405 and Allow, both with a
// JSON error (http.ServeMux answers them in plain text).
type router map[string]map[string]http.HandlerFunc

func (rt router) handle(method, path string, h http.HandlerFunc) {
	if rt[path] == nil {
		rt[path] = map[string]http.HandlerFunc{}
	}
	rt[path][method] = h
}

// ServeHTTP implements http.Handler.
func (rt router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	methods, ok := rt[r.URL.Path]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s", r.URL.Path))
		return
	}
	h, ok := methods[r.Method]
	if !ok && r.Method == http.MethodHead {
		h, ok = methods[http.MethodGet]
	}
	if !ok {
		allow := make([]string, 0, len(methods))
		for m := range methods {
			allow = append(allow, m)
		}
		slices.Sort(allow)
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", ")))
		return
	}
	h(w, r)
}

// routes returns the API handler. With full it is the whole API;
// otherwise only what the ECV listener serves.
func (s *Server) routes(full bool) router {
	rt := router{}
	rt.handle(http.MethodGet, s.cfg.ECVPath, s.handleECV)
	if !full {
		return rt
	}
	rt.handle(http.MethodPost, s.cfg.ECVPath+"/enable", s.handleECVSet(true))
	rt.handle(http.MethodPost, s.cfg.ECVPath+"/disable", s.handleECVSet(false))
	rt.handle(http.MethodGet, "/stats", s.handleStats)
	rt.handle(http.MethodGet, "/health", s.handleHealth)
	rt.handle(http.MethodPost, "/restart", s.handleRestart)
	rt.handle(http.MethodPost, "/scale", s.handleScale)
	rt.handle(http.MethodPost, "/signal", s.handleSignal)
	rt.handle(http.MethodPost, "/stop", s.handleStop)
	rt.handle(http.MethodGet, "/events", s.handleEvents)
	rt.handle(http.MethodGet, "/logs", s.handleLogs)
	rt.handle(http.MethodGet, "/metrics", s.handleMetrics)
	s.routesUI(rt)
	return rt
}

// ecvOnly is the handler of the ECV listener: GET ECVPath and nothing else.
func (s *Server) ecvOnly() http.Handler { return s.routes(false) }

// metricsOnly is the handler of the metrics listener: GET /metrics.
func (s *Server) metricsOnly() http.Handler {
	rt := router{}
	rt.handle(http.MethodGet, "/metrics", s.handleMetrics)
	return rt
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Metrics == nil {
		writeError(w, http.StatusNotFound, "metrics are not enabled")
		return
	}
	s.cfg.Metrics.ServeHTTP(w, r)
}

// errorBody is the body of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

// writeJSON answers code with v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers code with {"error": msg}.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}
