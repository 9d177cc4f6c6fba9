package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-cluster/herd"
)

// precedenceCase is one flag seen from the four sources. A source's value
// of "" means the source does not set it.
type precedenceCase struct {
	flag                       string
	file, env, arg             string // YAML value, environment value, flag value
	get                        func(herd.Config) any
	def, fromFile, fromEnv, at any // what get returns from default, file, env, flag
}

// precedenceCases covers int, workers words, duration, bool, repeatable,
// enum, signal and signal-list flags.
func precedenceCases() []precedenceCase {
	workers := func(c herd.Config) any { return c.Workers }
	sigs := func(s ...syscall.Signal) []syscall.Signal { return append([]syscall.Signal{}, s...) }
	return []precedenceCase{
		{"workers", "3", "5", "physical", workers, herd.CPUs(), 3, 5, herd.PhysicalCPUs()},
		{"workers", "physical", "auto", "0", workers, herd.CPUs(), herd.PhysicalCPUs(), herd.CPUs(), herd.CPUs()},
		{"max-crashes", "5", "6", "7", func(c herd.Config) any { return c.MaxCrashes }, 3, 5, 6, 7},
		{"ready-timeout", "90s", "2m", "3s", func(c herd.Config) any { return c.ReadyTimeout },
			60 * time.Second, 90 * time.Second, 2 * time.Minute, 3 * time.Second},
		{"startup-delay", "0s", "1s", "0", func(c herd.Config) any { return c.StartupDelay },
			100 * time.Millisecond, time.Duration(-1), time.Second, time.Duration(-1)},
		{"respawn", "false", "true", "false", func(c herd.Config) any { return c.Respawn },
			herd.RespawnAlways, herd.RespawnNever, herd.RespawnAlways, herd.RespawnNever},
		{"listen", `[":8080", "admin=unix:/run/a.sock,mode=0660"]`, ":9090,x=unix:/tmp/s,mode=0600,owner=nobody", "[::1]:7070",
			func(c herd.Config) any { return c.Listen }, []string(nil),
			[]string{":8080", "admin=unix:/run/a.sock,mode=0660"},
			[]string{":9090", "x=unix:/tmp/s,mode=0600,owner=nobody"}, []string{"[::1]:7070"}},
		{"env", `["A=1"]`, "A=x,y,B=2", "C=3", func(c herd.Config) any { return c.Env },
			[]string(nil), []string{"A=1"}, []string{"A=x,y", "B=2"}, []string{"C=3"}},
		{"balance", "reuseport", "shared", "REUSEPORT", func(c herd.Config) any { return c.Balance },
			herd.Balance(""), herd.BalanceReusePort, herd.BalanceShared, herd.BalanceReusePort},
		{"hup", "reload", "forward", "reload", func(c herd.Config) any { return c.Hup },
			herd.HupForward, herd.HupReload, herd.HupForward, herd.HupReload},
		{"stop-signal", "INT", "SIGQUIT", "10", func(c herd.Config) any { return c.StopSignal },
			syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR1},
		{"forward", "[USR1]", "none", "winch", func(c herd.Config) any { return c.Forward },
			sigs(syscall.SIGUSR1, syscall.SIGWINCH), sigs(syscall.SIGUSR1), sigs(), sigs(syscall.SIGWINCH)},
		{"name", "fromfile", "fromenv", "fromflag", func(c herd.Config) any { return c.Name },
			"", "fromfile", "fromenv", "fromflag"},
		{"log-format", "json", "text", "json", func(c herd.Config) any { return c.LogFormat },
			"text", "json", "text", "json"},
	}
}

// TestPrecedence checks flag > environment > file > default for each kind
// of flag.
func TestPrecedence(t *testing.T) {
	for _, tc := range precedenceCases() {
		checkPrecedence(t, tc)
	}
}

