package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// rolloutTimes is how long one rolling restart took: as herd reports it
// (until the last new worker was ready) and until the last old worker had
// exited, measured from the signal.
type rolloutTimes struct {
	sent          time.Time
	herd, drained time.Duration
}

func (t rolloutTimes) window() window { return window{t.sent, t.drained} }

// benchRollout runs paced keep-alive load against the demo cluster in each
// balance mode: steady, then during rolling restarts, then steady again.
func benchRollout(ctx context.Context, e *env) ([]row, error) {
	var rows []row
	for _, mode := range []string{"shared", "reuseport"} {
		r, err := rolloutOne(ctx, e, mode)
		rows = append(rows, r...)
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

func rolloutOne(ctx context.Context, e *env, mode string) (rows []row, err error) {
	o := e.o
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p, err := startHerdCluster(e, "demo "+mode, o.rolloutWorkers, "demo", "--listen", addr,
		"--workers", fmt.Sprint(o.rolloutWorkers), "--balance", mode, "--startup-delay", "0",
		"--pid-dir", filepath.Join(e.tmp, "rollout-"+mode))
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, p.stop(30*time.Second)) }()
	spec := loadSpec{addr: addr, conns: o.rolloutConns, rate: o.rolloutRate, stamps: true}
	timed(ctx, time.Second, spec) // warm-up
	steady := timed(ctx, o.steady, spec)
	lctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	done := make(chan *loadResult, 1)
	go func() { done <- runLoad(lctx, spec) }()
	var times []rolloutTimes
	var controls []window
	for i := 0; i < o.rollouts && err == nil && ctx.Err() == nil; i++ {
		var t rolloutTimes
		if t, err = rollOnce(p); err != nil {
			break
		}
		times = append(times, t)
		logf("%s rollout %d: herd %s, old workers gone %s", mode, i+1, ms(t.herd), ms(t.drained))
		time.Sleep(150 * time.Millisecond)
		var c window
		c, err = controlSpawn(e, o.rolloutWorkers, t.drained)
		controls = append(controls, c)
		time.Sleep(150 * time.Millisecond)
	}
	cancel()
	during := <-done
	if err != nil {
		return nil, err
	}
	steady.merge(timed(ctx, o.steady, spec))
	rows = append(rolloutRows(mode, steady, during, times, controls), p.unexpectedRow("3 rollout "+mode, "start", "rollout"))
	return rows, ctx.Err()
}

// window is a span of time in the rollout phase.
type window struct {
	from time.Time
	d    time.Duration
}

// controlSpawn runs "herd demo --help" n times in a row, as a control:
// starting a Go process as big as a worker without any rollout. Its window
// lasts at least as long as the rollout before it.
func controlSpawn(e *env, n int, atLeast time.Duration) (window, error) {
	w := window{from: time.Now()}
	for range n {
		if err := exec.Command(e.herdBin, "demo", "--help").Run(); err != nil {
			return w, fmt.Errorf("control spawn: %w", err)
		}
	}
	w.d = max(time.Since(w.from), atLeast)
	return w, nil
}

// rollOnce sends SIGUSR2 and waits until the rollout has finished and every
// old worker it stopped has exited.
func rollOnce(p *proc) (rolloutTimes, error) {
	m := p.log.mark()
	sent := time.Now()
	if err := p.signal(syscall.SIGUSR2); err != nil {
		return rolloutTimes{}, err
	}
	end, _, err := p.log.waitFor(m, time.Minute, func(h hevent) bool {
		return h.Event == "rollout_finished" || h.Event == "rollout_failed"
	})
	if err != nil {
		return rolloutTimes{}, fmt.Errorf("waiting for the rollout: %w", err)
	}
	if end.Event == "rollout_failed" {
		return rolloutTimes{}, fmt.Errorf("rollout failed: %+v", end)
	}
	t := rolloutTimes{sent: sent, herd: time.Duration(end.After), drained: end.Time.Sub(sent)}
	for _, h := range p.log.since(m) {
		if h.Event != "stopping" || h.Reason != "rollout" {
			continue
		}
		pid := h.PID
		x, _, err := p.log.waitFor(m, 30*time.Second, func(h hevent) bool { return h.Event == "exited" && h.PID == pid })
		if err != nil {
			return t, fmt.Errorf("waiting for old worker %d to exit: %w", pid, err)
		}
		t.drained = max(t.drained, x.Time.Sub(sent))
	}
	return t, nil
}

