package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// killSample is one kill -9 of a worker, timed from just before the kill
// to the time stamps of herd's JSON log lines.
type killSample struct {
	total    time.Duration // kill to the replacement's "worker ready"
	noticed  time.Duration // kill to "worker exited"
	respawn  time.Duration // "worker exited" to the replacement's "worker started"
	startup  time.Duration // "worker started" to "worker ready"
	prevPID  int
	finalPID int
}

// benchRespawn kills every worker of fresh demo clusters once each (so that
// no slot's crash backoff grows), with a 1ms and with the default respawn
// delay, then kills one slot repeatedly to show the backoff.
func benchRespawn(ctx context.Context, e *env) ([]row, error) {
	settings := []struct {
		name, target string
		args         []string
		lib          bool
	}{
		{"respawn-delay 1ms", "p50 <= 10 ms", []string{"--respawn-delay", "1ms"}, false},
		{"library worker, respawn-delay 1ms", "p50 <= 5 ms", []string{"-respawn-delay", "1ms"}, true},
		{"command (sleep), respawn-delay 1ms, ready-delay 1ms", "p50 <= 10 ms",
			[]string{"--respawn-delay", "1ms", "--ready", "delay", "--ready-delay", "1ms", "--", "sleep", "3600"}, false},
		{"respawn-delay default (100ms)", "n/a (delay is 100ms)", nil, false},
	}
	var rows []row
	for i, s := range settings {
		var samples []killSample
		for c := range e.o.killClusters {
			got, err := killCluster(ctx, e, fmt.Sprintf("kill-%d-%d", i, c), e.o.killWorkers, 1, s.args, s.lib)
			samples = append(samples, got...)
			if err != nil {
				return rows, err
			}
		}
		rows = append(rows, respawnRows(s.name, s.target, samples)...)
	}
	series, err := killCluster(ctx, e, "kill-backoff", 1, 6, []string{"--respawn-delay", "1ms", "--max-crashes", "100"}, false)
	var ts []string
	for _, k := range series {
		ts = append(ts, fmt.Sprintf("%.1f", float64(k.total)/float64(time.Millisecond)))
	}
	rows = append(rows, row{"4 kill -9", "same slot killed 6 times in a row, 1ms delay (ms each)",
		strings.Join(ts, ", "), "", ""})
	return rows, err
}

// killCluster starts a cluster of workers (herd demo, or with lib a
// library program that does not link what the herd binary links) and kills
// each slot's worker times times in a row, waiting for its replacement each
// time.
func killCluster(ctx context.Context, e *env, tag string, workers, times int, args []string, lib bool) (out []killSample, err error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(e.tmp, tag)
	var p *proc
	if lib {
		args = append([]string{"serve", "-mode", "herd", "-listen", addr, "-workers", fmt.Sprint(workers),
			"-pid-dir", dir}, args...)
		if p, err = startProc("library "+tag, e.selfBin, args, nil); err == nil {
			if err = p.log.waitReady(0, workers, 60*time.Second); err != nil {
				err = errors.Join(err, p.stop(5*time.Second))
			}
		}
	} else {
		args = append([]string{"--listen", addr, "--workers", fmt.Sprint(workers), "--startup-delay", "0",
			"--pid-dir", dir}, args...)
		sub := "demo"
		if contains(args, "--") {
			sub = "run" // a command
		}
		p, err = startHerdCluster(e, sub+" "+tag, workers, sub, args...)
	}
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, p.stop(30*time.Second)) }()
	time.Sleep(300 * time.Millisecond)
	for slot := range workers {
		for range times {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			k, err := killOne(p, dir, slot)
			if err != nil {
				return out, fmt.Errorf("slot %d: %w", slot, err)
			}
			out = append(out, k)
			time.Sleep(50 * time.Millisecond)
		}
	}
	return out, nil
}

// killOne kills the worker of slot (pid from its pid file) with SIGKILL and
// waits until herd logs a new worker of that slot ready.
func killOne(p *proc, dir string, slot int) (killSample, error) {
	pid, err := readPID(filepath.Join(dir, fmt.Sprintf("worker-%d.pid", slot)))
	if err != nil {
		return killSample{}, err
	}
	m := p.log.mark()
	t0 := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return killSample{}, fmt.Errorf("kill %d: %w", pid, err)
	}
	ready, _, err := p.log.waitFor(m, 30*time.Second, func(h hevent) bool {
		return h.Event == "ready" && h.slot() == slot && h.PID != pid
	})
	if err != nil {
		return killSample{}, fmt.Errorf("waiting for the replacement of %d: %w", pid, err)
	}
	k := killSample{total: ready.Time.Sub(t0), prevPID: pid, finalPID: ready.PID}
	var exited, started time.Time
	for _, h := range p.log.since(m) {
		switch {
		case h.Event == "exited" && h.PID == pid:
			exited = h.Time
		case h.Event == "started" && h.PID == ready.PID:
			started = h.Time
		}
	}
	if exited.IsZero() || started.IsZero() {
		return k, fmt.Errorf("no exited or started line for pids %d, %d", pid, ready.PID)
	}
	k.noticed, k.respawn, k.startup = exited.Sub(t0), started.Sub(exited), ready.Time.Sub(started)
	return k, nil
}

func respawnRows(name, target string, ks []killSample) []row {
	var total, noticed, respawn, startup []time.Duration
	for _, k := range ks {
		total = append(total, k.total)
		noticed = append(noticed, k.noticed)
		respawn = append(respawn, k.respawn)
		startup = append(startup, k.startup)
	}
	p50 := pct(total, .5)
	v := ""
	var goal time.Duration
	if _, err := fmt.Sscanf(target, "p50 <= %d ms", &goal); err == nil {
		v = verdict(p50 <= goal*time.Millisecond)
	}
	logf("%s: %d kills, p50 %s p99 %s", name, len(ks), ms(p50), ms(pct(total, .99)))
	sec := "4 kill -9 " + name
	return []row{
		{sec, fmt.Sprintf("kill to replacement ready, p50 / p99 / max (%d kills)", len(ks)),
			ms(p50) + " / " + ms(pct(total, .99)) + " / " + ms(pct(total, 1)), target, v},
		{sec, "p50 of: kill to exit logged / exit to respawn started / started to ready",
			ms(pct(noticed, .5)) + " / " + ms(pct(respawn, .5)) + " / " + ms(pct(startup, .5)), "", ""},
	}
}