// checkPrecedence checks tc at each of the four levels; base are more
// arguments of herd run that tc needs.
func checkPrecedence(t *testing.T, tc precedenceCase, base ...string) {
	t.Helper()
	levels := []struct {
		name string
		want any
	}{{"default", tc.def}, {"file", tc.fromFile}, {"env", tc.fromEnv}, {"flag", tc.at}}
	for level, l := range levels {
		t.Run(tc.flag+"/"+tc.arg+"/"+l.name, func(t *testing.T) {
			args := append([]string{"run"}, base...)
			if level >= 1 {
				args = append(args, "--config", writeFile(t, tc.flag+": "+tc.file+"\n"))
			}
			if level >= 2 {
				t.Setenv(envName(tc.flag), tc.env)
			}
			if level >= 3 {
				args = append(args, "--"+tc.flag+"="+tc.arg)
			}
			r := runHerd(t, append(args, "--", "true")...)
			if r.code != 0 || !r.started {
				t.Fatalf("herd %q: code %d, stderr %q", args, r.code, r.stderr)
			}
			if got := tc.get(r.cfg); !reflect.DeepEqual(got, l.want) {
				t.Errorf("herd %q: %s = %#v, want %#v", args, tc.flag, got, l.want)
			}
		})
	}
}

// TestConfigFromEnv checks HERD_CONFIG names the file and the command from
// it is used when none is given.
func TestConfigFromEnv(t *testing.T) {
	t.Setenv("HERD_CONFIG", writeFile(t, "workers: 2\ncommand: [true, --flag, \"8080\"]\n"))
	r := runHerd(t, "run")
	if r.code != 0 {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	if r.cfg.Workers != 2 || !reflect.DeepEqual(r.cfg.Command, []string{"true", "--flag", "8080"}) {
		t.Errorf("workers %d, command %q", r.cfg.Workers, r.cfg.Command)
	}
	r = runHerd(t, "run", "--", "true", "x")
	if !reflect.DeepEqual(r.cfg.Command, []string{"true", "x"}) {
		t.Errorf("command %q, want the one after --", r.cfg.Command)
	}
}

// TestCommandArgs checks that flags end at the command with or without
// "--", and that the command keeps its own flags.
func TestCommandArgs(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"run", "--", "true", "--workers", "9"}, []string{"true", "--workers", "9"}},
		{[]string{"run", "--workers", "2", "true", "-x", "--", "y"}, []string{"true", "-x", "--", "y"}},
	}
	for _, tt := range tests {
		r := runHerd(t, tt.args...)
		if r.code != 0 || !reflect.DeepEqual(r.cfg.Command, tt.want) {
			t.Errorf("herd %q: code %d, command %q, want %q", tt.args, r.code, r.cfg.Command, tt.want)
		}
	}
}

// TestLogger checks --log-format and --log-level select herd's logger.
func TestLogger(t *testing.T) {
	r := runHerd(t, "run", "--log-format", "json", "--log-level", "warn", "--", "true")
	if _, ok := r.cfg.Logger.Handler().(*slog.JSONHandler); !ok {
		t.Errorf("handler %T, want *slog.JSONHandler", r.cfg.Logger.Handler())
	}
	if r.cfg.Logger.Enabled(t.Context(), slog.LevelInfo) || !r.cfg.Logger.Enabled(t.Context(), slog.LevelWarn) {
		t.Error("--log-level warn: info enabled or warn disabled")
	}
	r = runHerd(t, "run", "--", "true")
	if _, ok := r.cfg.Logger.Handler().(*slog.TextHandler); !ok {
		t.Errorf("handler %T, want *slog.TextHandler", r.cfg.Logger.Handler())
	}
}

// TestDefaults checks the Config of a bare herd run is valid and keeps
// Forward non-nil.
func TestDefaults(t *testing.T) {
	r := runHerd(t, "run", "--", "true")
	c := r.cfg
	if c.MinWorkers != 1 || c.MaxWorkers != 0 || c.Backlog != herd.DefaultBacklog ||
		c.ShutdownTimeout != herd.DefaultShutdownTimeout || c.MaxSurge != 1 || c.Ready != "" {
		t.Errorf("defaults: %+v", c)
	}
	if c.Dir != "" || c.PIDDir != "" || len(c.Listen) != 0 {
		t.Errorf("defaults: dir %q pid-dir %q listen %q", c.Dir, c.PIDDir, c.Listen)
	}
}

// badInput is one bad command line, environment or config file.
type badInput struct {
	name  string
	args  []string
	env   map[string]string
	file  string // config file content, passed with --config
	want  []string
	code  int  // 0 means 2
	noCmd bool // give no command
}

