package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/testkit"

	"github.com/herd-cluster/herd/membership"
	"github.com/herd-cluster/herd/membership/etcdtest"
)

// memberSwitch makes the test binary run herd with the member command
// added, for as long as root.go does not register it itself.
const memberSwitch = "HERDCLI_TEST_RUN_MEMBER"

func init() {
	if os.Getenv(memberSwitch) != "1" {
		return
	}
	root := newRootCmd(runCluster)
	if c, _, err := root.Find([]string{"member"}); err != nil || c.Name() != "member" {
		root.AddCommand(newMemberCmd())
	}
	root.SetArgs(os.Args[1:])
	err := root.Execute()
	if err != nil {
		printError(os.Stderr, err)
	}
	os.Exit(exitCode(err))
}

// memberCmd returns the command line herd member args, run by the test
// binary through main() (or with the member command added, until root.go
// registers it).
func memberCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"member"}, args...)...)
	sw := memberSwitch
	if c, _, err := newRootCmd(runCluster).Find([]string{"member"}); err == nil && c.Name() == "member" {
		sw = mainSwitch
	}
	cmd.Env = append(os.Environ(), sw+"=1", "GORACE=atexit_sleep_ms=0")
	return cmd
}

// TestMemberUsage checks that bad usage exits 2 with one line.
func TestMemberUsage(t *testing.T) {
	tests := map[string][]string{
		"bad-uri":         {"-r", "ftp://127.0.0.1:2379"},
		"no-scheme":       {"-r", "127.0.0.1:2379"},
		"mixed-tls":       {"-r", "https://a:1,http://b:2"},
		"ca-plain":        {"-r", "http://127.0.0.1:2379", "--registry-ca", os.Args[0]},
		"ca-static":       {"-I", "0", "-T", "1", "--registry-ca", os.Args[0]},
		"ca-not-pem":      {"-r", "https://127.0.0.1:2379", "--registry-ca", os.Args[0]},
		"ca-missing":      {"-r", "https://127.0.0.1:2379", "--registry-ca", "/nonexistent/ca.pem"},
		"cert-no-key":     {"-r", "https://127.0.0.1:2379", "--registry-cert", os.Args[0]},
		"bad-port":        {"-r", "etcd://127.0.0.1:99999"},
		"no-mode":         {"-k", "app"},
		"both-modes":      {"-r", "etcd://127.0.0.1:2379", "-I", "0", "-T", "1"},
		"index-no-total":  {"-I", "0"},
		"ttl-too-short":   {"-r", "etcd://127.0.0.1:2379", "--ttl", "1s"},
		"bad-consistency": {"-r", "etcd://127.0.0.1:2379", "--consistency", "weak"},
		"static-overflow": {"-I", "3", "-T", "3"},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			cmd := memberCmd(args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Errorf("herd member %v: %v; want exit status 2\n%s", args, err, stderr.String())
			}
			if lines := strings.Count(stderr.String(), "\n"); lines != 1 || !strings.HasPrefix(stderr.String(), "herd: ") {
				t.Errorf("stderr %q; want one line starting with \"herd: \"", stderr.String())
			}
		})
	}
}

// member is a running herd member whose views the test reads.
type member struct {
	t      *testing.T
	cmd    *exec.Cmd
	views  chan membership.View
	stderr *testkit.Buffer
	exited chan error
}

// startMember starts herd member --json with args.
func startMember(t *testing.T, args ...string) *member {
	t.Helper()
	m := &member{t: t, cmd: memberCmd(append(args, "--json")...), views: make(chan membership.View, 100),
		stderr: &testkit.Buffer{}, exited: make(chan error, 1)}
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	m.cmd.Stderr = m.stderr
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var v membership.View
			if err := json.Unmarshal(sc.Bytes(), &v); err == nil {
				m.views <- v
			}
		}
		close(m.views)
		m.exited <- m.cmd.Wait()
	}()
	t.Cleanup(func() {
		m.cmd.Process.Kill()
		for range m.views {
		}
	})
	return m
}

