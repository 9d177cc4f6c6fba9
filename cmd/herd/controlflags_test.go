package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd"
)

// TestControlFlags checks each new flag of herd run reaches its Config
// field from the command line, the environment and the config file.
func TestControlFlags(t *testing.T) {
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runHerd(t, "run", "--control", "/run/app.sock", "--control-addr", ":9000", "--token-file", token,
		"--ecv-path", "/lb", "--ecv-read-only", "--ecv-monitor", "/health", "--ecv-addr", ":9001",
		"--metrics-addr", "127.0.0.1:9002", "--log-max-size", "10MB", "--log-max-files", "3",
		"--log-lines", "50", "--stats-interval", "30s", "--", "true")
	if r.code != 0 {
		t.Fatalf("code %d stderr %q", r.code, r.stderr)
	}
	c := r.cfg
	if c.Control != "/run/app.sock" || c.ControlAddr != ":9000" || c.TokenFile != token || c.ECVPath != "/lb" ||
		!c.ECVReadOnly || c.ECVMonitor != "/health" || c.ECVAddr != ":9001" || c.MetricsAddr != "127.0.0.1:9002" ||
		c.LogMaxSize != 10_000_000 || c.LogMaxFiles != 3 || c.LogLines != 50 || c.StatsInterval != 30*time.Second {
		t.Errorf("config %+v", c)
	}

	t.Setenv("HERD_CONTROL", "-")
	t.Setenv("HERD_ECV_READ_ONLY", "true")
	t.Setenv("HERD_LOG_MAX_SIZE", "1MiB")
	file := writeFile(t, "ecv-path: /check\nlog-lines: 7\nstats-interval: 1m\ncontrol-addr: \":9\"\ntoken-file: "+token+"\n")
	r = runHerd(t, "run", "--config", file, "--", "true")
	c = r.cfg
	if r.code != 0 || c.Control != "-" || !c.ECVReadOnly || c.LogMaxSize != 1<<20 || c.ECVPath != "/check" ||
		c.LogLines != 7 || c.StatsInterval != time.Minute || c.ControlAddr != ":9" {
		t.Errorf("from env and file: code %d stderr %q config %+v", r.code, r.stderr, c)
	}

	t.Setenv("HERD_CONTROL", "")
	t.Setenv("HERD_ECV_READ_ONLY", "")
	t.Setenv("HERD_LOG_MAX_SIZE", "")
	r = runHerd(t, "run", "--", "true")
	c = r.cfg
	if c.Control != "" || c.ECVPath != "/ecv" || c.LogMaxSize != 100<<20 || c.LogMaxFiles != 5 || c.LogLines != 1000 ||
		c.StatsInterval != 0 || c.ECVReadOnly {
		t.Errorf("defaults: %+v", c)
	}
}

// TestControlFlagsBad checks the new flags refuse bad values with exit 2.
func TestControlFlagsBad(t *testing.T) {
	open := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(open, []byte(""), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--control-addr", ":9000"}, "--control-addr needs --token-file"},
		{[]string{"--control-addr", ":9000", "--token-file", "/nonexistent/t"}, "--token-file"},
		{[]string{"--control-addr", ":9000", "--token-file", open}, "empty"},
		{[]string{"--control-addr", "9000"}, "--control-addr"},
		{[]string{"--ecv-addr", "host"}, "--ecv-addr"},
		{[]string{"--metrics-addr", ":99999"}, "--metrics-addr"},
		{[]string{"--ecv-path", "ecv"}, "--ecv-path"},
		{[]string{"--ecv-monitor", "ftp://x/y"}, "--ecv-monitor"},
		{[]string{"--ecv-read-only=perhaps"}, "--ecv-read-only"},
		{[]string{"--log-max-size", "10XB"}, "--log-max-size"},
		{[]string{"--log-max-size", "0"}, "--log-max-size"},
		{[]string{"--log-max-files", "0"}, "--log-max-files"},
		{[]string{"--log-lines", "-1"}, "--log-lines"},
		{[]string{"--stats-interval", "-1s"}, "--stats-interval"},
		{[]string{"--control", strings.Repeat("x", 120)}, "--control"},
		{[]string{"--log-file", "/nonexistent/dir/herd.log"}, "--log-file"},
	} {
		r := runHerd(t, append(append([]string{"run"}, tt.args...), "--", "true")...)
		if r.code != 2 || r.started || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("herd run %q: code %d, stderr %q; want 2 and one line with %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
}

// TestLogFile checks --log-file receives herd's log, and that with
// --log-format json herd's own lines carry the stream key like the
// workers' lines.
func TestLogFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herd.log")
	var cfg herd.Config
	var stdout, stderr bytes.Buffer
	code := execute([]string{"run", "--log-file", path, "--log-format", "json", "--", "true"}, &stdout, &stderr,
		func(_ context.Context, c herd.Config) error {
			cfg = c
			c.Logger.Info("hello", "slot", 1)
			return nil
		})
	if code != 0 || stderr.Len() != 0 {
		t.Fatalf("code %d stderr %q", code, stderr.String())
	}
	if cfg.Stdout != cfg.Stderr || cfg.Stdout == nil || cfg.LogFile != path {
		t.Errorf("stdout %v stderr %v LogFile %q; want both the log file", cfg.Stdout, cfg.Stderr, cfg.LogFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("log file %q: %v", b, err)
	}
	if rec["msg"] != "hello" || rec["stream"] != "herd" || rec["slot"] != 1.0 || rec["time"] == nil {
		t.Errorf("log record %v", rec)
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{
		{"1048576", 1 << 20}, {"100MiB", 100 << 20}, {"10MB", 10e6}, {"10mb", 10e6}, {"1G", 1 << 30},
		{"1.5KiB", 1536}, {"2k", 2048}, {"7b", 7}, {" 3 KB ", 3000},
	} {
		if got, err := parseSize(tt.in); err != nil || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "MB", "10XB", "-1", "0", "0.1", "1e3", "99999999999G"} {
		if n, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) = %d; want an error", bad, n)
		}
	}
	if s := formatSize(100 << 20); s != "100MiB" {
		t.Errorf("formatSize = %q", s)
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1048576", "100MiB", "10MB", "1.5k", "", "G", "0.0000001k", "1e9", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := parseSize(s); err == nil && n < 1 {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
	})
}
