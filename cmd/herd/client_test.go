package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/testkit"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/control/controltest"
	"github.com/herd-cluster/herd/internal/logs"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// fakePrimary serves the API of a fake cluster on a socket named name in
// the default directory (XDG_RUNTIME_DIR is set to a temporary one), and
// stops when the test ends or the fake is asked to stop.
type fakePrimary struct {
	fake   *controltest.Cluster
	sink   *logs.Sink
	socket string
	cancel context.CancelFunc
	done   chan struct{}
}

func startFake(t *testing.T, cfg control.Config, fake *controltest.Cluster) *fakePrimary {
	t.Helper()
	if !strings.HasSuffix(os.Getenv("XDG_RUNTIME_DIR"), "/runtime") {
		isolate(t)
	}
	sink := logs.New(logs.Config{})
	cfg.Logs = sink
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := control.New(cfg, fake)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &fakePrimary{fake: fake, sink: sink, socket: srv.Addrs()["unix"].String(), cancel: cancel, done: make(chan struct{})}
	fake.OnStop = func(time.Duration) { cancel() }
	go func() {
		defer close(p.done)
		if err := srv.Serve(ctx); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
		sink.Close()
	})
	return p
}

// isolate points XDG_RUNTIME_DIR and TMPDIR at new empty directories, so
// that default sockets of primaries running on this machine are not seen.
func isolate(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"runtime", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(dir, "runtime"))
	t.Setenv("TMPDIR", filepath.Join(dir, "tmp"))
}

// cli runs a client command line in this process.
func cli(t *testing.T, args ...string) result {
	t.Helper()
	var r result
	var stdout, stderr bytes.Buffer
	r.code = execute(args, &stdout, &stderr, nil)
	r.stdout, r.stderr = stdout.String(), stderr.String()
	return r
}

// wantOK fails the test unless r exited 0 with want in its output.
func wantOK(t *testing.T, r result, want ...string) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("code %d, stderr %q, stdout %q", r.code, r.stderr, r.stdout)
	}
	for _, w := range want {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("stdout %q lacks %q", r.stdout, w)
		}
	}
}

// wantFail fails the test unless r exited code with one line on stderr
// containing want.
func wantFail(t *testing.T, r result, code int, want string) {
	t.Helper()
	if r.code != code || !strings.HasPrefix(r.stderr, "herd: ") || strings.Count(r.stderr, "\n") != 1 ||
		!strings.Contains(r.stderr, want) {
		t.Errorf("code %d, stderr %q; want code %d and one line with %q", r.code, r.stderr, code, want)
	}
}

func TestClientStatus(t *testing.T) {
	fake := controltest.New(3, 1, 8)
	fake.SetStatus(2, supervisor.StatusDisabled)
	startFake(t, control.Config{Name: "app"}, fake)
	r := cli(t, "status")
	wantOK(t, r, "app: primary pid", "3 workers (2 active, 0 crashed, 1 disabled)",
		"SLOT  PID   GEN  STATUS    UPTIME  RESTARTS  CPU   MEMORY",
		"0     1000  1    ACTIVE    30s     0         1.5%  1000.0 KiB",
		"2     -     1    DISABLED  -       0         -     -")
	r = cli(t, "status", "--json", "--name", "app")
	wantOK(t, r, `"primary":{"pid":`, `"cluster":{"workers":3`)
}

func TestClientFindsPrimary(t *testing.T) {
	p := startFake(t, control.Config{Name: "one"}, controltest.New(1, 1, 1))
	wantOK(t, cli(t, "status", "--control", p.socket), "one:")
	t.Setenv("HERD_CONTROL", p.socket)
	wantOK(t, cli(t, "status", "--name", "nonexistent-but-control-wins"), "one:")
	t.Setenv("HERD_CONTROL", "")
	t.Setenv("HERD_NAME", "one")
	wantOK(t, cli(t, "status"), "one:")
	t.Setenv("HERD_NAME", "")

	wantFail(t, cli(t, "status", "--name", "two"), 1, "no herd primary is running at "+control.DefaultSocket("two"))
	startFake(t, control.Config{Name: "two"}, controltest.New(1, 1, 1))
	wantFail(t, cli(t, "status"), 2, "several herd primaries run here (one, two)")
	wantFail(t, cli(t, "status", "--control", "-"), 2, "no socket")

	isolate(t)
	wantFail(t, cli(t, "reload"), 1, "no herd primary is running here")
	wantFail(t, cli(t, "status", "--control", filepath.Join(t.TempDir(), "x.sock")), 1, "no herd primary is running at")
	wantFail(t, cli(t, "status", "--control-addr", "127.0.0.1:1"), 2, "--control-addr needs --token-file")
}

