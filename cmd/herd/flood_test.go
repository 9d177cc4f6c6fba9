package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/testkit"
)

// fdLimit is the RLIMIT_NOFILE of the flooded primary.
const fdLimit = 256

// openFDs counts the open file descriptors of pid (0 when it is gone).
func openFDs(pid int) int {
	ents, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	return len(ents)
}

// flood opens idle connections to addr until it holds max of them, and
// keeps them until stop is closed; it then closes them all and sends how
// many it held. dialed counts the connections made.
func flood(addr string, max int, dialed *atomic.Int64, stop <-chan struct{}) (done <-chan int) {
	out := make(chan int, 1)
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
			out <- len(conns)
		}()
		for len(conns) < max {
			select {
			case <-stop:
				return
			default:
			}
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				conns = append(conns, c)
				dialed.Add(1)
			}
		}
		<-stop
	}()
	return out
}

// TestControlFlood floods the TCP control address of a real primary that
// has only 256 fds with idle unauthenticated connections. The API must
// not take the fds the primary needs: a killed worker is respawned,
// /health stays ok and an operator with the token is served, all during
// the flood.
func TestControlFlood(t *testing.T) {
	isolate(t)
	runtime := os.Getenv("XDG_RUNTIME_DIR")
	socket := filepath.Join(runtime, "herd", "flood.sock")
	token, tcp := filepath.Join(t.TempDir(), "token"), testkit.FreeAddr(t)
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := herdCmd([]string{"XDG_RUNTIME_DIR=" + runtime}, "run", "--name", "flood", "--workers", "2",
		"--ready-delay", "50ms", "--startup-delay", "0", "--listen", "127.0.0.1:0",
		"--control-addr", tcp, "--token-file", token, "--", "sh", "-c", workerScript)
	// The primary gets its fd limit from a shell that sets it and execs.
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to set the fd limit with")
	}
	cmd.Path, cmd.Args = sh, append([]string{"sh", "-c", `ulimit -n ` + strconv.Itoa(fdLimit) + ` && exec "$0" "$@"`}, cmd.Args...)
	p := startPrimaryCmd(t, cmd, socket, 2, io.Discard)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("primary stderr:\n%s", p.stderr.String())
		}
	})
	pid := p.cmd.Process.Pid
	var rl unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &rl); err != nil || rl.Cur != fdLimit {
		t.Fatalf("primary's fd limit %d (%v); want %d", rl.Cur, err, fdLimit)
	}
	local, err := control.NewClient(control.Target{Socket: socket})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	before := openFDs(pid)

	stop := make(chan struct{})
	var dialed atomic.Int64
	flooded := flood(tcp, 2*fdLimit, &dialed, stop)
	var most int
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				most = max(most, openFDs(pid))
			}
		}
	})
	var held int
	finish := sync.OnceFunc(func() {
		close(stop)
		held = <-flooded
		sampler.Wait()
	})
	defer finish()
	waitFor(t, func() bool { return dialed.Load() == 2*fdLimit }) // more than the primary could take

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	doc, err := local.Stats(ctx)
	if err != nil {
		t.Fatalf("stats on the unix socket during the flood: %v", err)
	}
	victim := doc.Workers[0].PID
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		doc, err := local.Stats(ctx)
		return err == nil && doc.Workers[0].PID != victim && doc.Workers[0].Status == "ACTIVE" && doc.Cluster.Active == 2
	})
	health := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	defer health.CloseIdleConnections()
	if resp, err := health.Get("http://herd/health"); err != nil || resp.StatusCode != 200 {
		t.Errorf("GET /health during the flood: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	operator, err := control.NewClient(control.Target{Addr: tcp, Token: []byte("s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	defer operator.Close()
	if _, err := operator.Stats(ctx); err != nil {
		t.Errorf("authenticated stats on TCP during the flood: %v", err)
	}
	finish()
	t.Logf("primary fds: %d before the flood, at most %d during it (limit %d); %d idle connections held",
		before, most, fdLimit, held)
	if most > before+fdLimit/4+16 {
		t.Errorf("the primary held up to %d fds during the flood, from %d; want at most a quarter of %d more",
			most, before, fdLimit)
	}
}
