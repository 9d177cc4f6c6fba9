package herd_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-cluster/herd"
)

// connLoad sends requests from conns goroutines until stopped, each on a
// new connection that the server closes, and counts every request that
// did not get its answer. Nothing is retried: a connection reset while it
// waited in an accept queue is a failure.
type connLoad struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	firstErr   error
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startConnLoad(addr string, conns int) *connLoad {
	l := &connLoad{stop: make(chan struct{})}
	for range conns {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				if err := oneRequest(addr); err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if l.firstErr == nil {
						l.firstErr = err
					}
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
			}
		})
	}
	return l
}

// oneRequest sends GET / on a new connection and reads the whole answer.
func oneRequest(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: herd\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

func (l *connLoad) finish() (ok, failed int64, first error) {
	close(l.stop)
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load(), l.firstErr
}

// TestScaleUnderLoad scales 4 workers down to 2 and back, again and again,
// under a load that opens a new connection for every request: in either
// balance mode no request may fail. With reuseport, the removed slots'
// sockets must get no new connection and have their queues served before
// they are closed.
func TestScaleUnderLoad(t *testing.T) {
	for _, balance := range []herd.Balance{herd.BalanceShared, herd.BalanceReusePort} {
		t.Run(string(balance), func(t *testing.T) {
			tc := startCluster(t, herd.Config{
				Workers: 4, MaxWorkers: 4, Listen: []string{"127.0.0.1:0"}, Balance: balance,
			}, "", "http")
			tc.ev.waitN(t, 0, 4, "ready", is(herd.EventReady))
			addr := fmt.Sprintf("127.0.0.1:%d", tc.stats(t).Slots[0].Port)
			l := startConnLoad(addr, 8)
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			const rounds = 5
			for range rounds {
				from := tc.ev.mark()
				if err := tc.Scale(ctx, 2); err != nil {
					t.Fatalf("Scale(2): %v", err)
				}
				tc.ev.waitN(t, from, 2, "exited", is(herd.EventExited))
				from = tc.ev.mark()
				if err := tc.Scale(ctx, 4); err != nil {
					t.Fatalf("Scale(4): %v", err)
				}
				tc.ev.waitN(t, from, 2, "ready", is(herd.EventReady))
			}
			ok, failed, first := l.finish()
			t.Logf("%s: %d requests on new connections, %d failed, over %d scale-downs", balance, ok+failed, failed, rounds)
			if failed != 0 {
				t.Errorf("%d of %d requests failed during %d scale-downs; want 0 (first: %v)", failed, ok+failed, rounds, first)
			}
			if ok == 0 {
				t.Fatal("no request succeeded")
			}
			crashes := tc.ev.count(0, func(e herd.Event) bool { return e.Type == herd.EventExited && e.Crash })
			if crashes != 0 {
				t.Errorf("%d workers crashed; want 0", crashes)
			}
		})
	}
}
