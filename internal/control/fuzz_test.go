package control

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// The fuzz targets check that the request decoders and argument parsers
// never panic, and that what they accept is valid. Their seeds run in
// every go test; fuzz them with
//
//	go test -run='^$' -fuzz=FuzzDecodeScale -fuzztime=10s ./internal/control/

func FuzzDecodeScale(f *testing.F) {
	for _, s := range []string{`{"workers": 3}`, `{"workers": 0}`, `{"workers": -1}`, `{}`, ``, `{"workers": 3}x`,
		`{"workers": 1e3}`, `{"workers": "3"}`, `{"workers": 3, "x": 1}`, `[1]`, `null`, `{"workers": 99999999999999999999}`,
		`{"workers": 2}{"workers": 3}`, `{"Workers": 4}`, " \n{\"workers\":\t5} \n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		n, err := decodeScale(strings.NewReader(body))
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("decodeScale(%q) = %d: negative accepted", body, n)
		}
		var again struct{ Workers int }
		if json.Unmarshal([]byte(body), &again) != nil || again.Workers != n {
			t.Fatalf("decodeScale(%q) = %d; encoding/json reads %+v", body, n, again)
		}
	})
}

func FuzzDecodeSignal(f *testing.F) {
	for _, s := range []string{`{"signal": "USR1"}`, `{"signal": "SIGTERM", "slot": 2}`, `{"signal": 10}`, `{"signal": "10"}`,
		`{"signal": 0}`, `{"signal": 65}`, `{"signal": "FOO"}`, `{"signal": null}`, `{"signal": true}`, `{"signal": [1]}`,
		`{"signal": "USR1", "slot": -1}`, `{"signal": 1.5}`, `{"signal": "\u0000"}`, `{}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		sig, slot, err := decodeSignal(strings.NewReader(body))
		if err != nil {
			return
		}
		if sig < 1 || sig > 64 || slot < -1 {
			t.Fatalf("decodeSignal(%q) = %d, %d: out of range accepted", body, sig, slot)
		}
	})
}

func FuzzDecodeRestart(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"slot": 0}`, `{"slot": -1}`, `{"slot": null}`, `{"slot": 1} 2`, `{"slot": "1"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		slot, err := decodeRestart(strings.NewReader(body))
		if err == nil && slot < -1 {
			t.Fatalf("decodeRestart(%q) = %d", body, slot)
		}
	})
}

func FuzzDecodeStop(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"timeout": "10s"}`, `{"timeout": "-1s"}`, `{"timeout": "1h2m3.5s"}`, `{"timeout": 10}`,
		`{"timeout": ""}`, `{"timeout": "9999999999h"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		d, err := decodeStop(strings.NewReader(body))
		if err == nil && d < 0 {
			t.Fatalf("decodeStop(%q) = %v", body, d)
		}
	})
}

func FuzzParseSignal(f *testing.F) {
	for _, s := range []string{"USR1", "sigusr1", "SIGTERM", "15", "0", "65", "-1", "", "SIG", "KILL ", "+9", "0x9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := ParseSignal(s)
		if err != nil {
			return
		}
		if sig < 1 || sig > 64 {
			t.Fatalf("ParseSignal(%q) = %d", s, sig)
		}
		if back, err := ParseSignal(SignalName(sig)); err != nil || back != sig {
			t.Fatalf("ParseSignal(SignalName(%d)) = %d, %v", sig, back, err)
		}
	})
}

func FuzzParseScaleArg(f *testing.F) {
	for _, s := range []string{"4", "+1", "-1", "0", "+0", "-0", "", "+", "-", "++1", "1.5", "x", " 3 ", "99999999999999999999", "1048577", "-1048576"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, relative, err := ParseScaleArg(s)
		if err != nil {
			return
		}
		trimmed := strings.TrimSpace(s)
		if relative != (trimmed[0] == '+' || trimmed[0] == '-') {
			t.Fatalf("ParseScaleArg(%q): relative = %v", s, relative)
		}
		if !relative && n < 0 {
			t.Fatalf("ParseScaleArg(%q) = %d: absolute and negative", s, n)
		}
		if want, err := strconv.Atoi(trimmed); err != nil || want != n {
			t.Fatalf("ParseScaleArg(%q) = %d; strconv says %d, %v", s, n, want, err)
		}
	})
}

// TestParseScaleArg pins the accepted forms.
func TestParseScaleArg(t *testing.T) {
	for _, tt := range []struct {
		in       string
		n        int
		relative bool
		ok       bool
	}{
		{"4", 4, false, true}, {"+2", 2, true, true}, {"-1", -1, true, true}, {"0", 0, false, true},
		{"", 0, false, false}, {"x", 0, false, false}, {"+", 0, false, false}, {"1.5", 0, false, false},
		{"--1", 0, false, false}, {"99999999999999999999", 0, false, false},
	} {
		n, rel, err := ParseScaleArg(tt.in)
		if (err == nil) != tt.ok || n != tt.n || rel != tt.relative {
			t.Errorf("ParseScaleArg(%q) = %d, %v, %v; want %d, %v, ok %v", tt.in, n, rel, err, tt.n, tt.relative, tt.ok)
		}
	}
}
