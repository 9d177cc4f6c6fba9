package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/herd-cluster/herd/internal/supervisor"
)

// pid is the primary's pid, reported by GET /stats.
var pid = os.Getpid()

// statusOf maps an error of the Cluster to an HTTP status.
func statusOf(err error) int {
	var re *supervisor.RangeError
	var se *supervisor.SlotError
	switch {
	case errors.As(err, &re):
		return http.StatusUnprocessableEntity
	case errors.As(err, &se):
		return http.StatusNotFound
	case errors.Is(err, supervisor.ErrRolloutInProgress):
		return http.StatusConflict
	case errors.Is(err, supervisor.ErrShutdown), errors.Is(err, supervisor.ErrNotRunning):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeClusterError answers with the error of a Cluster call.
func writeClusterError(w http.ResponseWriter, err error) {
	writeError(w, statusOf(err), err.Error())
}

// readBody reads the whole request body, up to maxBody bytes, within
// bodyTimeout. A body announced (Content-Length) or found to be larger is
// answered 413 at once, without reading the rest, and the connection is
// closed; ok is then false and nothing more must be written.
func readBody(w http.ResponseWriter, r *http.Request) (b []byte, ok bool) {
	tooLarge := func() {
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxBody))
	}
	if r.ContentLength > maxBody {
		tooLarge()
		return nil, false
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyTimeout))
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &mb):
		tooLarge()
		return nil, false
	case err != nil:
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
		return nil, false
	}
	return b, true
}

// noQuery refuses query parameters on endpoints that take none but keys.
func noQuery(w http.ResponseWriter, r *http.Request, allowed ...string) bool {
	for k := range r.URL.Query() {
		if !slices.Contains(allowed, k) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q", k))
			return false
		}
	}
	return true
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	st, err := s.c.Stats(r.Context())
	if err != nil {
		writeClusterError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.statsDoc(st, time.Now()))
}

// healthDoc is the body of GET /health.
type healthDoc struct {
	Status   string `json:"status"` // "ok" or "unhealthy"
	Reason   string `json:"reason,omitempty"`
	Active   int    `json:"active"`
	Disabled int    `json:"disabled"`
	Workers  int    `json:"workers"`
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	st, err := s.c.Stats(r.Context())
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, healthDoc{Status: "unhealthy", Reason: err.Error()})
		return
	}
	doc := healthDoc{Status: "ok", Active: st.Active, Disabled: st.Disabled, Workers: st.Workers}
	if reason := unhealthy(st); reason != "" {
		doc.Status, doc.Reason = "unhealthy", reason
		writeJSON(w, http.StatusServiceUnavailable, doc)
		return
	}
	writeJSON(w, http.StatusOK, doc)
}

// unhealthy says why st is unhealthy: no ACTIVE worker, or a DISABLED
// one. It returns "" for a healthy cluster.
func unhealthy(st supervisor.Stats) string {
	var disabled []string
	for _, w := range st.Slots {
		if w.Status == supervisor.StatusDisabled {
			disabled = append(disabled, fmt.Sprint(w.Slot))
		}
	}
	switch {
	case st.Active == 0:
		return "no worker is ACTIVE"
	case len(disabled) == 1:
		return "slot " + disabled[0] + " is DISABLED"
	case len(disabled) > 1:
		return "slots " + strings.Join(disabled, ", ") + " are DISABLED"
	}
	return ""
}

// statusDoc is the body of the answers that only say what happened.
type statusDoc struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

func (s *Server) handleRestart(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r, "wait") {
		return
	}
	wait, err := boolParam(r, "wait")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	b, ok := readBody(w, r)
	if !ok {
		return
	}
	slot, err := decodeRestart(bytes.NewReader(b))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	done, err := s.c.StartRestart(r.Context(), slot)
	if err != nil {
		writeClusterError(w, err)
		return
	}
	if !wait {
		writeJSON(w, http.StatusAccepted, statusDoc{Status: "started"})
		return
	}
	select {
	case err := <-done:
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, statusDoc{Status: "failed", Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, statusDoc{Status: "finished"})
	case <-r.Context().Done():
		// The client left, or the server stops; the rollout goes on.
	}
}

// boolParam reads an optional boolean query parameter: 1, true, 0, false
// or empty (true when present without a value).
func boolParam(r *http.Request, key string) (bool, error) {
	q := r.URL.Query()
	if !q.Has(key) {
		return false, nil
	}
	switch strings.ToLower(q.Get(key)) {
	case "", "1", "true", "yes":
		return true, nil
	case "0", "false", "no":
		return false, nil
	}
	return false, fmt.Errorf("%s=%q: want 1 or 0", key, q.Get(key))
}

// scaleDoc is the answer of POST /scale.
type scaleDoc struct {
	Workers int `json:"workers"`
}

func (s *Server) handleScale(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	b, ok := readBody(w, r)
	if !ok {
		return
	}
	n, err := decodeScale(bytes.NewReader(b))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.c.Scale(r.Context(), n); err != nil {
		writeClusterError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, scaleDoc{Workers: n})
}

// signalDoc is the answer of POST /signal.
type signalDoc struct {
	Status string `json:"status"`
	Signal string `json:"signal"`
	Slot   int    `json:"slot"`
}

func (s *Server) handleSignal(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	b, ok := readBody(w, r)
	if !ok {
		return
	}
	sig, slot, err := decodeSignal(bytes.NewReader(b))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.c.Signal(r.Context(), sig, slot); err != nil {
		writeClusterError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, signalDoc{Status: "sent", Signal: SignalName(sig), Slot: slot})
}

func (s *Server) handleStop(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	b, ok := readBody(w, r)
	if !ok {
		return
	}
	timeout, err := decodeStop(bytes.NewReader(b))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, statusDoc{Status: "stopping"})
	_ = http.NewResponseController(w).Flush()
	s.log.Info("stop requested through the control API", "timeout", timeout)
	s.c.Stop(timeout)
}
