package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
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

	"github.com/herd-cluster/herd"
)

// mainSwitch makes the test binary run main() instead of the tests, so a
// test can run the real command line in a child process. It does not start
// with HERD_, which herd would refuse as an unknown variable.
const mainSwitch = "HERDCLI_TEST_RUN_MAIN"

// TestMain runs main() when re-executed with mainSwitch set; otherwise it
// clears HERD_ variables from the environment so they cannot leak into the
// tests, and runs them.
func TestMain(m *testing.M) {
	// A command worker of herd run is this binary, through the exec shim.
	if err := herd.ExecShim(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(127)
	}
	if code, ok := runHelperIfAsked(); ok {
		os.Exit(code)
	}
	if os.Getenv(mainSwitch) == "1" {
		main()
		return
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "HERD_") {
			os.Unsetenv(k)
		}
	}
	os.Exit(m.Run())
}

// result is what one herd command line did.
type result struct {
	cfg     herd.Config
	started bool
	code    int
	stdout  string
	stderr  string
}

// runHerd runs the herd command line args with a start function that only
// records the Config.
func runHerd(t *testing.T, args ...string) result {
	t.Helper()
	var r result
	var stdout, stderr bytes.Buffer
	r.code = execute(args, &stdout, &stderr, func(_ context.Context, cfg herd.Config) error {
		r.cfg, r.started = cfg, true
		return nil
	})
	r.stdout, r.stderr = stdout.String(), stderr.String()
	return r
}

// writeFile writes a config file in a temporary directory and returns its
// path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "herd.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestExitCode checks the mapping of errors to exit statuses.
func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{usageErrorf("--workers: bad"), 2},
		{fmt.Errorf("wrapped: %w", usageErrorf("bad")), 2},
		{&execError{errors.New("no such file")}, 127},
		{fmt.Errorf("listen :80: %w", syscall.EADDRINUSE), 98},
		{&os.SyscallError{Syscall: "bind", Err: syscall.EADDRINUSE}, 98},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// TestErrorLine checks that errors print as one "herd: " line.
func TestErrorLine(t *testing.T) {
	tests := []struct{ err, want string }{
		{"boom", "herd: boom"},
		{"herd: not implemented", "herd: not implemented"},
		{"yaml: a\nb\n", "herd: yaml: a; b"},
	}
	for _, tt := range tests {
		if got := errorLine(errors.New(tt.err)); got != tt.want {
			t.Errorf("errorLine(%q) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestVersion checks herd version and herd --version.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := runHerd(t, args...)
		if r.code != 0 || r.stdout != "herd "+version+"\n" {
			t.Errorf("herd %v: code %d, stdout %q", args, r.code, r.stdout)
		}
	}
}

// TestHelp checks that the help reads like a man page: what herd is, the
// usage line, the sections, the grouped flags with defaults, examples.
func TestHelp(t *testing.T) {
	r := runHerd(t, "run", "--help")
	if r.code != 0 || r.started {
		t.Fatalf("herd run --help: code %d, started %v, stderr %q", r.code, r.started, r.stderr)
	}
	for _, want := range []string{
		"herd run [flags] -- COMMAND [ARGS...]",
		"SOCKETS", "file descriptors 3", "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID",
		"READINESS", "NOTIFY_SOCKET",
		"SIGNALS", "TERM, INT", "USR2", "HUP", "TTIN, TTOU", "USR1, WINCH",
		"ENVIRONMENT", "HERD_WORKER_ID", "HERD_GENERATION", "HERD_PORT",
		"CONFIGURATION", "HERD_READY_TIMEOUT",
		"EXIT STATUS", "98", "127",
		"Examples:", "herd run --workers 4 --listen :8080 -- ./server",
		"herd run --listen http=:8080 --ready notify -- python3 app.py",
		"Workers:", "Sockets:", "Readiness:", "Restarts and crashes:",
		"Stopping and signals:", "Worker process:", "Logging:", "Configuration:",
		"--workers N|auto|physical", "--listen [NAME=]ADDR", "Default: 1m0s",
		"Default: USR1,WINCH", "Default: TERM",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("herd run --help lacks %q", want)
		}
	}
	root := runHerd(t, "--help")
	for _, want := range []string{"primary", "workers", "systemd", "run", "demo", "version"} {
		if !strings.Contains(root.stdout, want) {
			t.Errorf("herd --help lacks %q", want)
		}
	}
}

// TestDemoSharesFlags checks that demo reuses the cluster flags.
func TestDemoSharesFlags(t *testing.T) {
	r := runHerd(t, "demo", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "--workers N|auto|physical") {
		t.Errorf("herd demo --help: code %d, output %q", r.code, r.stdout)
	}
}

// TestBinary runs the real command line in a child process (the test
// binary running main) and checks bad usage exits 2 with one line on
// stderr and nothing on stdout.
func TestBinary(t *testing.T) {
	tests := [][]string{
		{"run", "--workers", "nope", "--", "true"},
		{"run"},
		{"frobnicate"},
	}
	for _, args := range tests {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), mainSwitch+"=1")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("herd %v: %v, want exit status 2", args, err)
		}
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "herd: ") {
			t.Errorf("herd %v: stderr %q, want one line starting with \"herd: \"", args, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("herd %v: stdout %q, want nothing", args, stdout.String())
		}
	}
}

