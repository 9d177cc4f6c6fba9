package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat
// (100 on every Linux architecture Go supports).
const clockTicks = 100

// cpuSample is what /proc says of a process at one moment.
type cpuSample struct {
	at       time.Time
	ticks    int64 // utime + stime
	onCPU    int64 // nanoseconds on CPU, summed over its threads' sum_exec_runtime
	switches int64 // voluntary + involuntary context switches of its threads
}

// benchIdle runs herd with many sleeping command workers and measures the
// primary's CPU time over a window, and its memory.
func benchIdle(ctx context.Context, e *env) (rows []row, err error) {
	o := e.o
	n := fmt.Sprint(o.idleWorkers)
	args := []string{"--workers", n, "--ready", "delay", "--ready-delay", "100ms", "--pid-dir", filepath.Join(e.tmp, "idle")}
	if o.idleListen {
		args = append(args, "--listen", "127.0.0.1:0") // the accept queues are watched
	}
	p, err := startHerdCluster(e, "idle", o.idleWorkers, "run", append(args, "--", "sleep", "3600")...)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, p.stop(30*time.Second)) }()
	logf("%d workers ready; settling 5s", o.idleWorkers)
	if !sleepUntil(ctx, time.Now().Add(5*time.Second)) {
		return nil, ctx.Err()
	}
	a, err := sampleCPU(p.pid())
	if err != nil {
		return nil, err
	}
	if !sleepUntil(ctx, time.Now().Add(o.idleWindow)) {
		return nil, ctx.Err()
	}
	b, err := sampleCPU(p.pid())
	if err != nil {
		return nil, err
	}
	rss, hwm, threads := procStatus(p.pid())
	wall := b.at.Sub(a.at)
	tickPct := float64(b.ticks-a.ticks) / clockTicks / wall.Seconds() * 100
	nsPct := float64(b.onCPU-a.onCPU) / float64(wall) * 100
	wakeups := float64(b.switches-a.switches) / wall.Seconds()
	logf("idle: %.3f%% (ticks) %.4f%% (sum_exec_runtime) rss %d kB", tickPct, nsPct, rss)
	sec := fmt.Sprintf("5 idle primary, %d workers", o.idleWorkers)
	if o.idleListen {
		sec += ", one TCP listener"
	}
	return []row{
		{sec, fmt.Sprintf("CPU over %s, utime+stime (%d ticks)", wall.Round(time.Millisecond), b.ticks-a.ticks),
			fmt.Sprintf("%.3f %% of one core", tickPct), "<= 0.1 %", verdict(tickPct <= 0.1)},
		{sec, "CPU over the same window, threads' se.sum_exec_runtime", fmt.Sprintf("%.4f %% of one core (%.3f ms; %.1f ms since start)",
			nsPct, float64(b.onCPU-a.onCPU)/1e6, float64(b.onCPU)/1e6), "", ""},
		{sec, "context switches of the primary's threads", fmt.Sprintf("%.1f /s (%d threads)", wakeups, threads), "", ""},
		{sec, "VmRSS (VmHWM)", fmt.Sprintf("%.1f MB (%.1f MB)", float64(rss)/1024, float64(hwm)/1024),
			"<= 30 MB", verdict(float64(rss)/1024 <= 30)},
	}, nil
}

// sampleCPU reads pid's CPU time from /proc.
func sampleCPU(pid int) (cpuSample, error) {
	s := cpuSample{at: time.Now()}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14 of stat
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	s.ticks = ut + st
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	for _, t := range tasks {
		s.onCPU += sumExecRuntime(t + "/sched")
		vol := statusField(t+"/status", "voluntary_ctxt_switches")
		invol := statusField(t+"/status", "nonvoluntary_ctxt_switches")
		s.switches += vol + invol
	}
	return s, nil
}

// sumExecRuntime reads se.sum_exec_runtime (milliseconds with six
// decimals) from a /proc/.../sched file and returns nanoseconds, or 0.
func sumExecRuntime(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "se.sum_exec_runtime" {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f * 1e6)
		}
	}
	return 0
}

// procStatus returns VmRSS and VmHWM in kB and the thread count of pid.
func procStatus(pid int) (rss, hwm, threads int64) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	return statusField(path, "VmRSS"), statusField(path, "VmHWM"), statusField(path, "Threads")
}

// statusField returns the first number of the line "key:" of a
// /proc/.../status file, or 0.
func statusField(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			if f := strings.Fields(v); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
