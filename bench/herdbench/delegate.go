package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// benchDelegate measures Worker.Delegate round trips under the real
// supervisor: Go library workers calling Delegate("echo") in a loop
// against a handler registered with Cluster.Handle in the primary. It
// then runs the in-package micro-benchmark of internal/ipc (a Client and a
// Conn over a socket pair in one process) for comparison.
func benchDelegate(ctx context.Context, e *env) ([]row, error) {
	type setting struct{ workers, callers int }
	settings := []setting{{2, 1}, {8, 1}, {2, 8}, {8, 8}}
	var rows []row
	sec := "11 delegate"
	realRPS := map[setting]float64{}
	for i, s := range settings {
		r, rps, err := delegateRun(ctx, e, i, s.workers, s.callers)
		if err != nil {
			return rows, fmt.Errorf("%d workers x %d callers: %w", s.workers, s.callers, err)
		}
		realRPS[s] = rps
		rows = append(rows, row{sec, fmt.Sprintf("supervisor, %d workers x %d caller%s: round trips/s; p50 / p99", s.workers, s.callers,
			plural(s.callers)), r, "", ""})
	}
	micro, err := delegateMicro(ctx)
	if err != nil {
		rows = append(rows, row{sec, "internal/ipc BenchmarkDelegate", "failed: " + err.Error(), "", "ERROR"})
		return rows, nil
	}
	for _, s := range settings {
		mb, ok := micro[fmt.Sprintf("clients=%d/callers=%d", s.workers, s.callers)]
		if !ok {
			continue
		}
		rows = append(rows, row{sec, fmt.Sprintf("internal/ipc micro-benchmark, clients=%d callers=%d: round trips/s; p50 / p99; CPU per round trip", s.workers, s.callers),
			fmt.Sprintf("%.0f rt/s; %.0f µs / %.0f µs; %.1f µs", mb["rt/s"], mb["p50-µs"], mb["p99-µs"], mb["cpu-µs/op"]), "", ""})
	}
	for _, s := range settings {
		if mb, ok := micro[fmt.Sprintf("clients=%d/callers=%d", s.workers, s.callers)]; ok {
			rows = append(rows, row{sec, fmt.Sprintf("**supervisor / micro-benchmark, round trips/s, %d x %d**", s.workers, s.callers),
				fmt.Sprintf("**%.2f**", ratio(realRPS[s], mb["rt/s"])), "", ""})
		}
	}
	return rows, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// delegateRun runs one "herdbench serve -mode delegate" cluster and
// returns its table value and its total round trips per second.
func delegateRun(ctx context.Context, e *env, i, workers, callers int) (val string, rps float64, err error) {
	o := e.o
	dir := filepath.Join(e.tmp, fmt.Sprintf("deleg-%d", i))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", 0, err
	}
	args := []string{"serve", "-mode", "delegate", "-workers", fmt.Sprint(workers), "-deleg-callers", fmt.Sprint(callers),
		"-deleg-dur", o.delegDur.String(), "-deleg-out", dir, "-control", "-", "-name", fmt.Sprintf("herdbench-deleg-%d", i)}
	p, err := startProc(fmt.Sprintf("delegate %dx%d", workers, callers), e.selfBin, args, nil)
	if err != nil {
		return "", 0, err
	}
	defer func() { err = errors.Join(err, p.stop(30*time.Second)) }()
	_, next, err := p.log.waitFor(0, time.Minute, func(h hevent) bool { return h.Msg == "delegate start" })
	if err != nil {
		return "", 0, err
	}
	a, _ := sampleCPU(p.pid())
	for range workers {
		if _, next, err = p.log.waitFor(next, o.delegDur+30*time.Second, func(h hevent) bool {
			return h.Msg == "delegate worker done"
		}); err != nil {
			return "", 0, err
		}
	}
	b, _ := sampleCPU(p.pid())
	if ctx.Err() != nil {
		return "", 0, ctx.Err()
	}
	var lat []time.Duration
	var elapsed time.Duration
	errs := 0
	first := ""
	for slot := range workers {
		raw, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("slot-%d.json", slot)))
		if err != nil {
			return "", 0, err
		}
		var r delegResult
		if err := json.Unmarshal(raw, &r); err != nil {
			return "", 0, err
		}
		for _, ns := range r.Lat {
			lat = append(lat, time.Duration(ns))
		}
		elapsed += time.Duration(r.Elapsed)
		errs += r.Errors
		if first == "" {
			first = r.FirstEr
		}
	}
	elapsed /= time.Duration(workers)
	rps = float64(len(lat)) / elapsed.Seconds()
	cpu := float64(b.onCPU-a.onCPU) / 1e3 / float64(max(len(lat), 1))
	logf("delegate %dx%d: %.0f rt/s, p50 %s p99 %s, %d errors %s", workers, callers, rps, ms(pct(lat, .5)), ms(pct(lat, .99)), errs, first)
	val = fmt.Sprintf("**%.0f rt/s**; %.0f µs / %.0f µs; %d errors; primary CPU %.1f µs per round trip",
		rps, float64(pct(lat, .5))/1e3, float64(pct(lat, .99))/1e3, errs, cpu)
	if errs > 0 {
		val += " (first: " + first + ")"
	}
	return val, rps, nil
}

// delegateMicro runs go test -bench=Delegate ./internal/ipc/ and returns
// each sub-benchmark's metrics by unit.
func delegateMicro(ctx context.Context) (map[string]map[string]float64, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return nil, errors.New("not run inside the herd module")
	}
	tctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	logf("running go test -run='^$' -bench=Delegate ./internal/ipc/")
	cmd := exec.CommandContext(tctx, "go", "test", "-run=^$", "-bench=Delegate", "./internal/ipc/")
	cmd.Dir = filepath.Dir(gomod)
	b, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, lastLines(string(b), 5))
	}
	res := map[string]map[string]float64{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkDelegate/") {
			continue
		}
		logf("%s", l)
		name := strings.TrimPrefix(f[0], "BenchmarkDelegate/")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i] // GOMAXPROCS suffix
		}
		m := map[string]float64{}
		for j := 2; j+1 < len(f); j += 2 {
			v, err := strconv.ParseFloat(f[j], 64)
			if err == nil {
				m[f[j+1]] = v
			}
		}
		res[name] = m
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("no BenchmarkDelegate lines: %s", lastLines(string(b), 5))
	}
	return res, nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(len(l)-n, 0):], " | ")
}
