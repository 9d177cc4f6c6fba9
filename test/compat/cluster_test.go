package compat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/testkit"
)

// markerVar is set, with a value unique to each cluster, in the
// environment of every herd the suite starts, so that the processes of a
// cluster can be found in /proc even after they escaped its process tree.
const markerVar = "COMPAT_RUN"

// cluster is one herd primary running a server's recipe.
type cluster struct {
	t       *testing.T
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	out     *testkit.Buffer
	socket  string
	addr    string
	marker  string
	client  *control.Client
}

// startCluster runs herd with 2 workers of argv on a free loopback port,
// with the extra herd flags, and waits until both workers are ACTIVE. The
// primary is killed and reaped in cleanup if the test did not stop it.
func startCluster(t *testing.T, dir, addr string, env, flags, argv []string) *cluster {
	t.Helper()
	c := &cluster{t: t, exited: make(chan struct{}), out: &testkit.Buffer{}, addr: addr,
		socket: filepath.Join(dir, "herd.sock"), marker: randomMarker(t)}
	args := append([]string{"run", "--workers", "2", "--listen", addr, "--name", "compat",
		"--control", c.socket, "--shutdown-timeout", "10s"}, flags...)
	args = append(append(args, "--"), argv...)
	c.cmd = exec.Command(herdBin(t), args...)
	c.cmd.Dir = dir
	c.cmd.Env = append(append(os.Environ(), markerVar+"="+c.marker), env...)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.waitErr = c.cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
		killMarked(c.marker) // whatever escaped a failed test
		if t.Failed() {
			t.Logf("herd's output:\n%s", tail(c.out.String(), 60))
		}
	})
	cl, err := control.NewClient(control.Target{Socket: c.socket})
	if err != nil {
		t.Fatal(err)
	}
	c.client = cl
	t.Cleanup(cl.Close)
	c.waitActive(30 * time.Second)
	return c
}

// randomMarker returns a value for markerVar no other cluster has.
func randomMarker(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// stats returns the primary's /stats document.
func (c *cluster) stats() (control.StatsDoc, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.client.Stats(ctx)
}

// waitActive waits until every worker is ACTIVE, or fails the test.
func (c *cluster) waitActive(limit time.Duration) control.StatsDoc {
	c.t.Helper()
	var last control.StatsDoc
	ok := poll(limit, func() bool {
		select {
		case <-c.exited:
			return true
		default:
		}
		doc, err := c.stats()
		if err != nil {
			return false
		}
		last = doc
		return doc.Cluster.Active == len(doc.Workers) && len(doc.Workers) > 0
	})
	select {
	case <-c.exited:
		c.t.Fatalf("herd exited before its workers were ready: %v", c.waitErr)
	default:
	}
	if !ok {
		c.t.Fatalf("workers not all ACTIVE within %v: %+v", limit, last.Workers)
	}
	return last
}

// get makes one request to the cluster's port and returns the status and
// body. It uses a fresh connection, and is never used to count failures.
func (c *cluster) get(path string) (int, string, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + c.addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b), err
}

// herd runs a herd client command against this cluster and returns its
// output.
func (c *cluster) herd(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, herdBin(c.t), append(args, "--control", c.socket)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// stop runs herd stop and waits for the primary to exit.
func (c *cluster) stop(limit time.Duration) error {
	if out, err := c.herd("stop"); err != nil {
		return fmt.Errorf("herd stop: %v: %s", err, out)
	}
	select {
	case <-c.exited:
		return c.waitErr
	case <-time.After(limit):
		return fmt.Errorf("herd did not exit within %v of herd stop", limit)
	}
}

// poll calls cond every 10ms until it returns true or limit passes, and
// reports whether it returned true.
func poll(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// portFree reports whether addr can be bound, so that nothing holds it.
func portFree(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// kill9 sends SIGKILL to pid.
func kill9(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
