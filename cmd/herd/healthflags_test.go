package main

import (
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd"
)

// TestHealthPrecedence checks flag > environment > file > default for the
// health, recycling and autoscaling flags: durations, counts, sizes,
// percentages and a bool.
func TestHealthPrecedence(t *testing.T) {
	for _, tc := range []struct {
		precedenceCase
		base []string
	}{
		{precedenceCase: precedenceCase{"watchdog", "3s", "4s", "500ms", func(c herd.Config) any { return c.Watchdog },
			time.Duration(0), 3 * time.Second, 4 * time.Second, 500 * time.Millisecond}},
		{precedenceCase: precedenceCase{"max-requests", "100", "200", "0", func(c herd.Config) any { return c.MaxRequests },
			uint64(0), uint64(100), uint64(200), uint64(0)}},
		{precedenceCase: precedenceCase{"max-requests-jitter", "10", "20", "30",
			func(c herd.Config) any { return c.MaxRequestsJitter }, uint64(0), uint64(10), uint64(20), uint64(30)},
			base: []string{"--max-requests", "1000"}},
		{precedenceCase: precedenceCase{"max-age", "1h", "30m", "0", func(c herd.Config) any { return c.MaxAge },
			time.Duration(0), time.Hour, 30 * time.Minute, time.Duration(0)}},
		{precedenceCase: precedenceCase{"max-age-jitter", "1m", "2m", "3m", func(c herd.Config) any { return c.MaxAgeJitter },
			time.Duration(0), time.Minute, 2 * time.Minute, 3 * time.Minute},
			base: []string{"--max-age", "1h"}},
		{precedenceCase: precedenceCase{"memory-limit", "512MiB", "1G", "1048576", func(c herd.Config) any { return c.MemoryLimit },
			uint64(0), uint64(512 << 20), uint64(1 << 30), uint64(1 << 20)}},
		{precedenceCase: precedenceCase{"memory-check-interval", "1s", "2s", "3s",
			func(c herd.Config) any { return c.MemoryCheckInterval },
			herd.DefaultMemoryCheck, time.Second, 2 * time.Second, 3 * time.Second}},
		{precedenceCase: precedenceCase{"idle-timeout", "90s", "0s", "2m", func(c herd.Config) any { return c.IdleTimeout },
			time.Duration(0), 90 * time.Second, time.Duration(0), 2 * time.Minute}},
		{precedenceCase: precedenceCase{"autoscale", "true", "false", "true", func(c herd.Config) any { return c.Autoscale },
			false, true, false, true}},
		{precedenceCase: precedenceCase{"scale-up-cpu", "80", "90%", "62.5", func(c herd.Config) any { return c.ScaleUpCPU },
			75.0, 80.0, 90.0, 62.5}},
		{precedenceCase: precedenceCase{"scale-down-cpu", "10%", "20", "30%", func(c herd.Config) any { return c.ScaleDownCPU },
			25.0, 10.0, 20.0, 30.0}},
		{precedenceCase: precedenceCase{"scale-up-after", "5s", "20s", "1m", func(c herd.Config) any { return c.ScaleUpAfter },
			10 * time.Second, 5 * time.Second, 20 * time.Second, time.Minute}},
		{precedenceCase: precedenceCase{"scale-down-after", "2m", "3m", "90s", func(c herd.Config) any { return c.ScaleDownAfter },
			time.Minute, 2 * time.Minute, 3 * time.Minute, 90 * time.Second}},
	} {
		checkPrecedence(t, tc.precedenceCase, tc.base...)
	}
}

