package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/herd-cluster/herd"
)

// Autoscaling defaults, as herd.Config documents them for its zero values.
const (
	defaultScaleUpCPU     = 75
	defaultScaleDownCPU   = 25
	defaultScaleUpAfter   = 10 * time.Second
	defaultScaleDownAfter = time.Minute
)

// healthFlags holds the values of the health, recycling and autoscaling
// flags.
type healthFlags struct {
	watchdog          time.Duration
	maxRequests       uint64
	maxRequestsJitter uint64
	maxAge            time.Duration
	maxAgeJitter      time.Duration
	memoryLimit       uint64
	memoryCheck       time.Duration
	idleTimeout       time.Duration
	autoscale         bool
	scaleUpCPU        float64
	scaleDownCPU      float64
	scaleUpAfter      time.Duration
	scaleDownAfter    time.Duration
	scaleUpQueue      uint64
}

// addHealthFlags registers the Health and recycling section. Zero is
// refused where herd.Config would read it as a default other than "none".
func (h *healthFlags) addHealthFlags(fs *pflag.FlagSet) {
	g := "Health and recycling"
	h.memoryCheck = herd.DefaultMemoryCheck
	add(fs, g, &durationValue{p: &h.watchdog}, "watchdog", "`DURATION`",
		"How often workers must prove they are alive: Go workers send heartbeats over IPC; commands get WATCHDOG_USEC and must send WATCHDOG=1 on NOTIFY_SOCKET (sd_watchdog_enabled(3)). A worker silent for two intervals is hung: it is replaced and killed. Default: Go workers every "+
			herd.DefaultHeartbeat.String()+", commands not checked.")
	add(fs, g, &uint64Value{&h.maxRequests}, "max-requests", "`N`",
		"Recycle a worker (replace it gracefully, its successor ready first) after it handled N requests: Go workers, or commands that report their count over HERD_IPC (docs/PROTOCOL.md); herd logs an error once when a command has not said hello on its channel 5s after it started. 0 for no limit.")
	add(fs, g, &uint64Value{&h.maxRequestsJitter}, "max-requests-jitter", "`N`",
		"Add a random 0 to N to each worker's --max-requests, so that workers do not recycle together.")
	add(fs, g, &durationValue{p: &h.maxAge, zeroOK: true}, "max-age", "`DURATION`",
		"Recycle a worker once it has lived this long. 0 for no limit.")
	add(fs, g, &durationValue{p: &h.maxAgeJitter, zeroOK: true}, "max-age-jitter", "`DURATION`",
		"Vary each worker's --max-age by up to this much either way; below --max-age.")
	add(fs, g, &limitValue{&h.memoryLimit}, "memory-limit", "`SIZE`",
		"Recycle a worker whose process tree's resident memory passes SIZE: bytes, or with a unit such as 512MiB, 500MB or 1G. Works for any command. 0 for no limit.")
	add(fs, g, &durationValue{p: &h.memoryCheck}, "memory-check-interval", "`DURATION`",
		"How often --memory-limit is checked.")
	add(fs, g, &durationValue{p: &h.idleTimeout, zeroOK: true}, "idle-timeout", "`DURATION`",
		"Go workers' listeners close connections idle (no read or write) for longer than this. 0 for never.")
}

// addScaleFlags registers the Autoscaling section.
func (h *healthFlags) addScaleFlags(fs *pflag.FlagSet) {
	g := "Autoscaling"
	h.scaleUpCPU, h.scaleDownCPU = defaultScaleUpCPU, defaultScaleDownCPU
	h.scaleUpAfter, h.scaleDownAfter = defaultScaleUpAfter, defaultScaleDownAfter
	fs.BoolVar(&h.autoscale, "autoscale", false,
		"Keep the workers between --min-workers and --max-workers by their average CPU use: one more while it stays above --scale-up-cpu, one fewer while it stays below --scale-down-cpu; never during a rolling restart.")
	annotate(fs, "autoscale", g)
	add(fs, g, &percentValue{&h.scaleUpCPU}, "scale-up-cpu", "`PERCENT`",
		"Average CPU use of the workers (percent of one core, as 75 or 75%) above which --autoscale adds a worker.")
	add(fs, g, &durationValue{p: &h.scaleUpAfter}, "scale-up-after", "`DURATION`",
		"How long the CPU use must stay above --scale-up-cpu before a worker is added.")
	add(fs, g, &percentValue{&h.scaleDownCPU}, "scale-down-cpu", "`PERCENT`",
		"Average CPU use below which --autoscale removes a worker; below --scale-up-cpu.")
	add(fs, g, &durationValue{p: &h.scaleDownAfter}, "scale-down-after", "`DURATION`",
		"How long the CPU use must stay below --scale-down-cpu before a worker is removed.")
	add(fs, g, &uint64Value{&h.scaleUpQueue}, "scale-up-queue", "`N`",
		"Also add a worker when N or more connections wait in the TCP listeners' accept queues at every reading for --scale-up-after while workers accept them, and remove none while they do. 0 for CPU only.")
}

