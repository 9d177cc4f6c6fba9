package compat

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/testkit"
)

// respawnLimit is how soon a process killed with SIGKILL must have a
// successor.
const respawnLimit = 2 * time.Second

// TestServers runs every recipe of servers through the checks the package
// documentation lists.
func TestServers(t *testing.T) {
	if testing.Short() {
		t.Skip("the compatibility suite runs real servers for minutes; not with -short")
	}
	need(t, "wrk", "Debian package wrk")
	for _, s := range servers {
		t.Run(s.id(), func(t *testing.T) { checkServer(t, s) })
	}
}

// checkServer runs one recipe under herd and checks it.
func checkServer(t *testing.T, s server) {
	dir := t.TempDir()
	addr := testkit.FreeAddr(t)
	r := s.setup(t, dir, addr)
	res := &result{Server: s.name, Variant: s.variant, Recipe: r.commandLine(dir), Bound: s.bound}
	report.add(res)
	c := startCluster(t, dir, addr, r.env, r.flags, r.argv)

	code, body, err := c.get("/")
	if err != nil || code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("GET / through the inherited socket: %d %q %v; want 200 with ok", code, body, err)
	}
	res.Serves = true

	url := "http://" + addr + "/"
	reload := func() error {
		if out, err := c.herd("reload"); err != nil {
			return fmt.Errorf("herd reload: %v: %s", err, out)
		}
		return nil
	}
	for i, closeEach := range []bool{false, true} {
		l, err := underLoad(t, url, closeEach, reload)
		if err != nil {
			t.Fatal(err)
		}
		res.Loads[i] = l
		c.waitActive(30 * time.Second)
		if l.Errors() > s.bound[i] {
			t.Errorf("%s: rolling restart under wrk (%s): %v; want at most %d failed", s.id(), loadName[i], l, s.bound[i])
		}
	}

	checkKills(t, c, s, res)
	checkStop(t, c, res)
	res.ShutSocket = strings.Contains(c.out.String(), "it listens again")
}

// loadName names the two wrk runs, keep-alive and one request per
// connection.
var loadName = [2]string{"keep-alive", "Connection: close"}

// checkKills kills a worker with SIGKILL, and the server's own master where
// it has one, and checks each is replaced within respawnLimit.
func checkKills(t *testing.T, c *cluster, s server, res *result) {
	doc := c.waitActive(30 * time.Second)
	top := doc.Workers[0].PID
	if s.master {
		kids := readProcs().children(top)
		if len(kids) == 0 {
			t.Fatalf("the server's master %d has no worker processes", top)
		}
		victim := kids[0]
		kill9(t, victim.PID)
		start := time.Now()
		ok := poll(10*time.Second, func() bool {
			now := readProcs().children(top)
			return len(now) >= len(kids) && !slices.ContainsFunc(now, func(p proc) bool { return p == victim })
		})
		res.WorkerRespawn = measured(ok, start)
		if !ok || time.Since(start) > respawnLimit {
			t.Errorf("kill -9 of the server's worker %d: replaced in %s; want within %v", victim.PID, res.WorkerRespawn, respawnLimit)
		}
	}
	tab := readProcs()
	kids := tab.descendants(top)
	kill9(t, top)
	start := time.Now()
	var last string
	ok := poll(10*time.Second, func() bool {
		d, err := c.stats()
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%+v", d.Workers[0])
		return d.Workers[0].PID != 0 && d.Workers[0].PID != top
	})
	took := measured(ok, start)
	if s.master {
		res.MasterRespawn = took
	} else {
		res.WorkerRespawn = took
	}
	if !ok || time.Since(start) > respawnLimit {
		t.Errorf("kill -9 of worker %d (herd's slot 0): replaced in %s; want within %v (last seen: %s)", top, took, respawnLimit, last)
	}
	if len(kids) > 0 {
		gone := poll(10*time.Second, func() bool {
			now := readProcs()
			return !slices.ContainsFunc(kids, now.alive)
		})
		if !gone {
			t.Errorf("kill -9 of worker %d: its processes %s outlived it", top, names(kids))
		}
	}
	c.waitActive(30 * time.Second)
	if code, _, err := c.get("/"); err != nil || code != 200 {
		t.Errorf("GET / after the kills: %d %v; want 200", code, err)
	}
}

// measured returns the time since start, or "never" as a negative
// duration when ok is false.
func measured(ok bool, start time.Time) time.Duration {
	if !ok {
		return -1
	}
	return time.Since(start)
}

// checkStop stops the cluster and checks that none of its processes, and
// nothing holding its port, is left.
func checkStop(t *testing.T, c *cluster, res *result) {
	tab := readProcs()
	tree := append(tab.descendants(c.cmd.Process.Pid), proc{PID: c.cmd.Process.Pid})
	if err := c.stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	var left []proc
	poll(2*time.Second, func() bool {
		now := readProcs()
		left = left[:0]
		for _, p := range tree[:len(tree)-1] {
			if now.alive(p) {
				left = append(left, p)
			}
		}
		for _, p := range marked(c.marker) {
			if !slices.Contains(left, p) {
				left = append(left, p)
			}
		}
		return len(left) == 0
	})
	res.Left = len(left)
	res.Stopped = true
	if len(left) > 0 {
		t.Errorf("after herd stop, processes of the cluster remain: %s", names(left))
	}
	if !portFree(c.addr) {
		t.Errorf("after herd stop, %s is still bound", c.addr)
	}
}

// lookPath returns prog's path, or prog when it is not found.
func lookPath(prog string) string {
	if p, err := exec.LookPath(prog); err == nil {
		return p
	}
	return prog
}
