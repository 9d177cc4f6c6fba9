package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// hbSetting is one cluster of the heartbeat measurement.
type hbSetting struct {
	name     string
	watchdog time.Duration // Config.Watchdog; 0 is herd's default
	interval time.Duration // the heartbeat interval it gives
}

// benchHeartbeat runs clusters of the same idle Go library workers side by
// side, differing only in Config.Watchdog, and compares their primaries'
// CPU over one window. herd has no way to turn Go workers' heartbeats
// off, so "off" is a 1h interval: no heartbeat (and no hung check) falls
// in the window.
func benchHeartbeat(ctx context.Context, e *env) (rows []row, err error) {
	o := e.o
	settings := []hbSetting{
		{"off (Watchdog 1h)", time.Hour, time.Hour},
		{"default (5s)", 0, 5 * time.Second},
		{"Watchdog 1s", time.Second, time.Second},
	}
	procs := make([]*proc, len(settings))
	defer func() {
		for _, p := range procs {
			if p != nil {
				err = errors.Join(err, p.stop(60*time.Second))
			}
		}
	}()
	for i, s := range settings {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		tag := fmt.Sprintf("hb-%d", i)
		args := []string{"serve", "-mode", "herd", "-listen", addr, "-workers", fmt.Sprint(o.hbWorkers),
			"-name", "herdbench-" + tag, "-control", filepath.Join(e.tmp, tag+".sock"),
			"-watchdog", s.watchdog.String()}
		p, err := startProc(tag+" "+s.name, e.selfBin, args, nil)
		if err != nil {
			return nil, err
		}
		procs[i] = p
		t0 := time.Now()
		if err := p.log.waitReady(0, o.hbWorkers, 3*time.Minute); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		logf("heartbeat %s: %d workers ready in %s", s.name, o.hbWorkers, time.Since(t0).Round(time.Millisecond))
	}
	logf("heartbeat: settling 5s, then sampling the %d primaries for %s", len(settings), o.hbWindow)
	if !sleepUntil(ctx, time.Now().Add(5*time.Second)) {
		return nil, ctx.Err()
	}
	a := make([]cpuSample, len(procs))
	for i, p := range procs {
		if a[i], err = sampleCPU(p.pid()); err != nil {
			return nil, err
		}
	}
	if !sleepUntil(ctx, time.Now().Add(o.hbWindow)) {
		return nil, ctx.Err()
	}
	b := make([]cpuSample, len(procs))
	for i, p := range procs {
		if b[i], err = sampleCPU(p.pid()); err != nil {
			return nil, err
		}
	}
	sec := fmt.Sprintf("9 heartbeats, %d Go workers", o.hbWorkers)
	tickPct := make([]float64, len(procs))
	nsPct := make([]float64, len(procs))
	onCPU := make([]float64, len(procs))
	var wall time.Duration
	for i, s := range settings {
		wall = b[i].at.Sub(a[i].at)
		tickPct[i] = float64(b[i].ticks-a[i].ticks) / clockTicks / wall.Seconds() * 100
		onCPU[i] = float64(b[i].onCPU - a[i].onCPU)
		nsPct[i] = onCPU[i] / float64(wall) * 100
		rss, _, threads := procStatus(procs[i].pid())
		beats := float64(o.hbWorkers) / s.interval.Seconds()
		logf("heartbeat %s: %.3f%% (ticks) %.3f%% (sum_exec_runtime), rss %d kB", s.name, tickPct[i], nsPct[i], rss)
		rows = append(rows, row{sec, fmt.Sprintf("primary CPU, heartbeats %s (%.1f beats/s nominal)", s.name, beats),
			fmt.Sprintf("**%.3f %%** of one core (sum_exec_runtime); %.3f %% by utime+stime (%d ticks); %.0f context switches/s; VmRSS %.1f MB, %d threads",
				nsPct[i], tickPct[i], b[i].ticks-a[i].ticks, float64(b[i].switches-a[i].switches)/wall.Seconds(),
				float64(rss)/1024, threads), "", ""})
	}
	ratios := fmt.Sprintf("**%.2f**, %.2f", ratio(nsPct[1], nsPct[0]), ratio(nsPct[2], nsPct[0]))
	if onCPU[0] == 0 {
		ratios = "**unbounded**: off used no CPU at all in the window (0 ns, 0 ticks)"
	}
	rows = append(rows, row{sec, "**CPU ratio default (5s) / off**, and 1s / off", ratios, "", ""})
	for i := 1; i < len(settings); i++ {
		beats := float64(o.hbWorkers) * wall.Seconds() / settings[i].interval.Seconds()
		rows = append(rows, row{sec, fmt.Sprintf("primary CPU per heartbeat, %s, over off", settings[i].name),
			fmt.Sprintf("%.1f µs (%.0f beats in %s)", (onCPU[i]-onCPU[0])/1e3/beats, beats, wall.Round(time.Millisecond)), "", ""})
	}
	for _, p := range procs {
		rows = append(rows, p.unexpectedRow(sec, "start"))
	}
	return rows, nil
}