// TestBinaryFailures runs real clusters that cannot start and checks the
// exit status and what herd says.
func TestBinaryFailures(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr []string // each must appear
		lines  int      // stderr lines, 0 for any
	}{
		{"port-busy", []string{"run", "--listen", busy.Addr().String(), "--", "sleep", "10"}, 98,
			[]string{"herd: listen tcp " + busy.Addr().String() + ": address already in use"}, 1},
		{"port-busy-reuseport", []string{"run", "--balance", "reuseport", "--listen", busy.Addr().String(), "--", "sleep", "10"}, 98,
			[]string{"address already in use"}, 1},
		{"cannot-bind", []string{"run", "--listen", "192.0.2.1:80", "--", "sleep", "10"}, 1,
			[]string{"herd: listen tcp 192.0.2.1:80: "}, 1},
		{"crash-loop", []string{"run", "--workers", "2", "--respawn-delay", "5ms", "--log-level", "error", "--",
			"sh", "-c", "echo cannot read /etc/app.yaml >&2; exit 3"}, 1,
			[]string{"no worker ever became ready", "[0] cannot read /etc/app.yaml", "[1] cannot read /etc/app.yaml"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], tt.args...)
			cmd.Env = append(os.Environ(), mainSwitch+"=1")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tt.code {
				t.Errorf("herd %v: %v; want exit status %d\n%s", tt.args, err, tt.code, stderr.String())
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr %q; want it to contain %q", stderr.String(), s)
				}
			}
			if n := strings.Count(stderr.String(), "\n"); tt.lines != 0 && n != tt.lines {
				t.Errorf("stderr has %d lines; want %d:\n%s", n, tt.lines, stderr.String())
			}
		})
	}
}

// TestDemo runs README's first command, herd demo, and talks to it.
func TestDemo(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "demo.sock")
	cmd := exec.Command(os.Args[0], "demo", "--listen", "127.0.0.1:0", "--workers", "2", "--control", sock)
	cmd.Env = append(os.Environ(), mainSwitch+"=1", "GORACE=atexit_sleep_ms=0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	addrs := make(chan string, 2)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, addr, ok := strings.Cut(sc.Text(), "serving on "); ok {
				addrs <- addr
			}
		}
		exited <- cmd.Wait()
	}()
	var url string
	select {
	case url = <-addrs:
	case <-time.After(30 * time.Second):
		t.Fatalf("the demo printed no address; stderr:\n%s", stderr.String())
	}
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), "hello from worker ") {
		t.Errorf("GET / = %q; want a worker's hello", body)
	}
	// Its control API scales it past --workers: the default --max-workers
	// is not the demo's worker count.
	scale := exec.Command(os.Args[0], "scale", "+1", "--control", sock)
	scale.Env = append(os.Environ(), mainSwitch+"=1")
	if out, err := scale.CombinedOutput(); err != nil || !strings.Contains(string(out), "scaled to 3 workers") {
		t.Errorf("herd scale +1: %v %q; want scaled to 3 workers", err, out)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("demo after SIGTERM: %v; want exit 0\n%s", err, stderr.String())
		}
		exited <- nil // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not stop on SIGTERM")
	}
}
