package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// distWorkers is the number of workers the distribution is measured over.
const distWorkers = 4

// benchDistribution opens many short connections (one request each) to a
// 4-worker cluster in each balance mode and counts which slot answered.
func benchDistribution(ctx context.Context, e *env) ([]row, error) {
	var rows []row
	for _, mode := range []string{"shared", "reuseport"} {
		r, err := distributionOne(ctx, e, mode)
		rows = append(rows, r...)
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

func distributionOne(ctx context.Context, e *env, mode string) (rows []row, err error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "-mode", "herd", "-listen", addr, "-workers", fmt.Sprint(distWorkers), "-balance", mode}
	p, err := startProc("herd "+mode, e.selfBin, args, nil)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, p.stop(20*time.Second)) }()
	if err := p.log.waitReady(0, distWorkers, 30*time.Second); err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	res := runLoad(lctx, loadSpec{addr: addr, conns: 8, short: true, requests: int64(e.o.distConns), bodies: true})
	counts := make([]int64, distWorkers)
	var other int64
	for body, n := range res.bodies {
		var slot int
		if _, err := fmt.Sscanf(body, "hello from slot %d", &slot); err != nil || slot < 0 || slot >= distWorkers {
			other += n
			continue
		}
		counts[slot] += n
	}
	lo, hi := int64(math.MaxInt64), int64(0)
	var per []string
	for slot, n := range counts {
		lo, hi = min(lo, n), max(hi, n)
		per = append(per, fmt.Sprintf("%d:%d", slot, n))
	}
	q := ratio(float64(hi), float64(lo))
	logf("%s: per slot %s, failures %s, %.0f conn/s", mode, strings.Join(per, " "), failSummary(res), res.rps())
	rows = append(rows,
		row{"2 distribution", mode + " connections per slot", strings.Join(per, " ") +
			fmt.Sprintf(" (failures %s, unknown bodies %d, %.0f conn/s)", failSummary(res), other, res.rps()), "", ""},
		row{"2 distribution", mode + " max/min", fmt.Sprintf("%.3f", q), "(lower is better)", ""},
		p.unexpectedRow("2 distribution", "start"))
	return rows, nil
}