// waitView waits for a view satisfying ok.
func (m *member) waitView(what string, ok func(membership.View) bool) membership.View {
	m.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case v, open := <-m.views:
			if !open {
				m.t.Fatalf("%s: herd member exited; stderr:\n%s", what, m.stderr.String())
			}
			if ok(v) {
				return v
			}
		case <-deadline:
			m.t.Fatalf("%s: no such view; stderr:\n%s", what, m.stderr.String())
		}
	}
}

// stop sends sig and checks that herd member exits 0, after a last view
// with Index -1 if it had printed one.
func (m *member) stop(sig syscall.Signal, printed bool) {
	m.t.Helper()
	m.cmd.Process.Signal(sig)
	if printed {
		m.waitView("the leaving view", func(v membership.View) bool { return v.Index == -1 })
	}
	for range m.views {
	}
	if err := <-m.exited; err != nil {
		m.t.Errorf("herd member after %v: %v; want exit 0\n%s", sig, err, m.stderr.String())
	}
}

// TestMemberStatic runs a static instance.
func TestMemberStatic(t *testing.T) {
	m := startMember(t, "-I", "3", "-T", "10", "-n", "2", "-i", "node1")
	v := m.waitView("the static view", func(v membership.View) bool { return true })
	if v.Index != 3 || v.Threads != 2 || v.Total != 10 || v.Epoch != 0 {
		t.Errorf("view %+v; want index 3, 2 threads, total 10, epoch 0", v)
	}
	m.stop(syscall.SIGINT, true)
}

// TestMemberDynamic runs two instances on an embedded etcd, one through
// an etcd:// registry, the other through etcd's own http://host:port/
// form: the second joins after the first, and the first leaving on
// SIGTERM rebalances it.
func TestMemberDynamic(t *testing.T) {
	e, err := etcdtest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	uri := "etcd://" + strings.Join(e.Endpoints(), ",")
	key := "member-test-" + time.Now().Format("150405.000000")
	m1 := startMember(t, "-k", key, "-i", "node1", "-n", "2", "-r", uri, "--ttl", "2s")
	m1.waitView("node1 alone", func(v membership.View) bool { return v.Index == 0 && v.Total == 2 })
	m2 := startMember(t, "-k", key, "-i", "node2", "-r", "http://"+e.Endpoints()[0]+"/", "--ttl", "2s")
	v := m2.waitView("node2 after node1", func(v membership.View) bool { return v.Index == 2 && v.Total == 3 })
	if len(v.Members) != 2 || v.Members[0].ID != "node1" || v.Epoch == 0 {
		t.Errorf("node2's view %+v; want node1 then node2, a non-zero epoch", v)
	}
	m1.stop(syscall.SIGTERM, true)
	m2.waitView("node2 alone", func(v membership.View) bool { return v.Index == 0 && v.Total == 1 })
	m2.stop(syscall.SIGINT, true)
}

// TestMemberTLS joins an etcd that speaks TLS through -r https:// with
// --registry-ca.
func TestMemberTLS(t *testing.T) {
	e, files, err := etcdtest.StartTLS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	m := startMember(t, "-k", "member-tls", "-r", e.Endpoints()[0], "--registry-ca", files.CA,
		"--consistency", "eventual", "--ttl", "2s")
	m.waitView("a view over TLS", func(v membership.View) bool { return v.Index == 0 && v.Total == 1 })
	m.stop(syscall.SIGTERM, true)
}

// TestMemberUnreachable points herd member at a port nothing listens on:
// it says it retries, and still exits 0 on SIGTERM.
func TestMemberUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	m := startMember(t, "-r", "etcd://"+addr, "--ttl", "2s")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(m.stderr.String(), "retrying") {
		if time.Now().After(deadline) {
			t.Fatalf("herd member never said it retries; stderr:\n%s", m.stderr.String())
		}
		<-time.After(50 * time.Millisecond) // polling a child's stderr
	}
	m.stop(syscall.SIGTERM, false)
}

// Write appends p.
// String returns what was written.
