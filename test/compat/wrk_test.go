package compat

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// load is what one wrk run measured.
type load struct {
	Requests int // completed requests
	Connect  int // failed connects
	Read     int // connections closed or reset before a whole response
	Write    int
	Timeout  int
	Non2xx   int // answers other than 2xx and 3xx
}

// Errors counts the requests that failed, of every kind.
func (l load) Errors() int { return l.Connect + l.Read + l.Write + l.Timeout + l.Non2xx }

// String sums l up for the report.
func (l load) String() string {
	return fmt.Sprintf("%d failed of %d (connect %d, read %d, write %d, timeout %d, non-2xx %d)",
		l.Errors(), l.Requests, l.Connect, l.Read, l.Write, l.Timeout, l.Non2xx)
}

// wrk settings: 2 threads, 16 connections, a fixed duration; wrk never
// retries, so every broken connection is counted. A request unanswered for
// wrkTimeout counts as failed only if the run lasts that long after it, so
// the run goes on well past the rolling restart (about 2s from its 1s mark).
const (
	wrkTimeout     = "3s"
	wrkThreads     = "2"
	wrkConnections = "16"
	wrkDuration    = 7 * time.Second
)

// underLoad runs wrk against url for wrkDuration, with "Connection: close"
// on every request when closeEach, and calls during once wrk has run for a
// second. It returns what wrk counted and the error of during.
func underLoad(t *testing.T, url string, closeEach bool, during func() error) (load, error) {
	t.Helper()
	args := []string{"-t", wrkThreads, "-c", wrkConnections, "-d", fmt.Sprintf("%ds", int(wrkDuration.Seconds())), "--timeout", wrkTimeout}
	if closeEach {
		args = append(args, "-H", "Connection: close")
	}
	ctx, cancel := context.WithTimeout(context.Background(), wrkDuration+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wrk", append(args, url)...)
	outc := make(chan []byte, 1)
	errc := make(chan error, 1)
	go func() {
		out, err := cmd.CombinedOutput()
		outc <- out
		errc <- err
	}()
	time.Sleep(time.Second) // a fixed point inside a fixed-length load, not a wait on a condition
	duringErr := during()
	out, err := <-outc, <-errc
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	l, err := parseWrk(string(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return l, duringErr
}

var (
	wrkRequests = regexp.MustCompile(`(\d+) requests in`)
	wrkSocket   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// parseWrk reads wrk's summary.
func parseWrk(out string) (load, error) {
	var l load
	m := wrkRequests.FindStringSubmatch(out)
	if m == nil {
		return l, fmt.Errorf("no request count in wrk's output")
	}
	l.Requests, _ = strconv.Atoi(m[1])
	if m := wrkSocket.FindStringSubmatch(out); m != nil {
		l.Connect, _ = strconv.Atoi(m[1])
		l.Read, _ = strconv.Atoi(m[2])
		l.Write, _ = strconv.Atoi(m[3])
		l.Timeout, _ = strconv.Atoi(m[4])
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		l.Non2xx, _ = strconv.Atoi(m[1])
	}
	return l, nil
}