// badInputs lists every kind of bad input.
func badInputs() []badInput {
	return []badInput{
		{name: "unknown flag", args: []string{"--bogus"}, want: []string{"--bogus"}},
		{name: "bad workers", args: []string{"--workers", "nope"}, want: []string{"--workers", `"nope"`}},
		{name: "negative workers", args: []string{"--workers=-1"}, want: []string{"--workers", `"-1"`}},
		{name: "bad int", args: []string{"--backlog", "lots"}, want: []string{"--backlog", `"lots"`}},
		{name: "min-workers 0", args: []string{"--min-workers", "0"}, want: []string{"--min-workers", `"0"`}},
		{name: "bad duration", args: []string{"--ready-timeout", "5x"}, want: []string{"--ready-timeout", `"5x"`}},
		{name: "zero duration", args: []string{"--shutdown-timeout", "0"}, want: []string{"--shutdown-timeout", `"0"`}},
		{name: "negative duration", args: []string{"--startup-delay", "-1s"}, want: []string{"--startup-delay", `"-1s"`}},
		{name: "bad bool", args: []string{"--respawn=maybe"}, want: []string{"--respawn", `"maybe"`}},
		{name: "bad signal", args: []string{"--stop-signal", "FOO"}, want: []string{"--stop-signal", `"FOO"`}},
		{name: "signal number", args: []string{"--stop-signal", "99"}, want: []string{"--stop-signal", `"99"`}},
		{name: "forward KILL", args: []string{"--forward", "KILL"}, want: []string{"--forward", `"KILL"`}},
		{name: "forward TERM", args: []string{"--forward", "USR1,TERM"}, want: []string{"--forward", "TERM"}},
		{name: "bad enum", args: []string{"--balance", "random"}, want: []string{"--balance", `"random"`}},
		{name: "bad ready", args: []string{"--ready", "soon"}, want: []string{"--ready", `"soon"`}},
		{name: "bad hup", args: []string{"--hup", "ignore"}, want: []string{"--hup", `"ignore"`}},
		{name: "bad log level", args: []string{"--log-level", "loud"}, want: []string{"--log-level", `"loud"`}},
		{name: "bad log format", args: []string{"--log-format", "xml"}, want: []string{"--log-format", `"xml"`}},
		{name: "bad listen", args: []string{"--listen", "8080"}, want: []string{"--listen", `"8080"`}},
		{name: "bad unix mode", args: []string{"--listen", "unix:/tmp/s,mode=999"}, want: []string{"--listen", "mode"}},
		{name: "bad env", args: []string{"--env", "NOVALUE"}, want: []string{"--env", `"NOVALUE"`}},
		{name: "bad dir", args: []string{"--dir", "/nonexistent/dir"}, want: []string{"--dir", "/nonexistent/dir"}},
		{name: "bad name", args: []string{"--name", "a/b"}, want: []string{"--name", "a/b"}},
		{name: "workers above max", args: []string{"--workers", "5", "--max-workers", "2"}, want: []string{"workers 5", "max-workers 2"}},
		{name: "min above max", args: []string{"--min-workers", "5", "--max-workers", "2", "--workers", "2"}, want: []string{"min-workers 5"}},
		{name: "missing value", args: []string{"--workers"}, want: []string{"--workers"}},
		{name: "env bad value", env: map[string]string{"HERD_WORKERS": "nope"}, want: []string{"HERD_WORKERS", "--workers", `"nope"`}},
		{name: "env bad list item", env: map[string]string{"HERD_LISTEN": ":80,bad"}, want: []string{"HERD_LISTEN", `"bad"`}},
		{name: "unknown env", env: map[string]string{"HERD_WORKRES": "4"}, want: []string{"HERD_WORKRES"}},
		{name: "env not a cluster flag", env: map[string]string{"HERD_HELP": "1"}, want: []string{"HERD_HELP"}},
		{name: "missing file", args: []string{"--config", "/nonexistent/herd.yaml"}, want: []string{"config", "/nonexistent/herd.yaml"}},
		{name: "unknown key", file: "workers: 2\nworkres: 3\n", want: []string{"herd.yaml:2", `"workres"`}},
		{name: "config key", file: "config: other.yaml\n", want: []string{"herd.yaml:1", `"config"`}},
		{name: "duplicate key", file: "workers: 2\nworkers: 3\n", want: []string{"herd.yaml", "workers"}},
		{name: "bad file value", file: "ready-timeout: 60\n", want: []string{"herd.yaml:1", "ready-timeout", `"60"`}},
		{name: "list for scalar", file: "workers: [1, 2]\n", want: []string{"herd.yaml:1", "workers"}},
		{name: "mapping value", file: "listen: {a: b}\n", want: []string{"herd.yaml:1", "listen"}},
		{name: "null value", file: "workers:\n", want: []string{"herd.yaml:1", "workers"}},
		{name: "invalid yaml", file: "workers: [\n", want: []string{"herd.yaml", "yaml"}},
		{name: "not a mapping", file: "- workers\n", want: []string{"herd.yaml", "mapping"}},
		{name: "command string", file: "command: ./server --port 80\n", want: []string{"command", "./server --port 80"}},
		{name: "no command", want: []string{"command"}, noCmd: true},
		{name: "not executable", args: []string{"--", "/nonexistent/server"}, want: []string{"/nonexistent/server"}, code: 127},
		{name: "not in PATH", args: []string{"--", "no-such-herd-command"}, want: []string{"no-such-herd-command"}, code: 127},
	}
}

