package herd_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-cluster/herd"
)

// TestValidateBounds checks that the library refuses the values herd run
// refuses, each with an error naming the field.
func TestValidateBounds(t *testing.T) {
	cmd := []string{"/bin/server"}
	for _, tc := range []struct {
		name string
		cfg  herd.Config
		want string
	}{
		{"workers above max", herd.Config{Workers: 1_000_000, Command: cmd}, "max-workers 1024"},
		{"max-workers above limit", herd.Config{Workers: 2, MaxWorkers: 5000, Command: cmd}, "max-workers 5000"},
		{"surge above max", herd.Config{Workers: 2, MaxWorkers: 4, MaxSurge: 5, Command: cmd}, "max-surge 5"},
		{"port", herd.Config{Workers: 1, Listen: []string{":99999"}, Command: cmd}, "99999"},
		{"duplicate name", herd.Config{Workers: 1, Listen: []string{"a=:0", "a=:0"}, Command: cmd}, "duplicate listener name"},
		{"duplicate address", herd.Config{Workers: 1, Listen: []string{"[::1]:8123", "[::1]:8123"}, Command: cmd}, "cannot both bind"},
		{"control-addr on a listen port", herd.Config{Workers: 1, Listen: []string{"127.0.0.1:8123"}, ControlAddr: ":8123", Command: cmd}, "control-addr"},
		{"long name", herd.Config{Workers: 1, Name: strings.Repeat("n", 120), Command: cmd}, "control socket"},
		{"name with newline", herd.Config{Workers: 1, Name: "a\nb", Command: cmd}, "control character"},
		{"ready-delay", herd.Config{Workers: 1, Ready: herd.ReadyDelay, ReadyDelay: time.Minute, ReadyTimeout: time.Second, Command: cmd}, "ready-delay"},
		{"stop signal", herd.Config{Workers: 1, StopSignal: syscall.Signal(99), Command: cmd}, "stop-signal"},
		{"env", herd.Config{Workers: 1, Env: []string{"NOVALUE"}, Command: cmd}, "env"},
		{"log lines", herd.Config{Workers: 1, LogLines: 1 << 30, Command: cmd}, "log-lines"},
		{"listeners", herd.Config{Workers: 1, Listen: make([]string, 200), Command: cmd}, "limit is 128"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("Validate() = %v; want one line containing %q", err, tc.want)
			}
		})
	}
	ok := herd.Config{Workers: 2, Listen: []string{"127.0.0.1:8123", "[::1]:8123", "udp:127.0.0.1:8123", ":0", ":0"}, Command: cmd}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate() of distinct sockets = %v; want nil", err)
	}
}
