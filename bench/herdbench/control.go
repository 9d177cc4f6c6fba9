package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// unixClient returns an HTTP client whose every request goes to the unix
// socket at path (herd's control API), keeping up to conns connections.
func unixClient(path string, conns int) *http.Client {
	d := net.Dialer{Timeout: 2 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", path)
			},
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			DisableCompression:  true,
		},
	}
}

// ctlGet makes one GET of path on the control socket and reads the whole
// body; it fails on a status other than 200.
func ctlGet(ctx context.Context, c *http.Client, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://herd"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return b, nil
}

// sseEvent is one event a GET /events client received.
type sseEvent struct {
	Type string    `json:"type"`
	Slot int       `json:"slot"`
	PID  int       `json:"pid"`
	At   time.Time `json:"-"` // when the client read it
	// Dropped is set on herd's "dropped" notice.
	Dropped uint64 `json:"dropped"`
}

// sseClient is one GET /events stream, read to its end by a goroutine of
// its own.
type sseClient struct {
	mu         sync.Mutex
	evs        []sseEvent
	subscribed chan struct{} // closed at ": subscribed"
	done       chan struct{} // closed when the stream ends
	err        error
	resp       *http.Response
}

// openSSE opens GET /events on the control socket at path with a
// connection of its own; cancel ctx to end it.
func openSSE(ctx context.Context, path string) (*sseClient, error) {
	c := unixClient(path, 1)
	c.Timeout = 0 // a stream
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://herd/events", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET /events: %s", resp.Status)
	}
	s := &sseClient{subscribed: make(chan struct{}), done: make(chan struct{}), resp: resp}
	go s.read()
	return s, nil
}

func (s *sseClient) read() {
	defer close(s.done)
	defer s.resp.Body.Close()
	sc := bufio.NewScanner(s.resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sub := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !sub && strings.HasPrefix(line, ": subscribed"):
			sub = true
			close(s.subscribed)
		case strings.HasPrefix(line, "data: "):
			at := time.Now()
			var e sseEvent
			if err := json.Unmarshal([]byte(line[len("data: "):]), &e); err != nil {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
				continue
			}
			e.At = at
			s.mu.Lock()
			s.evs = append(s.evs, e)
			s.mu.Unlock()
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, context.Canceled) {
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
	}
}

// events returns what the client has received so far.
func (s *sseClient) events() []sseEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sseEvent(nil), s.evs...)
}

// find returns the first received event that match accepts.
func (s *sseClient) find(match func(sseEvent) bool) (sseEvent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.evs {
		if match(e) {
			return e, true
		}
	}
	return sseEvent{}, false
}
