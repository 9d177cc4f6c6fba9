package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"
)

// benchStats measures GET /stats on the control unix socket of a cluster
// of sleeping command workers: one client sending requests one after the
// other (GET /health interleaved, as the cheapest endpoint to compare
// with), then several clients at once.
func benchStats(ctx context.Context, e *env) (rows []row, err error) {
	o := e.o
	n := o.statsWorkers
	sock := filepath.Join(e.tmp, "stats.sock")
	p, err := startHerdCluster(e, "stats", n, "run", "--workers", fmt.Sprint(n), "--ready", "delay",
		"--ready-delay", "100ms", "--control", sock, "--pid-dir", filepath.Join(e.tmp, "stats"),
		"--", "sleep", "3600")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, p.stop(30*time.Second)) }()
	if !sleepUntil(ctx, time.Now().Add(time.Second)) {
		return nil, ctx.Err()
	}
	c := unixClient(sock, 2*o.statsConc)
	defer c.CloseIdleConnections()

	body, err := ctlGet(ctx, c, "/stats")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Workers []struct {
			PID      int    `json:"pid"`
			RSSBytes uint64 `json:"rss_bytes"`
		} `json:"workers"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("GET /stats: %w", err)
	}
	if len(doc.Workers) != n {
		return nil, fmt.Errorf("GET /stats lists %d workers, want %d", len(doc.Workers), n)
	}
	for range 50 { // warm-up: connection, sampler state
		_, _ = ctlGet(ctx, c, "/stats")
		_, _ = ctlGet(ctx, c, "/health")
	}

	// One client, /stats and /health alternating.
	var seqStats, seqHealth []time.Duration
	seqFail := 0
	end := time.Now().Add(o.statsLimit)
	a, _ := sampleCPU(p.pid())
	for i := 0; i < o.statsReqs && time.Now().Before(end) && ctx.Err() == nil; i++ {
		for _, path := range []string{"/stats", "/health"} {
			t0 := time.Now()
			_, err := ctlGet(ctx, c, path)
			d := time.Since(t0)
			switch {
			case err != nil:
				seqFail++
			case path == "/stats":
				seqStats = append(seqStats, d)
			default:
				seqHealth = append(seqHealth, d)
			}
		}
	}
	b, _ := sampleCPU(p.pid())
	seqCPU := float64(b.onCPU - a.onCPU)

	// statsConc clients at once, /stats only, statsReqs requests in all.
	var mu sync.Mutex
	var conc []time.Duration
	concFail := 0
	var wg sync.WaitGroup
	end = time.Now().Add(o.statsLimit)
	per := o.statsReqs / o.statsConc
	a, _ = sampleCPU(p.pid())
	t0 := time.Now()
	for range o.statsConc {
		wg.Go(func() {
			var ds []time.Duration
			fails := 0
			for i := 0; i < per && time.Now().Before(end) && ctx.Err() == nil; i++ {
				t := time.Now()
				if _, err := ctlGet(ctx, c, "/stats"); err != nil {
					fails++
					continue
				}
				ds = append(ds, time.Since(t))
			}
			mu.Lock()
			conc = append(conc, ds...)
			concFail += fails
			mu.Unlock()
		})
	}
	wg.Wait()
	concWall := time.Since(t0)
	b, _ = sampleCPU(p.pid())
	concCPU := float64(b.onCPU - a.onCPU)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	sec := fmt.Sprintf("7 GET /stats, %d workers", n)
	logf("stats: sequential p50 %s p99 %s; %d clients p50 %s p99 %s", ms(pct(seqStats, .5)), ms(pct(seqStats, .99)),
		o.statsConc, ms(pct(conc, .5)), ms(pct(conc, .99)))
	rows = []row{
		{sec, "response size", fmt.Sprintf("%d bytes", len(body)), "", ""},
		{sec, fmt.Sprintf("**/stats, 1 client, p50 / p99 / max (%d requests, %d failed)**", len(seqStats), seqFail),
			fmt.Sprintf("**%s / %s** / %s", ms(pct(seqStats, .5)), ms(pct(seqStats, .99)), ms(pct(seqStats, 1))), "", ""},
		{sec, fmt.Sprintf("/health interleaved with it, p50 / p99 (%d requests)", len(seqHealth)),
			ms(pct(seqHealth, .5)) + " / " + ms(pct(seqHealth, .99)), "", ""},
		{sec, "/stats p50 / /health p50", fmt.Sprintf("%.1f", ratio(float64(pct(seqStats, .5)), float64(pct(seqHealth, .5)))), "", ""},
		{sec, fmt.Sprintf("**/stats, %d clients at once, p50 / p99 / max (%d requests, %d failed)**", o.statsConc, len(conc), concFail),
			fmt.Sprintf("**%s / %s** / %s", ms(pct(conc, .5)), ms(pct(conc, .99)), ms(pct(conc, 1))), "", ""},
		{sec, fmt.Sprintf("/stats throughput with %d clients", o.statsConc),
			fmt.Sprintf("%.0f req/s", float64(len(conc))/concWall.Seconds()), "", ""},
		{sec, "primary CPU per /stats request (threads' sum_exec_runtime)",
			fmt.Sprintf("%.0f µs with %d clients; %.0f µs per /stats+/health pair with 1 client",
				concCPU/1e3/float64(max(len(conc), 1)), o.statsConc, seqCPU/1e3/float64(max(len(seqStats), 1))), "", ""},
	}
	return rows, nil
}
