package main

import (
	"fmt"
	"strings"
)

// meanRPS is the mean req/s of rs.
func meanRPS(rs []wrkResult) float64 {
	sum := 0.0
	for _, r := range rs {
		sum += r.rps
	}
	return sum / float64(max(len(rs), 1))
}

// steadyP99 is the median of the rounds' p99, in milliseconds.
func steadyP99(rs []wrkResult) float64 {
	var ps []float64
	for _, r := range rs {
		ps = append(ps, float64(r.p99.Microseconds())/1000)
	}
	if len(ps) == 0 {
		return 0
	}
	for i := range ps {
		for j := i + 1; j < len(ps); j++ {
			if ps[j] < ps[i] {
				ps[i], ps[j] = ps[j], ps[i]
			}
		}
	}
	return ps[len(ps)/2]
}

// peerRows are the table rows of one setup: throughput (with its ratio to
// the herd setup of its group) and each disruption phase.
func peerRows(p peer, setups []peer, steady map[string][]wrkResult, d disruption) []row {
	sec := "14 peers, " + p.name
	rs := steady[p.name]
	var per []string
	fails := int64(0)
	for _, r := range rs {
		per = append(per, fmt.Sprintf("%.0f", r.rps))
		fails += r.failed()
	}
	mine := meanRPS(rs)
	ratio := ""
	for _, q := range setups {
		if ratio == "" && q.group == p.group && q.herd && q.name != p.name {
			ratio = fmt.Sprintf("; herd / this = %.2f", meanRPS(steady[q.name])/mine)
		}
	}
	rows := []row{{sec, "steady: req/s mean (per round); p99; failed",
		fmt.Sprintf("%.0f (%s); p99 %.2f ms; %d failed%s", mine, strings.Join(per, ", "), steadyP99(rs), fails, ratio), "", ""}}
	base := steadyP99(rs)
	phase := func(name string, r *wrkResult, extra string) {
		if r == nil {
			rows = append(rows, row{sec, name, "n/a: " + extra, "", ""})
			return
		}
		detail := ""
		if r.errDetails != "" {
			detail = " (" + r.errDetails + ")"
		}
		rows = append(rows, row{sec, name, fmt.Sprintf("%d of %d failed%s; p99 %.2f ms = %.1f× steady; %s",
			r.failed(), r.reqs+r.sockErrs, detail, float64(r.p99.Microseconds())/1000,
			float64(r.p99.Microseconds())/1000/max(base, 0.001), extra), "", ""})
	}
	restarts := "3 restarts"
	if d.restarts == nil {
		restarts = "no rolling restart"
	}
	phase("3 rolling restarts in 10s", d.restarts, restarts)
	kills := fmt.Sprintf("%d workers killed", d.killed)
	if d.kills == nil {
		kills = "one process: a kill is an outage"
	}
	phase("kill -9 of a worker every 250ms for 10s", d.kills, kills)
	if d.recycles == nil {
		phase("memory recycles (app keeps 16 KiB per request; limit 96 MiB)", nil, "no memory limit")
	} else {
		phase("memory recycles (app keeps 16 KiB per request; limit 96 MiB)", d.recycles, fmt.Sprintf("%d workers replaced", d.replaced))
	}
	return rows
}
