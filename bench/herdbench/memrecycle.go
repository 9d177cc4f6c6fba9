package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// benchMemRecycle serves a constant keep-alive load from a cluster of Go
// workers that leak memory on every request, with Config.MemoryLimit set,
// and counts the recycles herd logs and the requests that failed.
func benchMemRecycle(ctx context.Context, e *env) (rows []row, err error) {
	o := e.o
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "-mode", "leak", "-listen", addr, "-workers", fmt.Sprint(o.memWorkers),
		"-memory-limit-mib", fmt.Sprint(o.memLimitMiB), "-memory-check", o.memCheck.String(),
		"-leak", fmt.Sprint(o.memLeak), "-control", filepath.Join(e.tmp, "memrecycle.sock"),
		"-pid-dir", filepath.Join(e.tmp, "memrecycle")}
	p, err := startProc("memrecycle", e.selfBin, args, nil)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, p.stop(30*time.Second)) }()
	if err := p.log.waitReady(0, o.memWorkers, 30*time.Second); err != nil {
		return nil, err
	}
	m := p.log.mark()
	lctx, cancel := context.WithTimeout(ctx, o.memDur)
	res := runLoad(lctx, loadSpec{addr: addr, conns: o.memConns, rate: o.memRate})
	cancel()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	time.Sleep(time.Second) // let the last recycle's old worker finish
	evs := p.log.since(m)

	// A recycle: the "recycle" event (reason "memory N bytes over the
	// limit of L"), the replacement started with reason "recycle", and the
	// old worker's exit.
	overRE := regexp.MustCompile(`memory (\d+) bytes over`)
	requested, started, exited, crashes := 0, 0, 0, 0
	var maxRSS uint64
	recycledAt := map[int]time.Time{} // old pid -> recycle event
	var durs []time.Duration          // recycle event to the old worker's exit
	for _, h := range evs {
		switch {
		case h.Event == "recycle":
			requested++
			recycledAt[h.PID] = h.Time
			if sm := overRE.FindStringSubmatch(h.Reason); sm != nil {
				n, _ := strconv.ParseUint(sm[1], 10, 64)
				maxRSS = max(maxRSS, n)
			}
		case h.Event == "started" && h.Reason == "recycle":
			started++
		case h.Event == "exited":
			if t, ok := recycledAt[h.PID]; ok {
				exited++
				durs = append(durs, h.Time.Sub(t))
			} else {
				crashes++
			}
		}
	}
	logf("memrecycle: %d recycles requested, %d replacements, %d old workers exited; %d ok, %s failed",
		requested, started, exited, res.ok, failSummary(res))
	sec := fmt.Sprintf("10 memory-limit recycle, %d workers", o.memWorkers)
	rows = []row{
		{sec, fmt.Sprintf("load: %d keep-alive connections, %.0f req/s for %s; leak %d KiB per request; limit %d MiB checked every %s",
			o.memConns, o.memRate, o.memDur, o.memLeak>>10, o.memLimitMiB, o.memCheck), fmt.Sprintf("%d requests ok", res.ok), "", ""},
		{sec, "**recycles**: requested / replacement started / old worker exited",
			fmt.Sprintf("**%d** / %d / %d", requested, started, exited), ">= 1", verdict(exited >= 1)},
		{sec, "largest RSS herd reported over the limit", fmt.Sprintf("%.1f MiB", float64(maxRSS)/(1<<20)), "", ""},
		{sec, "recycle requested to old worker exited, p50 / max", ms(pct(durs, .5)) + " / " + ms(pct(durs, 1)), "", ""},
		{sec, "**failed requests**", fmt.Sprintf("**%s** of %d", failSummary(res), res.ok+res.fail), "0", verdict(res.fail == 0)},
		{sec, "latency p50 / p99 / max", ms(pct(res.lat, .5)) + " / " + ms(pct(res.lat, .99)) + " / " + ms(pct(res.lat, 1)), "", ""},
		{sec, "workers that exited without a recycle", fmt.Sprint(crashes), "0", verdict(crashes == 0)},
		p.unexpectedRow(sec, "start", "recycle"),
	}
	return rows, nil
}