func TestClientTCP(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(dir, "wrong")
	if err := os.WriteFile(wrong, []byte("nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fake := controltest.New(1, 1, 2)
	p := startFake(t, control.Config{Name: "tcp", TCPAddr: "127.0.0.1:0", TokenFile: token, Socket: filepath.Join(dir, "c.sock")}, fake)
	_ = p
	addr := tcpAddrOf(t, fake, token, dir)
	wantOK(t, cli(t, "status", "--control-addr", addr, "--token-file", token), "tcp:")
	wantFail(t, cli(t, "status", "--control-addr", addr, "--token-file", wrong), 1, "missing or wrong bearer token")
}

// tcpAddrOf starts another server on TCP only and returns its address.
func tcpAddrOf(t *testing.T, fake *controltest.Cluster, token, dir string) string {
	t.Helper()
	srv, err := control.New(control.Config{Name: "tcp", TCPAddr: "127.0.0.1:0", TokenFile: token, Socket: control.Off}, fake)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv.Addrs()["tcp"].String()
}

func TestClientReload(t *testing.T) {
	fake := controltest.New(2, 1, 4)
	fake.AutoRestart = true
	startFake(t, control.Config{Name: "r"}, fake)
	r := cli(t, "reload")
	wantOK(t, r, "rolling restart of 2 workers started", "slot 0: new worker pid 1100 (generation 2) ready",
		"slot 1: old worker pid 1001 stopping", "rolling restart finished")
	wantOK(t, cli(t, "reload", "--slot", "1"), "rolling restart finished")

	fake.RestartErr = errString("new worker of slot 0 could not start: exit status 3")
	wantFail(t, cli(t, "reload"), 1, "rolling restart failed: new worker of slot 0 could not start")
	wantFail(t, cli(t, "reload", "--slot", "7"), 1, "no worker slot 7")
	// -1 on the command line is not "every slot": refused before any call.
	wantFail(t, cli(t, "reload", "--slot", "-1"), 2, "--slot: -1 is negative")
	wantFail(t, cli(t, "reload", "--slot=-3"), 2, "--slot: -3 is negative")

	fake.AutoRestart = false
	fake.StartRestart(context.Background(), -1)
	wantFail(t, cli(t, "reload"), 1, "already in progress")
	if got := fake.Calls(); len(got) != 6 {
		t.Errorf("calls %q", got)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestClientScale(t *testing.T) {
	fake := controltest.New(2, 1, 4)
	startFake(t, control.Config{Name: "s"}, fake)
	wantOK(t, cli(t, "scale", "3"), "scaled to 3 workers")
	wantOK(t, cli(t, "scale", "-1"), "scaled to 2 workers")
	wantOK(t, cli(t, "scale", "--name", "s", "+2"), "scaled to 4 workers")
	wantOK(t, cli(t, "scale", "-2", "--name=s"), "scaled to 2 workers")
	wantFail(t, cli(t, "scale", "9"), 1, "workers 9 is outside min-workers 1 and max-workers 4")
	wantFail(t, cli(t, "scale", "-5"), 1, "cannot scale 2 workers by -5")
	wantFail(t, cli(t, "scale"), 2, "want one number")
	wantFail(t, cli(t, "scale", "x"), 2, "want one number")
	wantFail(t, cli(t, "scale", "1", "2"), 2, "want one number")
	wantFail(t, cli(t, "scale", "1", "--bogus"), 2, "bogus")
	if r := cli(t, "scale", "--help"); r.code != 0 || !strings.Contains(r.stdout, "scale N|+N|-N") {
		t.Errorf("scale --help: %d %q", r.code, r.stdout)
	}
	want := "scale 3,scale 2,scale 4,scale 2,scale 9"
	if got := strings.Join(fake.Calls(), ","); got != want {
		t.Errorf("calls %q; want %q", got, want)
	}
}

func TestClientSignalStopECV(t *testing.T) {
	fake := controltest.New(2, 1, 4)
	p := startFake(t, control.Config{Name: "x", Port: 8080}, fake)
	wantOK(t, cli(t, "signal", "usr1"), "sent USR1 to every worker")
	wantOK(t, cli(t, "signal", "SIGHUP", "--slot", "1"), "sent HUP to the worker of slot 1")
	wantFail(t, cli(t, "signal", "FOO"), 2, `unknown signal "FOO"`)
	wantFail(t, cli(t, "signal"), 2, "want one signal")
	wantFail(t, cli(t, "signal", "USR1", "--slot", "5"), 1, "no worker slot 5")
	wantFail(t, cli(t, "signal", "USR1", "--slot", "-1"), 2, "--slot: -1 is negative")

	wantOK(t, cli(t, "ecv", "status"), "200 status=AVAILABLE&ServeTraffic=true&ip=")
	wantOK(t, cli(t, "ecv", "disable"), "ecv disabled")
	wantOK(t, cli(t, "ecv", "status"), "400 status=DISABLED&ServeTraffic=false")
	wantOK(t, cli(t, "ecv", "enable"), "ecv enabled")
	wantFail(t, cli(t, "ecv", "toggle"), 2, `"toggle" is not enable, disable or status`)

	wantOK(t, cli(t, "stop", "--timeout", "3s"), "stopped")
	<-p.done
	want := "signal SIGUSR1 -1,signal SIGHUP 1,signal SIGUSR1 5,stop 3s"
	if got := strings.Join(fake.Calls(), ","); got != want {
		t.Errorf("calls %q; want %q", got, want)
	}
	wantFail(t, cli(t, "stop"), 1, "no herd primary is running")
}

func TestClientLogsEvents(t *testing.T) {
	fake := controltest.New(2, 1, 4)
	p := startFake(t, control.Config{Name: "l"}, fake)
	<-p.sink.Capture(0, 1000, logs.Stdout, strings.NewReader("zero\n"))
	<-p.sink.Capture(1, 1001, logs.Stderr, strings.NewReader("one\n"))
	wantOK(t, cli(t, "logs"), "[0] zero\n[1] one\n")
	if r := cli(t, "logs", "--slot", "1", "-n", "5"); r.stdout != "[1] one\n" {
		t.Errorf("logs --slot 1 = %q", r.stdout)
	}
	wantOK(t, cli(t, "logs", "--json", "--slot", "0"), `"slot":0,"pid":1000,"stream":"stdout","text":"zero"`)
	wantFail(t, cli(t, "logs", "--slot", "4"), 1, "no worker slot 4")
	wantFail(t, cli(t, "logs", "--slot", "-1"), 2, "--slot: -1 is negative")
	wantFail(t, cli(t, "logs", "-n", "-1"), 2, "--lines: -1 is negative")

	// logs -f and events follow until the primary stops.
	var logsOut, eventsOut testkit.Buffer
	got := make(chan int, 2)
	go func() { got <- execute([]string{"logs", "-f", "-n", "0"}, &logsOut, io.Discard, nil) }()
	go func() { got <- execute([]string{"events"}, &eventsOut, io.Discard, nil) }()
	waitFor(t, func() bool { return fake.Subscribers() == 2 }) // herd events and the dashboard's history
	fake.Emit(supervisor.Event{Type: supervisor.EventExited, Slot: 1, PID: 1001, Gen: 1, Status: 3, Crash: true})
	// The logs subscription cannot be seen from here: write until it shows.
	waitFor(t, func() bool {
		<-p.sink.Capture(1, 1001, logs.Stdout, strings.NewReader("later\n"))
		return strings.Contains(logsOut.String(), "[1] later\n")
	})
	waitFor(t, func() bool {
		return strings.Contains(eventsOut.String(), "exited slot=1 pid=1001 gen=1 status=3 crash=true")
	})
	fake.Stop(0) // ends both streams
	for range 2 {
		if code := <-got; code != 0 {
			t.Errorf("a follow command exited %d; logs %q, events %q", code, logsOut.String(), eventsOut.String())
		}
	}
}

// waitFor polls cond until it holds, failing after a deadline.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatal("condition not met in time")
		case <-tick.C:
		}
	}
}

func TestStatusMembership(t *testing.T) {
	idx := []int{3, 4}
	doc := control.StatsDoc{
		Primary:    control.PrimaryStats{Name: "app", PID: 10},
		Cluster:    control.ClusterStats{Workers: 2, Active: 2},
		Membership: &control.MembershipStats{Instance: "node-b", Index: 3, Threads: 2, Total: 7, Epoch: 42},
		Workers: []control.WorkerStats{
			{Slot: 0, PID: 11, Generation: 1, Status: "ACTIVE", ClusterIndex: &idx[0]},
			{Slot: 1, PID: 12, Generation: 1, Status: "ACTIVE", ClusterIndex: &idx[1]},
		},
	}
	var b strings.Builder
	if err := writeStatus(&b, doc); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cluster: instance node-b, indices 3-4 of 7, epoch 42", "MEMORY  INDEX", "   3\n", "   4\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status:\n%s\nwant it to contain %q", b.String(), want)
		}
	}
}
