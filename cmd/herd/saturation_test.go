package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/activation"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/testkit"
)

// helperSwitch makes the test binary run one of helpers, as the command
// workers of herd run. It is read before mainSwitch, which workers inherit
// from their primary.
const helperSwitch = "HERDCLI_TEST_HELPER"

// helperFlag names the file whose presence makes the "acceptor" helper
// stop accepting; with helperSlot set, only in that slot.
// helperDelay, when set, is how long the acceptor waits after each
// connection it accepts: a server slower than its load.
const (
	helperFlag  = "HERDCLI_TEST_FLAG"
	helperSlot  = "HERDCLI_TEST_SLOT"
	helperDelay = "HERDCLI_TEST_DELAY"
)

// stuck reports whether the acceptor helper must not accept now.
func stuck() bool {
	if slot := os.Getenv(helperSlot); slot != "" && slot != os.Getenv("HERD_WORKER_ID") {
		return false
	}
	_, err := os.Stat(os.Getenv(helperFlag))
	return err == nil
}

// helpers are the command workers of these tests.
var helpers = map[string]func() int{
	// acceptor accepts from the socket it inherits and closes each
	// connection, except while the file helperFlag names exists: then it
	// accepts nothing and stays alive, like a server whose every thread is
	// stuck.
	"acceptor": func() int {
		ls, err := activation.Listeners()
		if err != nil || len(ls) == 0 {
			fmt.Fprintln(os.Stderr, "no inherited socket:", err)
			return 3
		}
		for {
			if stuck() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			c, err := ls[0].Accept()
			if err != nil {
				return 0
			}
			c.Close()
			if d, err := time.ParseDuration(os.Getenv(helperDelay)); err == nil {
				time.Sleep(d)
			}
		}
	},
	// ownport ignores the socket it inherits and listens on one of its
	// own, as an app does that binds its port itself.
	"ownport": func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		fmt.Println("listening on", l.Addr())
		for {
			c, err := l.Accept()
			if err != nil {
				return 0
			}
			c.Close()
		}
	},
}

// runHelperIfAsked runs the helper named by helperSwitch and reports
// whether it did, with its exit status.
func runHelperIfAsked() (int, bool) {
	name := os.Getenv(helperSwitch)
	if name == "" {
		return 0, false
	}
	h, ok := helpers[name]
	if !ok {
		fmt.Fprintln(os.Stderr, "unknown helper", name)
		return 2, true
	}
	return h(), true
}

// saturationCluster starts herd run with two workers running helper on a
// port of its own, and returns herd's log, its port and its control
// socket.
func saturationCluster(t *testing.T, helper, balance string, env ...string) (*testkit.Buffer, string, string) {
	t.Helper()
	isolate(t)
	socket := filepath.Join(t.TempDir(), "c.sock")
	addr := testkit.FreeAddr(t)
	args := []string{"run", "--name", "sat", "--workers", "2", "--listen", "web=" + addr, "--balance", balance,
		"--ready-delay", "50ms", "--startup-delay", "0", "--shutdown-timeout", "2s", "--control", socket,
		"--log-format", "json", "--env", helperSwitch + "=" + helper}
	for _, e := range env {
		args = append(args, "--env", e)
	}
	p := startPrimary(t, socket, 2, nil, append(args, "--", os.Args[0])...)
	return p.stderr, addr, socket
}

// dialMany opens n connections to addr and closes them at the end of the
// test; a connection's handshake completes in the kernel whether or not a
// worker accepts it.
func dialMany(t *testing.T, addr string, n int) {
	t.Helper()
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
}

