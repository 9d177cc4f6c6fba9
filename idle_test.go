package herd_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/herd-cluster/herd"
)

// TestIdleTimeout: a connection idle for longer than IdleTimeout is closed;
// one that keeps talking is not.
func TestIdleTimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- herd.Run(ctx, herd.Config{SingleProcess: true, Listen: []string{"127.0.0.1:0"},
			IdleTimeout: 300 * time.Millisecond, Logger: discardLogger()},
			func(ctx context.Context, w *herd.Worker) error {
				l, err := w.Listener("")
				if err != nil {
					return err
				}
				addrs <- l.Addr().String()
				return w.ServeHTTP(ctx, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
					fmt.Fprint(rw, "ok")
				}))
			})
	}()
	addr := <-addrs
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	closed := make(chan time.Time, 1)
	start := time.Now()
	go func() {
		idle.Read(make([]byte, 1)) // returns when the server closes it
		closed <- time.Now()
	}()
	br := bufio.NewReader(busy)
	deadline := time.After(waitLimit)
	for {
		select {
		case at := <-closed:
			// The server accepted a little before Dial returned here.
			if d := at.Sub(start); d < 250*time.Millisecond {
				t.Errorf("idle connection closed after %s; want about the 300ms timeout", d)
			}
			// The busy one, used all along, must still work.
			if err := request(busy, br); err != nil {
				t.Errorf("busy connection after the idle one was closed: %v", err)
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
			return
		case <-time.After(50 * time.Millisecond): // the pace of the busy client
			if err := request(busy, br); err != nil {
				t.Fatalf("busy connection: %v", err)
			}
		case <-deadline:
			t.Fatal("the idle connection was never closed")
		}
	}
}

func request(c net.Conn, br *bufio.Reader) error {
	if _, err := fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err
}
