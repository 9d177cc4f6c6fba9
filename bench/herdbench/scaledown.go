package main

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// scaleDowns is how many times the scale-down measurement removes a worker.
const scaleDowns = 10

// benchScaleDown scales a 4-worker demo cluster to 3 and back, again and
// again (SIGTTOU, SIGTTIN), under a load that opens a new connection for
// every request and never retries, and counts the requests that failed.
// With reuseport the removed slot's socket must get no new connection and
// have its queue served before it is closed.
func benchScaleDown(ctx context.Context, e *env) ([]row, error) {
	var rows []row
	for _, mode := range []string{"shared", "reuseport"} {
		r, err := scaleDownOne(ctx, e, mode)
		rows = append(rows, r...)
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

func scaleDownOne(ctx context.Context, e *env, mode string) (rows []row, err error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p, err := startHerdCluster(e, "demo "+mode, 4, "demo", "--listen", addr, "--workers", "4",
		"--max-workers", "4", "--balance", mode, "--startup-delay", "0")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, p.stop(30*time.Second)) }()
	lctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	done := make(chan *loadResult, 1)
	go func() { done <- runLoad(lctx, loadSpec{addr: addr, conns: 16, short: true}) }()
	for i := 0; i < scaleDowns && err == nil; i++ {
		time.Sleep(200 * time.Millisecond) // load on every slot
		err = scaleStep(p, syscall.SIGTTOU, "exited")
		if err == nil {
			err = scaleStep(p, syscall.SIGTTIN, "ready")
		}
	}
	cancel()
	res := <-done
	if err != nil {
		return nil, err
	}
	logf("%s, %d scale-downs: %d ok, failures %s", mode, scaleDowns, res.ok, failSummary(res))
	return []row{{"12 scale-down " + mode, fmt.Sprintf("new-connection requests failed over %d scale-downs 4→3→4", scaleDowns),
		fmt.Sprintf("%s of %d (%.1f per scale-down)", failSummary(res), res.ok+res.fail, float64(res.fail)/scaleDowns), "0", verdict(res.fail == 0)}}, nil
}

// scaleStep sends sig to the primary and waits for slot 3's worker to be
// event (exited or ready).
func scaleStep(p *proc, sig syscall.Signal, event string) error {
	m := p.log.mark()
	if err := p.cmd.Process.Signal(sig); err != nil {
		return err
	}
	_, _, err := p.log.waitFor(m, 30*time.Second, func(h hevent) bool {
		return h.Event == event && h.Slot != nil && *h.Slot == 3
	})
	return err
}
