package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// benchPeers serves the same apps under herd and under what users would
// pick instead, with wrk (which never retries) as the load: throughput in
// interleaved rounds, then, for each setup, failed requests and p99 during
// 3 rolling restarts, during kill -9 of a worker every 250ms for 10s, and
// during memory recycles.
func benchPeers(ctx context.Context, e *env) ([]row, error) {
	if _, err := exec.LookPath("wrk"); err != nil {
		return nil, errors.New("wrk is not installed (apt-get install wrk)")
	}
	dir, err := peersDir()
	if err != nil {
		return nil, err
	}
	if err := ensurePM2(ctx, dir); err != nil {
		return nil, err
	}
	setups := peerSetups(dir)
	if e.o.peersOnly != "" {
		setups = slices.DeleteFunc(setups, func(p peer) bool { return !contains(strings.Split(e.o.peersOnly, ","), p.group) })
	}
	steady := make(map[string][]wrkResult)
	for round := range e.o.peersRounds {
		order := slices.Clone(setups)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, p := range order {
			r, err := peerSteady(ctx, e, p)
			if err != nil {
				return nil, err
			}
			steady[p.name] = append(steady[p.name], r)
		}
	}
	var rows []row
	for _, p := range setups {
		d, err := peerDisruption(ctx, e, p)
		if err != nil {
			return rows, err
		}
		rows = append(rows, peerRows(p, setups, steady, d)...)
	}
	return rows, nil
}

// peerSteady starts p, warms it up and measures its throughput.
func peerSteady(ctx context.Context, e *env, p peer) (wrkResult, error) {
	port, proc, err := startPeer(e, p, false)
	if err != nil {
		return wrkResult{}, err
	}
	defer func() { _ = proc.stop() }()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if _, err := runWrk(ctx, url, 2*time.Second, e.o.peersConns); err != nil {
		return wrkResult{}, err
	}
	r, err := runWrk(ctx, url, e.o.peersDur, e.o.peersConns)
	logf("peers: %s: %.0f req/s, p99 %s, %d failed", p.name, r.rps, ms(r.p99), r.failed())
	return r, err
}

func startPeer(e *env, p peer, leak bool) (int, *peerProc, error) {
	addr, err := freeAddr()
	if err != nil {
		return 0, nil, err
	}
	var port int
	if _, err := fmt.Sscanf(addr[len("127.0.0.1:"):], "%d", &port); err != nil {
		return 0, nil, err
	}
	proc, err := p.start(e, port, leak)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", p.name, err)
	}
	return port, proc, nil
}

// disruption is what one setup's three disruption phases measured; a nil
// result means the setup cannot do it.
type disruption struct {
	restarts, kills, recycles *wrkResult
	killed, replaced          int // kills sent; workers replaced for memory
}

// peerDisruption runs the disruption phases of p, each on a fresh start.
func peerDisruption(ctx context.Context, e *env, p peer) (disruption, error) {
	var d disruption
	phase := func(leak bool, during func(*peerProc, time.Time) int) (*wrkResult, int, error) {
		port, proc, err := startPeer(e, p, leak)
		if err != nil {
			return nil, 0, err
		}
		defer func() { _ = proc.stop() }()
		url := fmt.Sprintf("http://127.0.0.1:%d/", port)
		if _, err := runWrk(ctx, url, 2*time.Second, e.o.peersConns); err != nil {
			return nil, 0, err
		}
		start := time.Now()
		n := make(chan int, 1)
		go func() { n <- during(proc, start) }()
		r, err := runWrk(ctx, url, 10*time.Second, e.o.peersConns)
		return &r, <-n, err
	}
	var err error
	if p.roll != nil {
		d.restarts, _, err = phase(false, func(proc *peerProc, t0 time.Time) int {
			for _, at := range []time.Duration{time.Second, 4 * time.Second, 7 * time.Second} {
				sleepUntil(ctx, t0.Add(at))
				if err := p.roll(proc); err != nil {
					logf("peers: %s: rolling restart: %v", p.name, err)
				}
			}
			return 3
		})
		if err != nil {
			return d, err
		}
	}
	if p.kills {
		d.kills, d.killed, err = phase(false, func(proc *peerProc, t0 time.Time) int { return killEvery(ctx, proc, t0) })
		if err != nil {
			return d, err
		}
	}
	if p.recycles {
		d.recycles, d.replaced, err = phase(true, func(proc *peerProc, t0 time.Time) int { return countReplaced(ctx, proc, t0) })
	}
	logf("peers: %s: disruption done", p.name)
	return d, err
}

// killEvery sends SIGKILL to a random worker of proc every 250ms for 10s
// and returns how many it killed.
func killEvery(ctx context.Context, proc *peerProc, t0 time.Time) int {
	killed := 0
	for i := 1; i <= 40; i++ {
		if !sleepUntil(ctx, t0.Add(time.Duration(i)*250*time.Millisecond-125*time.Millisecond)) {
			break
		}
		if ws := proc.workers(); len(ws) > 0 {
			if syscall.Kill(ws[rand.IntN(len(ws))], syscall.SIGKILL) == nil {
				killed++
			}
		}
	}
	return killed
}

// countReplaced watches proc's workers for 10s and returns how many new
// ones appeared: each replaced a worker past its memory limit.
func countReplaced(ctx context.Context, proc *peerProc, t0 time.Time) int {
	seen := map[int]bool{}
	for _, pid := range proc.workers() {
		seen[pid] = true
	}
	n := 0
	for time.Since(t0) < 10*time.Second && ctx.Err() == nil {
		for _, pid := range proc.workers() {
			if !seen[pid] {
				seen[pid] = true
				n++
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return n
}