// check refuses combinations no single flag can judge: a jitter without
// its limit, and a scaling band upside down.
func (h *healthFlags) check() error {
	switch {
	case h.maxRequestsJitter > 0 && h.maxRequests == 0:
		return usageErrorf("--max-requests-jitter needs --max-requests")
	case h.maxAgeJitter > 0 && h.maxAge == 0:
		return usageErrorf("--max-age-jitter needs --max-age")
	case h.maxAgeJitter > 0 && h.maxAgeJitter >= h.maxAge:
		return usageErrorf("--max-age-jitter %s must be below --max-age %s", h.maxAgeJitter, h.maxAge)
	case h.scaleUpQueue > math.MaxInt32:
		return usageErrorf("--scale-up-queue %d is too large", h.scaleUpQueue)
	case h.scaleDownCPU >= h.scaleUpCPU:
		return usageErrorf("--scale-down-cpu %s must be below --scale-up-cpu %s",
			formatPercent(h.scaleDownCPU), formatPercent(h.scaleUpCPU))
	}
	return nil
}

// apply copies the values into cfg.
func (h *healthFlags) apply(cfg *herd.Config) {
	cfg.Watchdog = h.watchdog
	cfg.MaxRequests, cfg.MaxRequestsJitter = h.maxRequests, h.maxRequestsJitter
	cfg.MaxAge, cfg.MaxAgeJitter = h.maxAge, h.maxAgeJitter
	cfg.MemoryLimit, cfg.MemoryCheckInterval = h.memoryLimit, h.memoryCheck
	cfg.IdleTimeout = h.idleTimeout
	cfg.Autoscale = h.autoscale
	cfg.ScaleUpCPU, cfg.ScaleDownCPU = h.scaleUpCPU, h.scaleDownCPU
	cfg.ScaleUpAfter, cfg.ScaleDownAfter = h.scaleUpAfter, h.scaleDownAfter
	cfg.ScaleUpQueue = int(h.scaleUpQueue)
}

// uint64Value is a count flag of 0 or more.
type uint64Value struct {
	p *uint64
}

// Set parses s as a decimal integer of 0 or more.
func (v *uint64Value) Set(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return errors.New("not a whole number of 0 or more")
	}
	*v.p = n
	return nil
}

// String returns the value in decimal.
func (v *uint64Value) String() string { return strconv.FormatUint(*v.p, 10) }

// Type names the value kind for help output.
func (v *uint64Value) Type() string { return "uint64" }

// limitValue is a byte size that may be 0 for no limit; other values are
// read by parseSize, as --log-max-size is.
type limitValue struct {
	p *uint64
}

// Set parses s as 0 or a size.
func (v *limitValue) Set(s string) error {
	if strings.TrimSpace(s) == "0" {
		*v.p = 0
		return nil
	}
	n, err := parseSize(s)
	if err != nil {
		return fmt.Errorf("%w (0 for no limit)", err)
	}
	*v.p = uint64(n)
	return nil
}

// String returns the size the short way, as 512MiB.
func (v *limitValue) String() string { return formatSize(int64(*v.p)) }

// Type names the value kind for help output.
func (v *limitValue) Type() string { return "size" }

// percentValue is a CPU percentage above 0, given as 75 or 75%. It may pass
// 100: a worker's process tree can use more than one core.
type percentValue struct {
	p *float64
}

// Set parses s as a number with an optional % sign.
func (v *percentValue) Set(s string) error {
	t := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	f, err := strconv.ParseFloat(t, 64)
	switch {
	case err != nil || math.IsNaN(f) || math.IsInf(f, 0):
		return errors.New("not a percentage such as 75 or 75%")
	case f <= 0:
		return errors.New("must be more than 0%")
	}
	*v.p = f
	return nil
}

// String returns the value with a % sign.
func (v *percentValue) String() string { return formatPercent(*v.p) }

// Type names the value kind for help output.
func (v *percentValue) Type() string { return "percent" }

// formatPercent writes f as 75% or 62.5%.
func formatPercent(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) + "%" }