func rolloutRows(mode string, steady, during *loadResult, times []rolloutTimes, controls []window) []row {
	sec := "3 rollout " + mode
	var herdT, drainT []time.Duration
	var wins []window
	for _, t := range times {
		herdT, drainT, wins = append(herdT, t.herd), append(drainT, t.drained), append(wins, t.window())
	}
	inside, ctrl, outside := splitByWindows(during, wins, controls)
	p99s, p99d := pct(steady.lat, .99), pct(during.lat, .99)
	p99in, p99ctl, p99out := pct(inside, .99), pct(ctrl, .99), pct(outside, .99)
	c99s, c99d := pct(steady.clat, .99), pct(during.clat, .99)
	q, qw := ratio(float64(p99d), float64(p99s)), ratio(float64(p99in), float64(p99out))
	qctl, qc := ratio(float64(p99ctl), float64(p99out)), ratio(float64(c99d), float64(c99s))
	return []row{
		{sec, "rollouts completed", fmt.Sprintf("%d", len(times)), "", ""},
		{sec, "failed requests during rollouts", fmt.Sprintf("%s of %d", failSummary(during), during.ok+during.fail),
			"0", verdict(during.fail == 0)},
		{sec, "failed requests steady", fmt.Sprintf("%s of %d", failSummary(steady), steady.ok+steady.fail), "0", verdict(steady.fail == 0)},
		{sec, "rollout duration as herd logs it (p50 / max)", ms(pct(herdT, .5)) + " / " + ms(pct(herdT, 1)), "", ""},
		{sec, "signal to last old worker exited (p50 / max)", ms(pct(drainT, .5)) + " / " + ms(pct(drainT, 1)), "", ""},
		{sec, "p99 service latency: steady phases / whole rollout phase", fmt.Sprintf("%s / %s = %.3f", ms(p99s), ms(p99d), q),
			"<= 1.2", verdict(q <= 1.2)},
		{sec, fmt.Sprintf("p99 service latency in the rollout phase: outside windows (%d) / inside rollout windows (%d)",
			len(outside), len(inside)), fmt.Sprintf("%s / %s = %.3f", ms(p99out), ms(p99in), qw), "<= 1.2", verdict(qw <= 1.2)},
		{sec, fmt.Sprintf("control, no rollout: p99 inside windows running `herd demo --help` once per worker (%d) / outside", len(ctrl)),
			fmt.Sprintf("%s / %s = %.3f", ms(p99ctl), ms(p99out), qctl), "", ""},
		{sec, "p99 latency from scheduled send: steady phases / whole rollout phase", fmt.Sprintf("%s / %s = %.3f", ms(c99s), ms(c99d), qc),
			"<= 1.2", verdict(qc <= 1.2)},
		{sec, "p50 / max service latency, steady phases vs whole rollout phase",
			fmt.Sprintf("%s / %s vs %s / %s", ms(pct(steady.lat, .5)), ms(pct(steady.lat, 1)), ms(pct(during.lat, .5)), ms(pct(during.lat, 1))), "", ""},
	}
}

// splitByWindows sorts the latencies of r by when their request was sent:
// inside a rollout window, inside a control window, or in neither.
func splitByWindows(r *loadResult, rollouts, controls []window) (inside, ctrl, outside []time.Duration) {
	in := func(at time.Time, ws []window) bool {
		for _, w := range ws {
			if !at.Before(w.from) && at.Before(w.from.Add(w.d)) {
				return true
			}
		}
		return false
	}
	for i, at := range r.sent {
		switch {
		case in(at, rollouts):
			inside = append(inside, r.lat[i])
		case in(at, controls):
			ctrl = append(ctrl, r.lat[i])
		default:
			outside = append(outside, r.lat[i])
		}
	}
	return inside, ctrl, outside
}
