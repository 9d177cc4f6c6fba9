package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// server is one HTTP server under test.
type server struct {
	name string
	addr string
	p    *proc
}

// startServers starts the plain server and a 2-worker herd cluster in each
// balance mode, all serving the same handler on ports of their own.
func startServers(e *env) ([]*server, error) {
	variants := []struct {
		name string
		args []string
		env  []string
	}{
		{"plain net/http", []string{"-mode", "plain"}, []string{"GOMAXPROCS=2"}},
		{"herd shared", []string{"-mode", "herd", "-workers", "2", "-balance", "shared"}, nil},
		{"herd reuseport", []string{"-mode", "herd", "-workers", "2", "-balance", "reuseport"}, nil},
	}
	var servers []*server
	for _, v := range variants {
		addr, err := freeAddr()
		if err != nil {
			return servers, err
		}
		args := append([]string{"serve", "-listen", addr}, v.args...)
		p, err := startProc(v.name, e.selfBin, args, v.env)
		if err != nil {
			return servers, err
		}
		servers = append(servers, &server{name: v.name, addr: addr, p: p})
		if strings.HasPrefix(v.name, "plain") {
			_, _, err = p.log.waitFor(0, 30*time.Second, func(h hevent) bool { return h.Msg == "plain ready" })
		} else {
			err = p.log.waitReady(0, 2, 30*time.Second)
		}
		if err != nil {
			return servers, fmt.Errorf("%s: %w", v.name, err)
		}
	}
	return servers, nil
}

func stopServers(servers []*server) error {
	var errs []error
	for _, s := range servers {
		errs = append(errs, s.p.stop(20*time.Second))
	}
	return errors.Join(errs...)
}

// benchThroughput measures req/s of each server with the same keep-alive
// load, interleaved: odd rounds go plain, shared, reuseport, even rounds
// the other way round.
func benchThroughput(ctx context.Context, e *env) (rows []row, err error) {
	servers, err := startServers(e)
	defer func() { err = errors.Join(err, stopServers(servers)) }()
	if err != nil {
		return nil, err
	}
	o := e.o
	runs := map[string][]*loadResult{}
	for round := range o.tputRounds {
		order := append([]*server(nil), servers...)
		if round%2 == 1 {
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		for _, s := range order {
			spec := loadSpec{addr: s.addr, conns: o.tputConns, bodies: true}
			timed(ctx, time.Second, spec) // warm-up, not counted
			r := timed(ctx, o.tputDur, spec)
			logf("round %d %-15s %8.0f req/s  failures %s  p50 %s p99 %s", round+1, s.name,
				r.rps(), failSummary(r), ms(pct(r.lat, .5)), ms(pct(r.lat, .99)))
			runs[s.name] = append(runs[s.name], r)
			if ctx.Err() != nil {
				return rows, ctx.Err()
			}
		}
	}
	return throughputRows(servers, runs), nil
}

// timed runs spec for d.
func timed(ctx context.Context, d time.Duration, spec loadSpec) *loadResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return runLoad(ctx, spec)
}

func throughputRows(servers []*server, runs map[string][]*loadResult) []row {
	mean := map[string]float64{}
	var rows []row
	for _, s := range servers {
		var per []string
		var sum float64
		var fails int64
		for _, r := range runs[s.name] {
			per = append(per, fmt.Sprintf("%.0f", r.rps()))
			sum += r.rps()
			fails += r.fail
		}
		mean[s.name] = sum / float64(len(runs[s.name]))
		rows = append(rows, row{"1 throughput", s.name + " req/s mean (per run)",
			fmt.Sprintf("%.0f (%s); failures %d; requests per slot %s", mean[s.name], strings.Join(per, ", "),
				fails, slotShares(runs[s.name])), "", ""})
	}
	plain := servers[0].name
	for _, s := range servers[1:] {
		var per []string
		for i, r := range runs[s.name] {
			per = append(per, fmt.Sprintf("%.3f", ratio(r.rps(), runs[plain][i].rps())))
		}
		q := ratio(mean[s.name], mean[plain])
		rows = append(rows, row{"1 throughput", s.name + " / plain", fmt.Sprintf("%.3f (rounds: %s)",
			q, strings.Join(per, ", ")), ">= 0.95", verdict(q >= 0.95)})
	}
	for _, s := range servers[1:] {
		rows = append(rows, s.p.unexpectedRow("1 throughput", "start"))
	}
	return rows
}

// slotShares says which share of the requests each slot served, per run.
func slotShares(runs []*loadResult) string {
	var out []string
	for _, r := range runs {
		var parts []string
		for body, n := range r.bodies {
			slot := strings.TrimSpace(strings.TrimPrefix(body, "hello from slot "))
			parts = append(parts, fmt.Sprintf("%s:%.0f%%", slot, 100*float64(n)/float64(r.ok)))
		}
		sort.Strings(parts)
		out = append(out, strings.Join(parts, " "))
	}
	return strings.Join(out, ", ")
}
