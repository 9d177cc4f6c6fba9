package herd_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-cluster/herd"
)

// load sends requests from conns keep-alive clients until stopped, and
// counts what failed. It sends POST: Go's client retries a GET that met a
// closing connection, which would hide exactly the failures looked for.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	firstErr   error
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(url string, conns int) *load {
	l := &load{stop: make(chan struct{})}
	for range conns {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
			defer client.CloseIdleConnections()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				l.one(client, url)
			}
		}()
	}
	return l
}

func (l *load) one(client *http.Client, url string) {
	resp, err := client.Post(url, "text/plain", nil)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %s", resp.Status)
		}
	}
	if err != nil {
		l.failed.Add(1)
		l.mu.Lock()
		if l.firstErr == nil {
			l.firstErr = err
		}
		l.mu.Unlock()
		return
	}
	l.ok.Add(1)
}

func (l *load) finish() (ok, failed int64, first error) {
	close(l.stop)
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load(), l.firstErr
}

// TestRollingRestartUnderLoad: rollouts under constant load fail no request,
// and every slot ends on a new generation.
func TestRollingRestartUnderLoad(t *testing.T) {
	for _, balance := range []herd.Balance{herd.BalanceShared, herd.BalanceReusePort} {
		t.Run(string(balance), func(t *testing.T) {
			tc := startCluster(t, herd.Config{
				Workers: 2, Listen: []string{"127.0.0.1:0"}, Balance: balance, MaxSurge: 1,
			}, "", "http")
			tc.ev.waitN(t, 0, 2, "ready", is(herd.EventReady))
			url := fmt.Sprintf("http://127.0.0.1:%d/", tc.stats(t).Slots[0].Port)
			l := startLoad(url, 8)
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			const rollouts = 3
			for range rollouts {
				if err := tc.Restart(ctx); err != nil {
					t.Fatalf("Restart: %v", err)
				}
			}
			ok, failed, first := l.finish()
			if failed != 0 {
				t.Errorf("%d of %d requests failed during %d rollouts; want 0 (first: %v)", failed, ok+failed, rollouts, first)
			}
			if ok == 0 {
				t.Fatal("no request succeeded")
			}
			for _, w := range tc.stats(t).Slots {
				if w.Gen != rollouts+1 || w.Status != herd.StatusActive {
					t.Errorf("slot %d: generation %d status %s; want %d ACTIVE", w.Slot, w.Gen, w.Status, rollouts+1)
				}
			}
			t.Logf("%d requests, %d failed, over %d rollouts", ok+failed, failed, rollouts)
		})
	}
}

