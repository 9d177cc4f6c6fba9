package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// scaleReady is the --ready-delay of the scale clusters: the "app ready
// time" a rolling restart is compared with.
const scaleReady = 100 * time.Millisecond

// benchScale runs clusters of many sleeping command workers, one size at
// a time: it times their start, measures the idle primary (CPU, RSS,
// threads), GET /stats, a rolling restart with a surge of one 32nd of the
// workers, and the stop.
func benchScale(ctx context.Context, e *env) ([]row, error) {
	var rows []row
	for _, f := range strings.Split(e.o.scaleSizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return rows, fmt.Errorf("-scale-sizes: %q is not a worker count", f)
		}
		r, err := scaleOnce(ctx, e, n)
		rows = append(rows, r...)
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// scaleOnce measures one cluster of n workers.
func scaleOnce(ctx context.Context, e *env, n int) (rows []row, err error) {
	surge := max(1, n/32)
	sock := filepath.Join(e.tmp, fmt.Sprintf("scale%d.sock", n))
	t0 := time.Now()
	p, err := startHerdCluster(e, fmt.Sprintf("scale%d", n), n, "run", "--workers", fmt.Sprint(n),
		"--max-workers", fmt.Sprint(max(n, 1024)), "--startup-delay", "0", "--ready", "delay",
		"--ready-delay", scaleReady.String(), "--max-surge", fmt.Sprint(surge), "--listen", "127.0.0.1:0",
		"--control", sock, "--shutdown-timeout", "10s", "--", "sleep", "3600")
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			err = errors.Join(err, p.stop(30*time.Second))
		}
	}()
	startAll := time.Since(t0)
	sec := fmt.Sprintf("13 scale, %d workers", n)
	rows = append(rows, row{sec, "start: herd run to every worker ready (ready delay 100ms, startup delay 0)",
		fmt.Sprintf("%s (%.2f ms per worker beyond the ready delay)", ms(startAll),
			float64(startAll-scaleReady)/float64(time.Millisecond)/float64(n)), "", ""})
	if !sleepUntil(ctx, time.Now().Add(3*time.Second)) {
		return rows, ctx.Err()
	}
	a, _ := sampleCPU(p.pid())
	if !sleepUntil(ctx, time.Now().Add(e.o.scaleWindow)) {
		return rows, ctx.Err()
	}
	b, _ := sampleCPU(p.pid())
	rss, _, threads := procStatus(p.pid())
	wall := b.at.Sub(a.at)
	rows = append(rows, row{sec, fmt.Sprintf("idle primary over %s: CPU (threads' sum_exec_runtime), VmRSS, threads", wall.Round(time.Second)),
		fmt.Sprintf("%.3f %% of one core, %.1f MB, %d threads", float64(b.onCPU-a.onCPU)/float64(wall)*100, float64(rss)/1024, threads), "", ""})

	stats, err := statsLatency(ctx, sock, p.pid(), 200)
	if err != nil {
		return rows, err
	}
	rows = append(rows, stats.row(sec))

	from := p.log.mark()
	r0 := time.Now()
	if err := p.signal(syscall.SIGUSR2); err != nil {
		return rows, err
	}
	h, _, err := p.log.waitFor(from, 5*time.Minute, func(h hevent) bool {
		return h.Event == "rollout_finished" || h.Event == "rollout_failed"
	})
	if err != nil {
		return rows, err
	}
	wallRoll := time.Since(r0)
	steps := (n + surge - 1) / surge
	ideal := time.Duration(steps) * scaleReady
	herdRoll := time.Duration(h.After)
	rows = append(rows, row{sec, fmt.Sprintf("rolling restart, surge %d: as herd logs it / signal to finished; ideal %d × 100ms", surge, steps),
		fmt.Sprintf("%s / %s; %s over the ideal %s", ms(herdRoll), ms(wallRoll), ms(herdRoll-ideal), ms(ideal)),
		"<= ideal + 50 ms", verdict(h.Event == "rollout_finished" && herdRoll-ideal <= 50*time.Millisecond)})

	s0 := time.Now()
	stopped = true
	if err := p.stop(60 * time.Second); err != nil {
		return rows, err
	}
	rows = append(rows, row{sec, "stop: SIGTERM to the primary's exit, every worker reaped", ms(time.Since(s0)), "", ""},
		p.unexpectedRow(sec, "start", "rollout"))
	return rows, nil
}

// statsResult is the latency of sequential GET /stats requests.
type statsResult struct {
	n, fails    int
	lat         []time.Duration
	cpuPerReqUs float64
	bytes       int
}

func (s statsResult) row(sec string) row {
	return row{sec, fmt.Sprintf("GET /stats, 1 client, p50 / p99 / max (%d requests, %d failed, %d bytes); primary CPU per request", s.n, s.fails, s.bytes),
		fmt.Sprintf("%s / %s / %s; %.0f µs", ms(pct(s.lat, .5)), ms(pct(s.lat, .99)), ms(pct(s.lat, 1)), s.cpuPerReqUs),
		"p99 <= 20 ms", verdict(s.fails == 0 && pct(s.lat, .99) <= 20*time.Millisecond)}
}

// statsLatency sends n GET /stats one after the other, after a warm-up.
func statsLatency(ctx context.Context, sock string, pid, n int) (statsResult, error) {
	c := unixClient(sock, 1)
	defer c.CloseIdleConnections()
	var res statsResult
	for range 10 {
		body, err := ctlGet(ctx, c, "/stats")
		if err != nil {
			return res, err
		}
		res.bytes = len(body)
	}
	a, _ := sampleCPU(pid)
	for range n {
		t := time.Now()
		if _, err := ctlGet(ctx, c, "/stats"); err != nil {
			res.fails++
			continue
		}
		res.lat = append(res.lat, time.Since(t))
	}
	b, _ := sampleCPU(pid)
	res.n = len(res.lat)
	res.cpuPerReqUs = float64(b.onCPU-a.onCPU) / 1e3 / float64(max(res.n, 1))
	return res, ctx.Err()
}
