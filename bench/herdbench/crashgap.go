package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"
)

// crashGapDelay is the respawn delay of the crash-gap measurement: the
// time a killed slot stays without a worker.
const crashGapDelay = 3 * time.Second

// benchCrashGap kills one of two workers and, while its slot waits out a
// 3s respawn delay, opens short connections with a 500ms timeout. In
// shared mode the other worker takes them all; in reuseport mode the
// kernel still hashes some to the empty slot's socket, where they wait.
func benchCrashGap(ctx context.Context, e *env) ([]row, error) {
	var rows []row
	for _, mode := range []string{"shared", "reuseport"} {
		r, err := crashGapOne(ctx, e, mode)
		rows = append(rows, r...)
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

func crashGapOne(ctx context.Context, e *env, mode string) (rows []row, err error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(e.tmp, "gap-"+mode)
	p, err := startHerdCluster(e, "demo "+mode, 2, "demo", "--listen", addr, "--workers", "2",
		"--balance", mode, "--startup-delay", "0", "--respawn-delay", crashGapDelay.String(), "--pid-dir", dir)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, p.stop(30*time.Second)) }()
	pid, err := readPID(filepath.Join(dir, "worker-1.pid"))
	if err != nil {
		return nil, err
	}
	m := p.log.mark()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return nil, err
	}
	if _, _, err := p.log.waitFor(m, 10*time.Second, func(h hevent) bool { return h.Event == "exited" && h.PID == pid }); err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res := runLoad(lctx, loadSpec{addr: addr, conns: 8, short: true, timeout: 500 * time.Millisecond})
	logf("%s, slot 1 dead: %d ok, failures %s", mode, res.ok, failSummary(res))
	return []row{{"6 crash gap " + mode, "short connections (500ms timeout) in the 2s after one of 2 workers died",
		fmt.Sprintf("%d ok, failed %s", res.ok, failSummary(res)), "", ""}}, nil
}