// waitOutput waits until herd's output holds want.
func waitOutput(t *testing.T, out *testkit.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("herd never wrote %q; it wrote:\n%s", want, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listenerStats returns the web listener of the primary's /stats.
func listenerStats(t *testing.T, socket string) control.ListenerStats {
	t.Helper()
	c, err := control.NewClient(control.Target{Socket: socket})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	doc, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Listeners) != 1 || doc.Listeners[0].Name != "web" {
		t.Fatalf("/stats listeners %+v; want the web listener", doc.Listeners)
	}
	return doc.Listeners[0]
}

// TestSaturationStopsAccepting runs workers that stop accepting: herd
// warns that connections wait and none is accepted, shows it in /stats,
// herd status and the metrics, and says when it is over.
func TestSaturationStopsAccepting(t *testing.T) {
	for _, balance := range []string{"shared", "reuseport"} {
		t.Run(balance, func(t *testing.T) {
			flag := filepath.Join(t.TempDir(), "stuck")
			out, addr, socket := saturationCluster(t, "acceptor", balance, helperFlag+"="+flag)
			dialMany(t, addr, 4) // accepted while the workers work
			if l := listenerStats(t, socket); l.QueueLimit == 0 || l.Stuck {
				t.Fatalf("working cluster: listener %+v; want a limit and not stuck", l)
			}
			if err := os.WriteFile(flag, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			dialMany(t, addr, 6)
			waitOutput(t, out, `"event":"saturated"`)
			if !strings.Contains(out.String(), "none was accepted for 2") {
				t.Errorf("the warning does not say what happens:\n%s", out.String())
			}
			l := listenerStats(t, socket)
			if !l.Stuck || l.QueueDepth < 1 {
				t.Errorf("stuck cluster: listener %+v; want stuck with connections waiting", l)
			}
			wantOK(t, cli(t, "status", "--control", socket), "listener web:", "STUCK")
			wantOK(t, cli(t, "status", "--control", socket, "--json"), `"listeners":[{"name":"web"`)
			os.Remove(flag)
			waitOutput(t, out, `"event":"saturation_cleared"`)
			if l := listenerStats(t, socket); l.Stuck || l.QueueDepth != 0 {
				t.Errorf("recovered cluster: listener %+v; want an empty queue", l)
			}
		})
	}
}

// TestSaturationOneSlot runs reuseport workers of which one stops
// accepting while the other goes on: the listener as a whole accepts, and
// herd names the slot whose socket nobody takes from.
func TestSaturationOneSlot(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "stuck")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out, addr, socket := saturationCluster(t, "acceptor", "reuseport", helperFlag+"="+flag, helperSlot+"=1")
	// New connections go to either slot's socket: among 20, some wait on
	// slot 1's.
	dialMany(t, addr, 20)
	waitOutput(t, out, `"event":"saturated"`)
	if !strings.Contains(out.String(), "listener web (slot 1): ") {
		t.Errorf("the warning does not name slot 1:\n%s", out.String())
	}
	l := listenerStats(t, socket)
	if len(l.Slots) != 2 || l.Slots[1].QueueDepth == 0 || l.Slots[0].QueueDepth != 0 || !l.Stuck {
		t.Errorf("listener %+v; want connections waiting on slot 1 only, stuck", l)
	}
	wantOK(t, cli(t, "status", "--control", socket), "on slot 1", "STUCK")
}

// TestAutoscaleOnQueue runs one worker that accepts a connection every
// 50ms under a burst of connections: they keep waiting although the
// worker accepts, and autoscaling adds a worker for it, not for CPU.
func TestAutoscaleOnQueue(t *testing.T) {
	isolate(t)
	socket := filepath.Join(t.TempDir(), "c.sock")
	addr := testkit.FreeAddr(t)
	p := startPrimary(t, socket, 1, nil, "run", "--name", "scaleq", "--workers", "1", "--max-workers", "2",
		"--listen", "web="+addr, "--ready-delay", "50ms", "--control", socket, "--log-format", "json",
		"--autoscale", "--scale-up-queue", "5", "--scale-up-after", "1s", "--scale-up-cpu", "99",
		"--env", helperSwitch+"=acceptor", "--env", helperDelay+"=50ms", "--", os.Args[0])
	dialMany(t, addr, 100) // 5s of work for the one worker
	waitOutput(t, p.stderr, `"event":"autoscale"`)
	if !strings.Contains(p.stderr.String(), "waited in the listen queue for 1s") {
		t.Errorf("autoscale for another reason:\n%s", p.stderr.String())
	}
}

// TestSaturationOwnPort runs an app that binds a port of its own instead
// of using the socket it inherits: every worker is ACTIVE, and herd warns
// that nothing accepts what reaches its port.
func TestSaturationOwnPort(t *testing.T) {
	out, addr, socket := saturationCluster(t, "ownport", "shared")
	dialMany(t, addr, 3)
	waitOutput(t, out, `"event":"saturated"`)
	wantOK(t, cli(t, "status", "--control", socket), "ACTIVE", "listener web: 3 of", "STUCK")
	r := cli(t, "status", "--control", socket, "--json")
	if !strings.Contains(r.stdout, `"queue_depth":3`) || !strings.Contains(r.stdout, `"stuck":true`) {
		t.Errorf("status --json: %s", r.stdout)
	}
}
