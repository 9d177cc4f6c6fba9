package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"
)

// eventsTally is what the GET /events clients of one round saw.
type eventsTally struct {
	clients    int
	complete   int // clients that received every kill's exited, started and ready
	missing    int // such events missing, over all clients
	dropped    uint64
	errs       int
	lagSlowest []time.Duration // per kill: kill to the ready event read by the last client
	lagMedian  []time.Duration // per kill: the same for the median client
}

// benchEvents measures kill -9 to a ready replacement (as benchRespawn
// does, with a 1ms respawn delay) on two demo clusters side by side: one
// with no GET /events client, one with eventsClients clients each reading
// its stream. The kills alternate between the two clusters.
func benchEvents(ctx context.Context, e *env) ([]row, error) {
	o := e.o
	var quiet, busy []killSample
	tally := &eventsTally{}
	var errs error
	for r := range o.eventsRounds {
		q, b, err := eventsRound(ctx, e, r, tally)
		quiet, busy = append(quiet, q...), append(busy, b...)
		if err != nil {
			errs = err
			break
		}
	}
	qTotal, bTotal := totals(quiet), totals(busy)
	q50, q99 := pct(qTotal, .5), pct(qTotal, .99)
	b50, b99 := pct(bTotal, .5), pct(bTotal, .99)
	r50 := ratio(float64(b50), float64(q50))
	r99 := ratio(float64(b99), float64(q99))
	logf("events: 0 clients p50 %s p99 %s; %d clients p50 %s p99 %s; ratio %.3f / %.3f",
		ms(q50), ms(q99), o.eventsClients, ms(b50), ms(b99), r50, r99)
	sec := "8 kill -9 with GET /events clients"
	rows := []row{
		{sec, fmt.Sprintf("kill to replacement ready, 0 clients: p50 / p99 / max (%d kills)", len(quiet)),
			ms(q50) + " / " + ms(q99) + " / " + ms(pct(qTotal, 1)), "", ""},
		{sec, fmt.Sprintf("kill to replacement ready, %d clients: p50 / p99 / max (%d kills)", o.eventsClients, len(busy)),
			ms(b50) + " / " + ms(b99) + " / " + ms(pct(bTotal, 1)), "", ""},
		{sec, fmt.Sprintf("**%d clients / 0 clients, p50**", o.eventsClients), fmt.Sprintf("**%.3f**", r50), "<= 1.10", verdict(r50 <= 1.10)},
		{sec, fmt.Sprintf("%d clients / 0 clients, p99", o.eventsClients), fmt.Sprintf("%.3f", r99), "", ""},
		{sec, "p50 of kill to exit logged / exit to respawn started / started to ready, 0 vs 100 clients",
			phases(quiet) + " vs " + phases(busy), "", ""},
		{sec, "kill to the ready event read by the median / the slowest client, p50 (p99)",
			fmt.Sprintf("%s (%s) / %s (%s)", ms(pct(tally.lagMedian, .5)), ms(pct(tally.lagMedian, .99)),
				ms(pct(tally.lagSlowest, .5)), ms(pct(tally.lagSlowest, .99))), "", ""},
		{sec, "**clients that received exited, started and ready of every kill**",
			fmt.Sprintf("**%d of %d** (%d events missing, %d dropped notices, %d read errors)",
				tally.complete, tally.clients, tally.missing, tally.dropped, tally.errs),
			"all", verdict(tally.clients > 0 && tally.complete == tally.clients)},
	}
	return rows, errs
}

func totals(ks []killSample) []time.Duration {
	var ds []time.Duration
	for _, k := range ks {
		ds = append(ds, k.total)
	}
	return ds
}

