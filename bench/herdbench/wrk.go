package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run reported. wrk never retries: a request
// that fails is counted as a socket error (connect, read, write, timeout)
// or a non-2xx answer.
type wrkResult struct {
	reqs       int64
	rps        float64
	p50, p99   time.Duration
	sockErrs   int64
	non2xx     int64
	errDetails string
}

// failed is every request that did not end with a 2xx answer.
func (w wrkResult) failed() int64 { return w.sockErrs + w.non2xx }

// runWrk runs wrk against url for d with conns connections on 2 threads.
func runWrk(ctx context.Context, url string, d time.Duration, conns int) (wrkResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "wrk", "-t2", fmt.Sprintf("-c%d", conns),
		fmt.Sprintf("-d%ds", int(d.Seconds())), "--latency", "--timeout", "2s", url).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	return parseWrk(string(out))
}

var (
	wrkReqs   = regexp.MustCompile(`(\d+) requests in`)
	wrkRPS    = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkPct    = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	wrkSock   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// parseWrk reads wrk's report.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := wrkReqs.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk: no request count in\n%s", out)
	}
	r.reqs, _ = strconv.ParseInt(m[1], 10, 64)
	if m := wrkRPS.FindStringSubmatch(out); m != nil {
		r.rps, _ = strconv.ParseFloat(m[1], 64)
	}
	for _, m := range wrkPct.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]
		d := time.Duration(v * float64(unit))
		if m[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	if m := wrkSock.FindStringSubmatch(out); m != nil {
		var parts []string
		for i, k := range []string{"connect", "read", "write", "timeout"} {
			n, _ := strconv.ParseInt(m[i+1], 10, 64)
			r.sockErrs += n
			if n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, k))
			}
		}
		r.errDetails = strings.Join(parts, ", ")
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		r.non2xx, _ = strconv.ParseInt(m[1], 10, 64)
		if r.non2xx > 0 {
			r.errDetails = strings.TrimPrefix(r.errDetails+fmt.Sprintf(", %d non-2xx", r.non2xx), ", ")
		}
	}
	return r, nil
}