// TestRolloutFailureKeepsOldWorkers: a new version that cannot start stops
// the rollout; the old workers keep serving.
func TestRolloutFailureKeepsOldWorkers(t *testing.T) {
	tc := startCluster(t, herd.Config{
		Workers: 3, Listen: []string{"127.0.0.1:0"}, MaxCrashes: 10, RespawnDelay: time.Millisecond,
	}, "", "fail-gen2")
	ready := tc.ev.waitN(t, 0, 3, "ready", is(herd.EventReady))
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	err := tc.Restart(ctx)
	if err == nil || !strings.Contains(err.Error(), "before it was ready") {
		t.Fatalf("Restart = %v; want the failure of the new worker", err)
	}
	tc.ev.waitN(t, 0, 1, "rollout_failed", is(herd.EventRolloutFailed))
	if n := tc.ev.count(0, func(e herd.Event) bool { return e.Type == herd.EventStarted && e.Gen == 2 }); n != 1 {
		t.Errorf("%d new workers started; want 1: the rollout stops at the first failure", n)
	}
	st := tc.stats(t)
	for i, w := range st.Slots {
		if w.PID != ready[i].PID && w.PID != pidOfSlot(ready, w.Slot) {
			t.Errorf("slot %d now pid %d; want its old worker still serving", w.Slot, w.PID)
		}
		if w.Status != herd.StatusActive {
			t.Errorf("slot %d status %s; want ACTIVE", w.Slot, w.Status)
		}
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", st.Slots[0].Port)
	if body, err := get(ctx, url); err != nil || !strings.HasSuffix(strings.TrimSpace(body), " 1") {
		t.Errorf("GET = %q, %v; want an answer from a generation-1 worker", body, err)
	}
}

func pidOfSlot(evs []herd.Event, slot int) int {
	for _, e := range evs {
		if e.Slot == slot {
			return e.PID
		}
	}
	return 0
}

// TestWorkerOutput: worker lines reach the primary's output prefixed with
// the slot, and a primary output nobody reads never blocks a worker.
func TestWorkerOutput(t *testing.T) {
	t.Run("prefixed", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		t.Cleanup(func() { w.Close() }) // after the cluster stopped
		tc := startCluster(t, herd.Config{Workers: 1, Ready: herd.ReadyDelay, ReadyDelay: 10 * time.Millisecond, Stdout: w}, "chatty", "")
		sc := bufio.NewScanner(r)
		if !sc.Scan() {
			t.Fatalf("no output: %v", sc.Err())
		}
		if got, want := sc.Text()[:11], "[0] line 0 "; got != want {
			t.Errorf("first output line starts %q; want %q", got, want)
		}
		tc.ev.waitN(t, 0, 1, "ready", is(herd.EventReady))
		go io.Copy(io.Discard, r) // let the rest flow
	})
	t.Run("never-blocks", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		// Nobody reads r: a write to w blocks once the pipe is full. The
		// worker writes 10 MB and must still finish.
		tc := startCluster(t, herd.Config{Workers: 1, Ready: herd.ReadyDelay, ReadyDelay: 10 * time.Millisecond, Stdout: w}, "chatty", "")
		started := tc.ev.waitN(t, 0, 1, "started", is(herd.EventStarted))[0]
		waitFor(t, "the worker to finish writing", func() bool {
			for _, m := range tc.reports(t) {
				if int(m["pid"].(float64)) == started.PID && m["done"] == true {
					return true
				}
			}
			return false
		})
		go io.Copy(io.Discard, r) // unblock the sink so the cluster can stop
	})
}

// TestSingleProcess runs the work in this very process.
func TestSingleProcess(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- herd.Run(ctx, herd.Config{SingleProcess: true, Listen: []string{"127.0.0.1:0"}, Logger: discardLogger(), Control: "-"},
			func(ctx context.Context, w *herd.Worker) error {
				l, err := w.Listener("")
				if err != nil {
					return err
				}
				served <- l.Addr().String()
				return w.ServeHTTP(ctx, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
					fmt.Fprintf(rw, "%d", os.Getpid())
				}))
			})
	}()
	var addr string
	select {
	case addr = <-served:
	case err := <-done:
		t.Fatalf("Run = %v before serving", err)
	}
	body, err := get(ctx, "http://"+addr+"/")
	if err != nil || body != fmt.Sprint(os.Getpid()) {
		t.Errorf("GET = %q, %v; want this process's pid %d", body, err, os.Getpid())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v after cancel; want nil", err)
	}
}

// TestServeStopsCleanly stops ServeHTTP right after it starts serving, many
// times: its return must be nil every time. Closing the worker's listeners
// before the server's Shutdown closes them again once raced the server's
// own bookkeeping and surfaced "use of closed network connection", and a Go
// worker then exited 1 in a rolling restart.
func TestServeStopsCleanly(t *testing.T) {
	for i := range 40 {
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan string, 1)
		done := make(chan error, 1)
		go func() {
			done <- herd.Run(ctx, herd.Config{SingleProcess: true, Listen: []string{"127.0.0.1:0"}, Logger: discardLogger(), Control: "-"},
				func(ctx context.Context, w *herd.Worker) error {
					l, err := w.Listener("")
					if err != nil {
						return err
					}
					served <- l.Addr().String()
					return w.ServeHTTP(ctx, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
				})
		}()
		select {
		case addr := <-served:
			// Once a request is answered the server is accepting; the
			// connection is closed so that the drain has nothing to wait for.
			if err := getAndClose(addr); err != nil {
				cancel()
				t.Fatalf("run %d: GET: %v", i, err)
			}
		case err := <-done:
			cancel()
			t.Fatalf("run %d: Run = %v before serving", i, err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run %d: Run = %v after a stop; want nil", i, err)
		}
	}
}

// getAndClose makes one request on a connection of its own that both ends
// close after the response.
func getAndClose(addr string) error {
	c, err := net.DialTimeout("tcp", addr, waitLimit)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitLimit))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: herd\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, c)
	return err
}