// TestHealthFlagsConfig checks every health, recycling and autoscaling flag
// reaches its Config field, and the defaults are config.go's.
func TestHealthFlagsConfig(t *testing.T) {
	r := runHerd(t, "run", "--watchdog", "2s", "--max-requests", "10000", "--max-requests-jitter", "500",
		"--max-age", "6h", "--max-age-jitter", "30m", "--memory-limit", "1G", "--memory-check-interval", "10s",
		"--idle-timeout", "75s", "--autoscale", "--scale-up-cpu", "80%", "--scale-down-cpu", "20",
		"--scale-up-after", "30s", "--scale-down-after", "5m", "--", "true")
	if r.code != 0 {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	c := r.cfg
	if c.Watchdog != 2*time.Second || c.MaxRequests != 10000 || c.MaxRequestsJitter != 500 ||
		c.MaxAge != 6*time.Hour || c.MaxAgeJitter != 30*time.Minute || c.MemoryLimit != 1<<30 ||
		c.MemoryCheckInterval != 10*time.Second || c.IdleTimeout != 75*time.Second || !c.Autoscale ||
		c.ScaleUpCPU != 80 || c.ScaleDownCPU != 20 || c.ScaleUpAfter != 30*time.Second || c.ScaleDownAfter != 5*time.Minute {
		t.Errorf("config %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	r = runHerd(t, "run", "--", "true")
	c = r.cfg
	if c.Watchdog != 0 || c.MaxRequests != 0 || c.MaxRequestsJitter != 0 || c.MaxAge != 0 || c.MaxAgeJitter != 0 ||
		c.MemoryLimit != 0 || c.MemoryCheckInterval != herd.DefaultMemoryCheck || c.IdleTimeout != 0 || c.Autoscale ||
		c.ScaleUpCPU != 75 || c.ScaleDownCPU != 25 || c.ScaleUpAfter != 10*time.Second || c.ScaleDownAfter != time.Minute {
		t.Errorf("defaults: %+v", c)
	}
}

// TestHealthFlagsBad checks bad values of the health, recycling and
// autoscaling flags are refused with one line naming the option and exit 2.
func TestHealthFlagsBad(t *testing.T) {
	for _, tc := range []badInput{
		{name: "watchdog 0", args: []string{"--watchdog", "0"}, want: []string{"--watchdog", `"0"`, "more than 0s"}},
		{name: "watchdog negative", args: []string{"--watchdog=-1s"}, want: []string{"--watchdog", `"-1s"`}},
		{name: "watchdog bad", args: []string{"--watchdog", "often"}, want: []string{"--watchdog", `"often"`}},
		{name: "max-requests negative", args: []string{"--max-requests=-1"}, want: []string{"--max-requests", `"-1"`}},
		{name: "max-requests bad", args: []string{"--max-requests", "1e3"}, want: []string{"--max-requests", `"1e3"`}},
		{name: "jitter negative", args: []string{"--max-requests", "9", "--max-requests-jitter=-5"},
			want: []string{"--max-requests-jitter", `"-5"`}},
		{name: "jitter alone", args: []string{"--max-requests-jitter", "5"}, want: []string{"--max-requests-jitter needs --max-requests"}},
		{name: "max-age bad", args: []string{"--max-age", "1d"}, want: []string{"--max-age", `"1d"`}},
		{name: "max-age negative", args: []string{"--max-age=-1h"}, want: []string{"--max-age", `"-1h"`}},
		{name: "age jitter alone", args: []string{"--max-age-jitter", "1m"}, want: []string{"--max-age-jitter needs --max-age"}},
		{name: "age jitter too big", args: []string{"--max-age", "1m", "--max-age-jitter", "1m"},
			want: []string{"--max-age-jitter 1m0s must be below --max-age 1m0s"}},
		{name: "memory-limit bad", args: []string{"--memory-limit", "lots"}, want: []string{"--memory-limit", `"lots"`}},
		{name: "memory-limit unit", args: []string{"--memory-limit", "1TB"}, want: []string{"--memory-limit", `"1TB"`}},
		{name: "memory-limit negative", args: []string{"--memory-limit=-1"}, want: []string{"--memory-limit", `"-1"`}},
		{name: "memory-check 0", args: []string{"--memory-check-interval", "0s"}, want: []string{"--memory-check-interval", `"0s"`}},
		{name: "idle-timeout negative", args: []string{"--idle-timeout=-1s"}, want: []string{"--idle-timeout", `"-1s"`}},
		{name: "autoscale bad", args: []string{"--autoscale=sometimes"}, want: []string{"--autoscale", `"sometimes"`}},
		{name: "scale-up-cpu 0", args: []string{"--scale-up-cpu", "0"}, want: []string{"--scale-up-cpu", `"0"`, "more than 0%"}},
		{name: "scale-up-cpu bad", args: []string{"--scale-up-cpu", "high"}, want: []string{"--scale-up-cpu", `"high"`}},
		{name: "scale-up-cpu NaN", args: []string{"--scale-up-cpu", "NaN%"}, want: []string{"--scale-up-cpu", `"NaN%"`}},
		{name: "scale-down-cpu 0", args: []string{"--scale-down-cpu", "0%"}, want: []string{"--scale-down-cpu", `"0%"`}},
		{name: "scale-down-cpu negative", args: []string{"--scale-down-cpu=-5"}, want: []string{"--scale-down-cpu", `"-5"`}},
		{name: "band upside down", args: []string{"--scale-up-cpu", "50", "--scale-down-cpu", "60%"},
			want: []string{"--scale-down-cpu 60% must be below --scale-up-cpu 50%"}},
		{name: "scale-up-after 0", args: []string{"--scale-up-after", "0"}, want: []string{"--scale-up-after", `"0"`}},
		{name: "scale-down-after 0", args: []string{"--scale-down-after", "0s"}, want: []string{"--scale-down-after", `"0s"`}},
		{name: "env watchdog", env: map[string]string{"HERD_WATCHDOG": "0"}, want: []string{"HERD_WATCHDOG", "--watchdog", `"0"`}},
		{name: "env memory-limit", env: map[string]string{"HERD_MEMORY_LIMIT": "big"},
			want: []string{"HERD_MEMORY_LIMIT", "--memory-limit", `"big"`}},
		{name: "file scale-up-cpu", file: "scale-up-cpu: 0%\n", want: []string{"herd.yaml:1", "scale-up-cpu", `"0%"`}},
		{name: "file max-requests", file: "workers: 1\nmax-requests: -3\n", want: []string{"herd.yaml:2", "max-requests", `"-3"`}},
	} {
		checkBadInput(t, tc)
	}
}

// TestDemoHealthFlags checks herd demo has the new flags and refuses their
// bad values before starting anything.
func TestDemoHealthFlags(t *testing.T) {
	r := runHerd(t, "demo", "--help")
	for _, want := range []string{"--watchdog DURATION", "--max-requests N", "--memory-limit SIZE",
		"--idle-timeout DURATION", "--autoscale", "--registry etcd://", "--cluster-total N"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("herd demo --help lacks %q", want)
		}
	}
	r = runHerd(t, "demo", "--watchdog", "0")
	if r.code != 2 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "--watchdog") {
		t.Errorf("herd demo --watchdog 0: code %d, stderr %q", r.code, r.stderr)
	}
}

// TestHelpNewSections checks herd run --help documents the new flags in
// their sections, in order, with config.go's defaults, and the new worker
// variables.
func TestHelpNewSections(t *testing.T) {
	out := runHerd(t, "run", "--help").stdout
	flat := strings.Join(strings.Fields(out), " ") // help wraps lines
	for _, want := range []string{
		"HEALTH AND RECYCLING", "AUTOSCALING", "MULTI-NODE CLUSTER", "heartbeats",
		"HERD_IPC", "WATCHDOG_USEC", "HERD_CLUSTER_INDEX", "HERD_CLUSTER_TOTAL", "HERD_CLUSTER_EPOCH",
		"Default: Go workers every " + herd.DefaultHeartbeat.String() + ", commands not checked.",
		"Default: " + herd.DefaultMemoryCheck.String() + ".", "Default: 75%.", "Default: 25%.",
		"Default: 10s.", "Default: 1m0s.", "Default: production.", "Default: a new UUID.",
		"Default: strict.", "Default: join.", "Default: restart.",
		"--memory-limit SIZE", "--scale-up-cpu PERCENT", "--on-rebalance restart|signal:NAME|none",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("herd run --help lacks %q", want)
		}
	}
	last := -1
	for _, sec := range []string{"\nWorker process:", "\nHealth and recycling:", "\nAutoscaling:",
		"\nMulti-node cluster:", "\nLogging:"} {
		i := strings.Index(out, sec)
		if i <= last {
			t.Errorf("section %q at %d, want after %d", sec, i, last)
		}
		last = i
	}
	for _, flag := range []string{"--watchdog", "--max-age", "--idle-timeout"} {
		sec := out[strings.Index(out, "\nHealth and recycling:"):strings.Index(out, "\nAutoscaling:")]
		if !strings.Contains(sec, "  "+flag+" ") {
			t.Errorf("%s is not in Health and recycling", flag)
		}
	}
}
