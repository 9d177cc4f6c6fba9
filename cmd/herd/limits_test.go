package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestOutOfBounds checks that values past their bounds, and values that
// conflict with each other, are refused before anything starts, from the
// command line, the environment and the config file alike.
func TestOutOfBounds(t *testing.T) {
	long := strings.Repeat("n", 120)
	for _, tc := range []badInput{
		{name: "workers above default max", args: []string{"--workers", "1000000"}, want: []string{"workers 1000000", "max-workers 1024"}},
		{name: "max-workers above limit", args: []string{"--workers", "2", "--max-workers", "5000"}, want: []string{"max-workers 5000", "4096"}},
		{name: "surge above max", args: []string{"--workers", "2", "--max-surge", "100000"}, want: []string{"max-surge 100000"}},
		{name: "backlog too big", args: []string{"--backlog", "99999999999"}, want: []string{"backlog"}},
		{name: "port too big", args: []string{"--listen", ":99999"}, want: []string{"--listen", `":99999"`, "99999"}},
		{name: "env port too big", env: map[string]string{"HERD_LISTEN": ":99999"}, want: []string{"HERD_LISTEN", "99999"}},
		{name: "file port too big", file: "listen: [\":99999\"]\n", want: []string{"herd.yaml:1", "99999"}},
		{name: "duplicate listener name", args: []string{"--listen", "a=:0", "--listen", "a=:0"}, want: []string{"duplicate listener name", `"a"`}},
		{name: "duplicate address", args: []string{"--listen", "127.0.0.1:8123", "--listen", "127.0.0.1:8123"}, want: []string{"127.0.0.1:8123", "cannot both bind"}},
		{name: "wildcard and address", args: []string{"--listen", ":8123", "--listen", "127.0.0.1:8123"}, want: []string{"cannot both bind"}},
		{name: "duplicate unix path", args: []string{"--listen", "unix:/tmp/x.sock", "--listen", "b=unix:/tmp/x.sock"}, want: []string{"/tmp/x.sock"}},
		{name: "metrics on a listen port", args: []string{"--listen", ":8123", "--metrics-addr", ":8123"}, want: []string{"metrics-addr", "cannot both bind"}},
		{name: "name too long for socket", args: []string{"--name", long}, want: []string{"control socket", "107"}},
		{name: "command name too long for socket", args: []string{"--", "/bin/" + long}, want: []string{"control socket", "--name"}},
		{name: "name with control character", args: []string{"--name", "a\tb"}, want: []string{"--name", "control character"}},
		{name: "name with slash", env: map[string]string{"HERD_NAME": "a/b"}, want: []string{"HERD_NAME", "'/'"}},
		{name: "ready-delay past ready-timeout", args: []string{"--ready-delay", "2m"}, want: []string{"ready-delay 2m0s", "ready-timeout 1m0s"}},
		{name: "log-lines too many", args: []string{"--log-lines", "1000000000"}, want: []string{"log-lines"}},
		{name: "log-max-files too many", args: []string{"--log-max-files", "100000000"}, want: []string{"log-max-files"}},
		{name: "too many listeners", file: "listen: [" + strings.Repeat("\":0\", ", 200) + "\":0\"]\n", want: []string{"listen", "128"}},
		{name: "cluster-total too big", args: []string{"--cluster-total", "9223372036854775807", "--cluster-base", "9223372036854775800"}, want: []string{"cluster"}},
	} {
		checkBadInput(t, tc)
	}
}

// TestControlAddrAllInterfaces checks the one warning line when the
// management API is served on every interface, and none on loopback.
func TestControlAddrAllInterfaces(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a primary")
	}
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr string
		warn bool
	}{{"0.0.0.0:0", true}, {"[::]:0", true}, {"127.0.0.1:0", false}, {":0", false}} {
		t.Run(tc.addr, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "c.sock")
			p := startPrimary(t, sock, 1, nil, "run", "--workers", "1", "--control", sock, "--control-addr", tc.addr,
				"--token-file", token, "--ready-delay", "10ms", "--", "sleep", "60")
			p.cmd.Process.Signal(syscall.SIGTERM)
			p.wait(t)
			got := strings.Count(p.stderr.String(), "listens on every interface")
			if want := map[bool]int{true: 1, false: 0}[tc.warn]; got != want {
				t.Errorf("--control-addr %s: %d warnings; want %d\n%s", tc.addr, got, want, p.stderr.String())
			}
		})
	}
}

// TestConfigFileLimits checks that --config refuses what is not a regular
// file of at most 1 MiB, at once and with exit status 2: a device that
// never ends, a FIFO no one writes to, a directory, a file too large; and
// the same of --token-file (at most 4 KiB) and --log-file (which rotation
// would rename).
func TestConfigFileLimits(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("workers: 2\n"+strings.Repeat("# padding\n", 110_000)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []badInput{
		{name: "dev zero", args: []string{"--config", "/dev/zero"}, want: []string{"/dev/zero", "not a regular file"}},
		{name: "fifo", args: []string{"--config", fifo}, want: []string{"fifo.yaml", "FIFO"}},
		{name: "env fifo", env: map[string]string{"HERD_CONFIG": fifo}, want: []string{"fifo.yaml", "FIFO"}},
		{name: "directory", args: []string{"--config", dir}, want: []string{"directory"}},
		{name: "too large", args: []string{"--config", big}, want: []string{"big.yaml", "1 MiB"}},
		{name: "token dev zero", args: []string{"--control-addr", ":0", "--token-file", "/dev/zero"}, want: []string{"--token-file", "not a regular file"}},
		{name: "token fifo", args: []string{"--control-addr", ":0", "--token-file", fifo}, want: []string{"--token-file", "not a regular file"}},
		{name: "token too large", args: []string{"--control-addr", ":0", "--token-file", big}, want: []string{"--token-file", "4096"}},
		{name: "log file dev null", args: []string{"--log-file", "/dev/null"}, want: []string{"--log-file", "not a regular file"}},
		{name: "log file fifo", args: []string{"--log-file", fifo}, want: []string{"--log-file"}},
	} {
		checkBadInput(t, tc)
	}
}

// TestPIDDirRefused checks that a --pid-dir another user could plant links
// in is refused with exit status 2, and a sticky one of herd's user is not.
func TestPIDDirRefused(t *testing.T) {
	open := filepath.Join(t.TempDir(), "pids")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	checkBadInput(t, badInput{name: "world-writable pid-dir", args: []string{"--pid-dir", open}, want: []string{"--pid-dir", "writable by group or others"}})
	checkBadInput(t, badInput{name: "env world-writable pid-dir", env: map[string]string{"HERD_PID_DIR": open}, want: []string{"HERD_PID_DIR"}})
	if err := os.Chmod(open, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if r := runHerd(t, "run", "--pid-dir", open, "--", "true"); r.code != 0 {
		t.Errorf("sticky pid-dir of our own: code %d, stderr %q; want accepted", r.code, r.stderr)
	}
}