// phases formats the p50 of the three parts of a kill as in benchRespawn.
func phases(ks []killSample) string {
	var a, b, c []time.Duration
	for _, k := range ks {
		a, b, c = append(a, k.noticed), append(b, k.respawn), append(c, k.startup)
	}
	return fmt.Sprintf("%.3f / %.3f / %.3f ms", msf(pct(a, .5)), msf(pct(b, .5)), msf(pct(c, .5)))
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// eventsRound starts the two clusters, connects the clients to one of
// them, kills every slot of both once, alternating, and checks what the
// clients received.
func eventsRound(ctx context.Context, e *env, round int, t *eventsTally) (quiet, busy []killSample, err error) {
	o := e.o
	type cl struct {
		p    *proc
		dir  string
		sock string
	}
	var cls [2]cl
	for i := range cls {
		tag := fmt.Sprintf("events-%d-%d", round, i)
		addr, err := freeAddr()
		if err != nil {
			return nil, nil, err
		}
		dir, sock := filepath.Join(e.tmp, tag), filepath.Join(e.tmp, tag+".sock")
		p, err := startHerdCluster(e, "demo "+tag, o.eventsWorkers, "demo", "--listen", addr,
			"--workers", fmt.Sprint(o.eventsWorkers), "--startup-delay", "0", "--respawn-delay", "1ms",
			"--pid-dir", dir, "--control", sock, "--name", tag)
		if err != nil {
			return nil, nil, err
		}
		cls[i] = cl{p, dir, sock}
		defer func() { err = errors.Join(err, p.stop(30*time.Second)) }()
	}

	sctx, cancel := context.WithCancel(ctx)
	var clients []*sseClient
	defer func() {
		cancel()
		for _, c := range clients {
			<-c.done
		}
	}()
	for range o.eventsClients {
		c, err := openSSE(sctx, cls[1].sock)
		if err != nil {
			return nil, nil, fmt.Errorf("GET /events client %d: %w", len(clients), err)
		}
		clients = append(clients, c)
	}
	deadline := time.After(10 * time.Second)
	for _, c := range clients {
		select {
		case <-c.subscribed:
		case <-deadline:
			return nil, nil, errors.New("GET /events clients not subscribed within 10s")
		}
	}
	time.Sleep(300 * time.Millisecond)

	type kill struct{ old, new int }
	var kills []kill
	for slot := range o.eventsWorkers {
		order := []int{0, 1}
		if (slot+round)%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			if ctx.Err() != nil {
				return quiet, busy, ctx.Err()
			}
			t0 := time.Now()
			k, err := killOne(cls[i].p, cls[i].dir, slot)
			if err != nil {
				return quiet, busy, fmt.Errorf("cluster %d slot %d: %w", i, slot, err)
			}
			if i == 0 {
				quiet = append(quiet, k)
			} else {
				busy = append(busy, k)
				kills = append(kills, kill{k.prevPID, k.finalPID})
				t.lagSlowest, t.lagMedian = append(t.lagSlowest, 0), append(t.lagMedian, 0)
				idx := len(t.lagSlowest) - 1
				t.recordLag(clients, k.finalPID, t0, idx)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(500 * time.Millisecond)
	for _, c := range clients {
		missing := 0
		for _, k := range kills {
			for _, want := range []struct {
				typ string
				pid int
			}{{"exited", k.old}, {"started", k.new}, {"ready", k.new}} {
				if _, ok := c.find(func(e sseEvent) bool { return e.Type == want.typ && e.PID == want.pid }); !ok {
					missing++
				}
			}
		}
		for _, e := range c.events() {
			t.dropped += e.Dropped
		}
		c.mu.Lock()
		if c.err != nil {
			t.errs++
		}
		c.mu.Unlock()
		t.clients++
		t.missing += missing
		if missing == 0 {
			t.complete++
		}
	}
	return quiet, busy, nil
}

// recordLag waits (up to 2s) until every client has read the ready event
// of pid and records, at index idx, the time from t0 to when the median
// and the last client read it.
func (t *eventsTally) recordLag(clients []*sseClient, pid int, t0 time.Time, idx int) {
	end := time.Now().Add(2 * time.Second)
	var lags []time.Duration
	for {
		lags = lags[:0]
		for _, c := range clients {
			if ev, ok := c.find(func(e sseEvent) bool { return e.Type == "ready" && e.PID == pid }); ok {
				lags = append(lags, ev.At.Sub(t0))
			}
		}
		if len(lags) == len(clients) || time.Now().After(end) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if len(lags) == 0 {
		return
	}
	slices.Sort(lags)
	t.lagMedian[idx] = lags[len(lags)/2]
	t.lagSlowest[idx] = lags[len(lags)-1]
	if len(lags) < len(clients) {
		t.lagSlowest[idx] = 2 * time.Second
	}
}
