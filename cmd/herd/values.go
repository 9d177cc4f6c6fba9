package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/herd-cluster/herd"
	"github.com/herd-cluster/herd/internal/control"
)

// The flag value types below parse and check one option each, so that a
// value from the command line, the environment or the config file goes
// through the same Set and fails with the same message.

// intValue is an int flag with a lower bound.
type intValue struct {
	p   *int
	min int
}

// Set parses s as a decimal integer of at least v.min.
func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return errors.New("not an integer")
	}
	if n < v.min {
		return fmt.Errorf("must be at least %d", v.min)
	}
	*v.p = n
	return nil
}

// String returns the value in decimal.
func (v *intValue) String() string { return strconv.Itoa(*v.p) }

// Type names the value kind for help output.
func (v *intValue) Type() string { return "int" }

// durationValue is a time.Duration flag that must be positive, or, with
// zeroOK, at least zero; with min, at least min.
type durationValue struct {
	p      *time.Duration
	zeroOK bool
	min    time.Duration
}

// Set parses s with time.ParseDuration and checks its sign.
func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("not a duration such as 500ms, 5s or 1m: %w", err)
	}
	switch {
	case d < 0:
		return errors.New("must not be negative")
	case d == 0 && !v.zeroOK:
		return errors.New("must be more than 0s")
	case d < v.min:
		return fmt.Errorf("must be at least %s", v.min)
	}
	*v.p = d
	return nil
}

// String formats the duration the way time.Duration does.
func (v *durationValue) String() string { return v.p.String() }

// Type names the value kind for help output.
func (v *durationValue) Type() string { return "duration" }

// enumValue is a string flag restricted to a fixed set of words.
type enumValue struct {
	p       *string
	allowed []string
}

// Set accepts one of v.allowed, case-insensitively.
func (v *enumValue) Set(s string) error {
	t := strings.ToLower(strings.TrimSpace(s))
	for _, a := range v.allowed {
		if t == a {
			*v.p = a
			return nil
		}
	}
	return fmt.Errorf("must be %s", strings.Join(v.allowed, " or "))
}

// String returns the current word.
func (v *enumValue) String() string { return *v.p }

// Type names the value kind for help output.
func (v *enumValue) Type() string { return strings.Join(v.allowed, "|") }

// workersValue is --workers: a count, auto (or 0) or physical. It keeps the
// word and resolves it to a number only when the Config is built.
type workersValue struct {
	spec string
}