// TestBadInput checks that every kind of bad input is refused with one
// line naming the option and the value, exit status 2, and nothing started.
func TestBadInput(t *testing.T) {
	for _, tc := range badInputs() {
		checkBadInput(t, tc)
	}
}

// checkBadInput checks herd run refuses tc with one line naming the
// option, its exit status (2 unless told), and nothing started.
func checkBadInput(t *testing.T, tc badInput) {
	t.Helper()
	t.Run(tc.name, func(t *testing.T) {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		args := []string{"run"}
		if tc.file != "" {
			args = append(args, "--config", writeFile(t, tc.file))
		}
		args = append(args, tc.args...)
		if !tc.noCmd && !slices.Contains(tc.args, "--") {
			args = append(args, "--", "true")
		}
		want := tc.code
		if want == 0 {
			want = 2
		}
		r := runHerd(t, args...)
		if r.code != want || r.started {
			t.Fatalf("herd %q: code %d, started %v, stderr %q; want code %d", args, r.code, r.started, r.stderr, want)
		}
		if !strings.HasPrefix(r.stderr, "herd: ") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("herd %q: stderr %q, want one line starting with \"herd: \"", args, r.stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("herd %q: stderr %q lacks %q", args, r.stderr, w)
			}
		}
	})
}

// TestUnknownCommand checks unknown subcommands and stray arguments are
// usage errors.
func TestUnknownCommand(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"version", "extra"}, {"--bogus"}} {
		if r := runHerd(t, args...); r.code != 2 {
			t.Errorf("herd %q: code %d, stderr %q; want 2", args, r.code, r.stderr)
		}
	}
}

// TestWorkerEnvAllowed checks that the variables herd gives workers are
// not taken for misspelt flags, and HERD_NAME and HERD_CLUSTER_TOTAL are
// ignored in a worker.
func TestWorkerEnvAllowed(t *testing.T) {
	for _, k := range []string{"HERD_WORKER_ID", "HERD_WORKER_COUNT", "HERD_GENERATION",
		"HERD_PRIMARY_PID", "HERD_PORT", "HERD_NAME", "HERD_IPC", "HERD_CLUSTER_INDEX", "HERD_CLUSTER_TOTAL",
		"HERD_CLUSTER_EPOCH"} {
		t.Setenv(k, "1")
	}
	r := runHerd(t, "run", "--", "true")
	if r.code != 0 {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	if r.cfg.Name != "" || r.cfg.ClusterTotal != 0 {
		t.Errorf("name %q, cluster total %d: HERD_NAME or HERD_CLUSTER_TOTAL of the outer cluster was used",
			r.cfg.Name, r.cfg.ClusterTotal)
	}
}

// TestCommandDir checks a relative command is looked up in --dir.
func TestCommandDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "server"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := runHerd(t, "run", "--dir", dir, "--", "./server"); r.code != 0 {
		t.Errorf("in --dir: code %d, stderr %q", r.code, r.stderr)
	}
	if r := runHerd(t, "run", "--", "./server"); r.code != 127 {
		t.Errorf("outside --dir: code %d, want 127", r.code)
	}
}
