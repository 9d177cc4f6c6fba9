package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxBody is the largest request body the API reads.
const maxBody = 1 << 20

// errEmpty is decodeJSON's error for a body with no JSON value.
var errEmpty = errors.New("empty body")

// decodeJSON decodes the single JSON object in r into v. Unknown fields,
// a second value after it and an empty body (errEmpty) are errors.
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errEmpty
		}
		return fmt.Errorf("bad JSON body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("bad JSON body: data after the object")
	}
	return nil
}

// decodeOptional is decodeJSON where an empty body leaves v as it is.
func decodeOptional(r io.Reader, v any) error {
	if err := decodeJSON(r, v); err != nil && !errors.Is(err, errEmpty) {
		return err
	}
	return nil
}

// decodeScale reads {"workers": N}, N >= 0.
func decodeScale(r io.Reader) (int, error) {
	var req struct {
		Workers *int `json:"workers"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return 0, err
	}
	switch {
	case req.Workers == nil:
		return 0, errors.New(`"workers" is required, as in {"workers": 4}`)
	case *req.Workers < 0:
		return 0, fmt.Errorf("workers %d is negative", *req.Workers)
	}
	return *req.Workers, nil
}

// decodeRestart reads an optional {"slot": N}; no slot is -1, every slot.
func decodeRestart(r io.Reader) (int, error) {
	var req struct {
		Slot *int `json:"slot"`
	}
	if err := decodeOptional(r, &req); err != nil {
		return 0, err
	}
	return optionalSlot(req.Slot)
}

// decodeSignal reads {"signal": "USR1"|"SIGUSR1"|10, "slot": N?}; no slot
// is -1, every slot.
func decodeSignal(r io.Reader) (syscall.Signal, int, error) {
	var req struct {
		Signal json.RawMessage `json:"signal"`
		Slot   *int            `json:"slot"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return 0, 0, err
	}
	if len(req.Signal) == 0 || string(req.Signal) == "null" {
		return 0, 0, errors.New(`"signal" is required, as in {"signal": "USR1"}`)
	}
	var name string
	if req.Signal[0] == '"' {
		if err := json.Unmarshal(req.Signal, &name); err != nil {
			return 0, 0, fmt.Errorf("bad signal: %w", err)
		}
	} else {
		name = string(req.Signal)
	}
	sig, err := ParseSignal(name)
	if err != nil {
		return 0, 0, err
	}
	slot, err := optionalSlot(req.Slot)
	return sig, slot, err
}

// decodeStop reads an optional {"timeout": "10s"}; none is 0, the
// configured shutdown timeout.
func decodeStop(r io.Reader) (time.Duration, error) {
	var req struct {
		Timeout string `json:"timeout"`
	}
	if err := decodeOptional(r, &req); err != nil || req.Timeout == "" {
		return 0, err
	}
	d, err := time.ParseDuration(req.Timeout)
	switch {
	case err != nil:
		return 0, fmt.Errorf("timeout %q is not a duration such as 10s", req.Timeout)
	case d < 0:
		return 0, fmt.Errorf("timeout %s is negative", req.Timeout)
	}
	return d, nil
}

func optionalSlot(p *int) (int, error) {
	switch {
	case p == nil:
		return -1, nil
	case *p < 0:
		return 0, fmt.Errorf("slot %d is negative", *p)
	}
	return *p, nil
}

// ParseSignal reads a signal: a name with or without SIG, in any case
// (USR1, SIGUSR1, usr1), or a number from 1 to 64.
func ParseSignal(s string) (syscall.Signal, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(t); err == nil {
		if n < 1 || n > 64 {
			return 0, fmt.Errorf("signal number %d is outside 1-64", n)
		}
		return syscall.Signal(n), nil
	}
	if !strings.HasPrefix(t, "SIG") {
		t = "SIG" + t
	}
	if sig := unix.SignalNum(t); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// SignalName returns the name of sig without SIG (USR1), or its number.
func SignalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return strings.TrimPrefix(name, "SIG")
	}
	return strconv.Itoa(int(sig))
}

// ParseScaleArg reads the argument of herd scale: N sets the number of
// workers; +N and -N change it by N (relative is then true and n signed).
func ParseScaleArg(s string) (n int, relative bool, err error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, false, errors.New("want a number of workers: N, +N or -N")
	}
	relative = t[0] == '+' || t[0] == '-'
	digits := t
	if relative {
		digits = t[1:]
	}
	if digits == "" || strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, false, fmt.Errorf("%q is not a number of workers: want N, +N or -N", s)
	}
	n, err = strconv.Atoi(t)
	if err != nil || n > 1<<20 || n < -(1<<20) {
		return 0, false, fmt.Errorf("%q is out of range", s)
	}
	return n, relative, nil
}