// Set accepts a non-negative integer, auto or physical.
func (v *workersValue) Set(s string) error {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "auto" || t == "physical" {
		v.spec = t
		return nil
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 {
		return errors.New("must be a number of workers, auto or physical")
	}
	v.spec = strconv.Itoa(n)
	if n == 0 {
		v.spec = "auto"
	}
	return nil
}

// String returns the word or number given.
func (v *workersValue) String() string { return v.spec }

// Type names the value kind for help output.
func (v *workersValue) Type() string { return "workers" }

// count returns the number of workers the value stands for.
func (v *workersValue) count() int {
	switch v.spec {
	case "auto":
		return herd.CPUs()
	case "physical":
		return herd.PhysicalCPUs()
	}
	n, _ := strconv.Atoi(v.spec) // Set only stores numbers and the words
	return n
}

// signalValue is a signal flag: a name with or without SIG, or a number.
type signalValue struct {
	p *syscall.Signal
}

// Set parses s with parseSignal.
func (v *signalValue) Set(s string) error {
	sig, err := parseSignal(s)
	if err != nil {
		return err
	}
	*v.p = sig
	return nil
}

// String returns the signal's short name, such as TERM.
func (v *signalValue) String() string { return signalName(*v.p) }

// Type names the value kind for help output.
func (v *signalValue) Type() string { return "signal" }

// parseSignal reads TERM, SIGTERM, sigterm or 15 as syscall.SIGTERM, as
// the control API does.
var parseSignal = control.ParseSignal

// signalName returns the name of sig without SIG, or its number.
var signalName = control.SignalName

// signalListValue is --forward: signals given one per flag or
// comma-separated, or "none". The first Set replaces the default.
type signalListValue struct {
	p   *[]syscall.Signal
	set bool
}

// Set adds the signals in s (or clears the list for "none").
func (v *signalListValue) Set(s string) error {
	if !v.set {
		*v.p = []syscall.Signal{}
		v.set = true
	}
	return v.Append(s)
}

// Append adds the comma-separated signals in s; "none" clears the list.
func (v *signalListValue) Append(s string) error {
	for part := range strings.SplitSeq(s, ",") {
		if strings.EqualFold(strings.TrimSpace(part), "none") {
			*v.p = []syscall.Signal{}
			continue
		}
		sig, err := parseSignal(part)
		if err != nil {
			return err
		}
		if err := checkForward(sig); err != nil {
			return err
		}
		*v.p = append(*v.p, sig)
	}
	return nil
}

// Replace sets the list to items, as from the environment or a file.
func (v *signalListValue) Replace(items []string) error {
	old := *v.p
	*v.p = []syscall.Signal{}
	for _, s := range items {
		if err := v.Append(s); err != nil {
			*v.p = old
			return err
		}
	}
	v.set = true
	return nil
}

// GetSlice returns the signals' names.
func (v *signalListValue) GetSlice() []string {
	names := make([]string, len(*v.p))
	for i, sig := range *v.p {
		names[i] = signalName(sig)
	}
	return names
}

// String returns the names comma-separated, or none.
func (v *signalListValue) String() string {
	if len(*v.p) == 0 {
		return "none"
	}
	return strings.Join(v.GetSlice(), ",")
}

// Type names the value kind for help output.
func (v *signalListValue) Type() string { return "signals" }

// checkForward refuses signals that cannot be caught or that the primary
// acts on itself.
func checkForward(sig syscall.Signal) error {
	switch sig {
	case syscall.SIGKILL, syscall.SIGSTOP:
		return fmt.Errorf("%s cannot be caught, so it cannot be forwarded", signalName(sig))
	case syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR2, syscall.SIGTTIN,
		syscall.SIGTTOU, syscall.SIGCHLD:
		return fmt.Errorf("%s is handled by the primary itself", signalName(sig))
	case syscall.SIGHUP:
		return errors.New("HUP is handled by the primary: use --hup forward")
	}
	return nil
}

// listValue is a repeatable string flag. The first Set replaces the
// default, later ones append; check validates each item and split cuts an
// environment value into items.
type listValue struct {
	p     *[]string
	check func(string) error
	split func(string) []string
	set   bool
}

// Set checks s and appends it, replacing the default on first use.
func (v *listValue) Set(s string) error {
	if err := v.check(s); err != nil {
		return err
	}
	if !v.set {
		*v.p = nil
		v.set = true
	}
	*v.p = append(*v.p, s)
	return nil
}

// Append checks s and appends it.
func (v *listValue) Append(s string) error {
	if err := v.check(s); err != nil {
		return err
	}
	*v.p = append(*v.p, s)
	return nil
}

// Replace checks every item and then sets the list to items.
func (v *listValue) Replace(items []string) error {
	for _, s := range items {
		if err := v.check(s); err != nil {
			return fmt.Errorf("%q: %w", s, err)
		}
	}
	*v.p = append([]string(nil), items...)
	v.set = true
	return nil
}

// GetSlice returns the items.
func (v *listValue) GetSlice() []string { return append([]string(nil), *v.p...) }

// String returns the items comma-separated.
func (v *listValue) String() string { return strings.Join(*v.p, ",") }

// Type names the value kind for help output.
func (v *listValue) Type() string { return "list" }

// splitEnv cuts an environment value into items with v.split.
func (v *listValue) splitEnv(s string) []string { return v.split(s) }
