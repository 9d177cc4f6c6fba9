package control_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/control/controltest"
)

// rawRequest writes req on a new connection to network addr and returns
// the status of the answer, read within 5 seconds (0 when none came), and
// the connection. The request is written aside: the server may answer, and
// close, before reading it all.
func rawRequest(t *testing.T, network, addr, req string) (int, net.Conn) {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		_, _ = io.WriteString(c, req)
	}()
	t.Cleanup(func() {
		c.Close()
		<-written
	})
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, c
	}
	resp.Body.Close()
	return resp.StatusCode, c
}

// closedByPeer reports whether the peer closes c within d: a read gets
// EOF or a reset rather than a timeout.
func closedByPeer(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

// TestBodyOverLimit checks that a body over the limit gets 413 whatever
// its content, and at once, before it is sent, when Content-Length says
// so.
func TestBodyOverLimit(t *testing.T) {
	fake := controltest.New(2, 1, 4)
	s := serve(t, control.Config{Name: "b"}, fake)
	const head = "POST /scale HTTP/1.1\r\nHost: herd\r\nContent-Type: application/json\r\n"

	// Only the headers: the answer must not wait for the 2 MB announced.
	code, c := rawRequest(t, "unix", s.socket, head+"Content-Length: 2000000\r\n\r\n")
	if code != http.StatusRequestEntityTooLarge {
		t.Errorf("announced 2 MB body: status %d; want 413 before the body is sent", code)
	}
	if !closedByPeer(c, 5*time.Second) {
		t.Error("the connection of a refused body stays open")
	}

	notJSON := strings.Repeat("x", 2<<20)
	for name, req := range map[string]string{
		"length":  head + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(notJSON)) + notJSON,
		"chunked": head + "Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(notJSON), notJSON),
	} {
		if code, _ := rawRequest(t, "unix", s.socket, req); code != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: 2 MiB body that is not JSON: status %d; want 413", name, code)
		}
	}
	if a := s.do(t, "POST", "/scale", `{"workers": 3}`); a.code != 200 {
		t.Errorf("a small body after them: %d %s", a.code, a.body)
	}
	if got := fake.Calls(); len(got) != 1 {
		t.Errorf("calls %q; want only the last scale", got)
	}
}

// TestConnLimit checks that connections over MaxConns are closed at once
// and that a place freed is taken again.
func TestConnLimit(t *testing.T) {
	s := serve(t, control.Config{Name: "l", MaxConns: 4}, controltest.New(1, 1, 1))
	var idle []net.Conn
	for range 4 {
		c, err := net.Dial("unix", s.socket)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	// Every idle connection is accepted before the next one is judged.
	code, _ := rawRequest(t, "unix", s.socket, "GET /health HTTP/1.1\r\nHost: herd\r\n\r\n")
	if code != 0 {
		t.Errorf("a fifth connection was served (%d); want it closed", code)
	}
	idle[0].Close()
	waitUntil(t, "a freed place to be taken", func() bool {
		code, c := rawRequest(t, "unix", s.socket, "GET /health HTTP/1.1\r\nHost: herd\r\n\r\n")
		c.Close()
		return code == 200
	})
	if !strings.Contains(s.log.String(), "too many connections") {
		t.Errorf("refusals not logged:\n%s", s.log.String())
	}
}

// TestUnauthenticatedConns checks that idle unauthenticated connections to
// the TCP API cannot lock an operator out: the oldest are closed to make
// room, a request with the token still succeeds, and an authenticated
// connection is not closed by later floods.
func TestUnauthenticatedConns(t *testing.T) {
	token := writeToken(t, "tok", 0o600)
	s := serve(t, control.Config{Name: "u", TCPAddr: "127.0.0.1:0", TokenFile: token, MaxConns: 8}, controltest.New(1, 1, 1))
	addr := s.srv.Addrs()["tcp"].String()
	const stats = "GET /stats HTTP/1.1\r\nHost: herd\r\nAuthorization: Bearer tok\r\n\r\n"
	code, operator := rawRequest(t, "tcp", addr, stats)
	if code != 200 {
		t.Fatalf("authenticated request: %d", code)
	}
	var flood []net.Conn
	for range 50 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		flood = append(flood, c)
	}
	if code, _ := rawRequest(t, "tcp", addr, stats); code != 200 {
		t.Errorf("authenticated request during the flood: %d; want 200", code)
	}
	// The operator's kept-alive connection was not closed.
	if _, err := io.WriteString(operator, stats); err != nil {
		t.Fatal(err)
	}
	_ = operator.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(operator), nil); err != nil || resp.StatusCode != 200 {
		t.Errorf("second request on the authenticated connection: %v %v", resp, err)
	}
	closed := 0
	for _, c := range flood {
		if closedByPeer(c, 10*time.Millisecond) {
			closed++
		}
	}
	if closed < len(flood)-2 {
		t.Errorf("%d of %d idle unauthenticated connections closed; want all but 2", closed, len(flood))
	}

	// A wrong token gets 401 and the connection closed.
	code, c := rawRequest(t, "tcp", addr, "GET /stats HTTP/1.1\r\nHost: herd\r\nAuthorization: Bearer nope\r\n\r\n")
	if closed := closedByPeer(c, 5*time.Second); code != 401 || !closed {
		t.Errorf("wrong token: %d, connection closed %v; want 401 and closed", code, closed)
	}
}

// TestIdleUnauthenticatedTimeout checks that a connection that sends
// nothing is closed once the header timeout passes.
func TestIdleUnauthenticatedTimeout(t *testing.T) {
	t.Parallel()
	token := writeToken(t, "tok", 0o600)
	s := serve(t, control.Config{Name: "i", TCPAddr: "127.0.0.1:0", TokenFile: token}, controltest.New(1, 1, 1))
	c, err := net.Dial("tcp", s.srv.Addrs()["tcp"].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !closedByPeer(c, 20*time.Second) {
		t.Error("an idle connection is still open after 20s")
	}
}

// TestStreamLimit checks that event streams past the limit are refused
// with 503 while the rest of the API answers.
func TestStreamLimit(t *testing.T) {
	s := serve(t, control.Config{Name: "s", MaxConns: 64}, controltest.New(1, 1, 1))
	var streams []*http.Response
	defer func() {
		for _, r := range streams {
			r.Body.Close()
		}
	}()
	for i := 0; ; i++ {
		resp, err := s.hc.Get("http://herd/events")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			resp.Body.Close()
			if i != 16 {
				t.Errorf("stream %d refused; want the 17th", i+1)
			}
			break
		}
		streams = append(streams, resp)
		if i > 100 {
			t.Fatal("no limit on streams")
		}
	}
	if a := s.do(t, "GET", "/health", ""); a.code != 200 {
		t.Errorf("GET /health with the streams full: %d", a.code)
	}
	streams[0].Body.Close()
	streams = streams[1:]
	waitUntil(t, "a stream place to be freed", func() bool {
		resp, err := s.hc.Get("http://herd/events")
		if err != nil || resp.StatusCode != 200 {
			if resp != nil {
				resp.Body.Close()
			}
			return false
		}
		streams = append(streams, resp)
		return true
	})
}
