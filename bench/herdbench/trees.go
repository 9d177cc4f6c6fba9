package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// treesDaemon is a worker that leaves processes behind in every way a
// program can: a child holding its output pipes, an orphan in its process
// group, a daemon (setsid, double fork) outside it.
const treesDaemon = `sleep 300 &
( sleep 301 & )
( setsid sleep 302 </dev/null >/dev/null 2>&1 & )
exec sleep 100000`

// seenWithin bounds the wait for herd to see a death.
const seenWithin = 5 * time.Second

// benchTrees measures what herd does about a worker's descendants: how
// long it takes to see a worker die while a child holds its pipes, how
// many processes are left after each way a worker or the primary ends, and
// the primary's threads with 64 workers (no thread is parked per worker).
func benchTrees(ctx context.Context, e *env) ([]row, error) {
	var rows []row
	for _, c := range []struct{ name, script string }{
		{"no child", "exec sleep 100000"},
		{"a child holding stdout/stderr", "sleep 300 & exec sleep 100000"},
	} {
		r, err := deathSeen(ctx, e, c.name, c.script)
		rows = append(rows, r...)
		if err != nil {
			return rows, err
		}
	}
	r, err := leftAfter(ctx, e)
	rows = append(rows, r...)
	if err != nil {
		return rows, err
	}
	r, err = threadsAt(e, 64)
	return append(rows, r...), err
}

// deathSeen kills each of 8 workers running script once and times kill -9
// to herd's "worker exited" line.
func deathSeen(ctx context.Context, e *env, name, script string) (rows []row, err error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(e.tmp, "death-"+strings.ReplaceAll(name, " ", "-"))
	const workers = 8
	p, err := startHerdCluster(e, "death "+name, workers, "run", "--workers", fmt.Sprint(workers), "--listen", addr,
		"--ready-delay", "100ms", "--respawn-delay", "1ms", "--startup-delay", "0", "--shutdown-timeout", "2s",
		"--pid-dir", dir, "--", "sh", "-c", script)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, p.stop(10*time.Second)) }()
	var seen []time.Duration
	missed := 0
	for slot := range workers {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		pid, err := readPID(filepath.Join(dir, fmt.Sprintf("worker-%d.pid", slot)))
		if err != nil {
			return nil, err
		}
		m := p.log.mark()
		t0 := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return nil, err
		}
		ev, _, err := p.log.waitFor(m, seenWithin, func(h hevent) bool { return h.Event == "exited" && h.PID == pid })
		if err != nil {
			missed++
			continue
		}
		seen = append(seen, ev.Time.Sub(t0))
	}
	v := "never (" + strconv.Itoa(missed) + " of " + strconv.Itoa(workers) + " not seen within " + seenWithin.String() + ")"
	if missed == 0 {
		v = ms(pct(seen, .5)) + " / " + ms(pct(seen, 1))
	}
	logf("death with %s: %s", name, v)
	return []row{{"6 trees", "kill -9 of a worker with " + name + " to \"worker exited\", p50 / max", v, "", ""}}, nil
}

// leftAfter counts the processes carrying the cluster's name after each
// way its workers end, with the daemonising worker.
func leftAfter(ctx context.Context, e *env) (rows []row, err error) {
	name := fmt.Sprintf("trees-%d", os.Getpid())
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(e.tmp, "trees")
	start := func() (*proc, error) {
		return startHerdCluster(e, "trees", 2, "run", "--name", name, "--workers", "2", "--listen", addr,
			"--ready-delay", "100ms", "--startup-delay", "0", "--shutdown-timeout", "2s", "--control", "-",
			"--pid-dir", dir, "--", "sh", "-c", treesDaemon)
	}
	defer func() {
		for _, pid := range named(name) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}()
	count := func(what string, kvs ...string) {
		n := settle(name, kvs...)
		logf("left after %s: %d", what, n)
		rows = append(rows, row{"6 trees", "processes left after " + what, strconv.Itoa(n), "0", verdict(n == 0)})
	}
	p, err := start()
	if err != nil {
		return nil, err
	}
	if err := workerEnds(p, dir, count); err != nil {
		return rows, errors.Join(err, p.stop(10*time.Second))
	}
	stopped := time.Now()
	err = p.stop(30 * time.Second)
	logf("herd stop took %s", time.Since(stopped).Round(time.Millisecond))
	rows = append(rows, row{"6 trees", "herd stop (SIGTERM) with daemonised children: time to exit", ms(time.Since(stopped)), "", ""})
	count("herd stop")
	if err != nil {
		return rows, err
	}
	if p, err = start(); err != nil {
		return rows, err
	}
	time.Sleep(300 * time.Millisecond) // the scripts start their daemons
	p.signal(syscall.SIGKILL)
	<-p.done
	count("kill -9 of the primary")
	return rows, ctx.Err()
}

// workerEnds ends workers of p in turn (an exit of its own, a rolling
// restart, a scale-down) and counts what each left.
func workerEnds(p *proc, dir string, count func(string, ...string)) error {
	pid, err := readPID(filepath.Join(dir, "worker-0.pid"))
	if err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond) // the script starts its daemons
	syscall.Kill(pid, syscall.SIGTERM)
	count("a worker exited (SIGTERM to it, not from herd)", "HERD_WORKER_ID=0", "HERD_GENERATION=1")
	for _, step := range []struct {
		sig  syscall.Signal
		what string
		kvs  []string // what must be gone after it
	}{
		{syscall.SIGUSR2, "a rolling restart", []string{"HERD_GENERATION=1"}}, // slot 1's first worker
		{syscall.SIGTTOU, "a scale-down", []string{"HERD_WORKER_ID=1"}},
	} {
		m := p.log.mark()
		p.signal(step.sig)
		if _, _, err := p.log.waitFor(m, 30*time.Second, func(h hevent) bool {
			return h.Event == "rollout_finished" || h.Event == "scaled"
		}); err != nil {
			return fmt.Errorf("%s: %w", step.what, err)
		}
		time.Sleep(300 * time.Millisecond)
		count(step.what, step.kvs...)
	}
	return nil
}

// settle waits up to 3s for no process of the cluster name whose
// environment also holds every one of kvs to be left, and returns how
// many are.
func settle(name string, kvs ...string) int {
	end := time.Now().Add(3 * time.Second)
	for {
		n := len(named(name, kvs...))
		if n == 0 || time.Now().After(end) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// named returns the live processes whose environment holds HERD_NAME=name
// and every one of kvs ("KEY=VALUE").
func named(name string, kvs ...string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
next:
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || !processAlive(pid, 0) {
			continue
		}
		env, err := os.ReadFile("/proc/" + d.Name() + "/environ")
		if err != nil {
			continue
		}
		env = append(append([]byte{0}, env...), 0)
		for _, kv := range append(kvs, "HERD_NAME="+name) {
			if !bytes.Contains(env, []byte("\x00"+kv+"\x00")) {
				continue next
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// threadsAt counts the primary's threads with n sleeping command workers.
func threadsAt(e *env, n int) (rows []row, err error) {
	p, err := startHerdCluster(e, "threads", n, "run", "--workers", fmt.Sprint(n), "--ready-delay", "100ms",
		"--startup-delay", "0", "--control", "-", "--", "sleep", "100000")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, p.stop(30*time.Second)) }()
	time.Sleep(time.Second)
	_, _, threads := procStatus(p.pid())
	logf("threads at %d workers: %d", n, threads)
	return []row{{"6 trees", fmt.Sprintf("threads of the primary with %d workers", n), strconv.FormatInt(threads, 10), "", ""}}, nil
}
