package herd_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd"
)

// bindOwnPort is an app that binds the port it is told instead of using
// the socket it inherits, as many do by default: Python raises
// "OSError: [Errno 98] Address already in use" and exits 1.
const bindOwnPort = `
import os, socket
s = socket.socket()
s.bind(("127.0.0.1", int(os.environ["HERD_PORT"])))
`

// TestBindOwnPort runs workers that bind herd's port themselves: herd must
// say once per slot that it holds the port and that the app must use fd 3,
// as an event, in Stats and in the crash summary.
func TestBindOwnPort(t *testing.T) {
	py := python(t)
	tc := startClusterWith(t, herd.Config{
		Workers: 2, Listen: []string{"127.0.0.1:0"}, RespawnDelay: 10 * time.Millisecond, MaxCrashes: 3,
		CrashWindow: time.Minute, Ready: herd.ReadyNotify, ReadyTimeout: waitLimit, // never ready, however slow Python starts
	}, "", "", nil, py, "-c", bindOwnPort)
	hints := tc.ev.waitN(t, 0, 2, "setup_error", is(herd.EventSetupError))
	port := tc.stats(t).Slots[0].Port
	want := "herd already listens on :" + strconv.Itoa(port) + "; the app must use the inherited socket (fd 3, LISTEN_FDS)"
	for _, e := range hints {
		if !strings.Contains(e.Reason, want) {
			t.Errorf("slot %d: setup error %q; want %q", e.Slot, e.Reason, want)
		}
	}
	if hints[0].Slot == hints[1].Slot {
		t.Errorf("two setup errors for slot %d; want one per slot", hints[0].Slot)
	}
	if w := tc.stats(t).Warnings; len(w) != 2 || !strings.Contains(w[0], want) {
		t.Errorf("Stats().Warnings = %q; want the 2 setup errors", w)
	}
	err := tc.wait(t)
	var nr *herd.NoWorkerReadyError
	if !errors.As(err, &nr) {
		t.Fatalf("Run = %v; want *NoWorkerReadyError", err)
	}
	out := strings.Join(nr.Output, "\n")
	if !strings.Contains(out, "Errno 98") || !strings.Contains(out, "[0] herd: "+want) || !strings.Contains(out, "[1] herd: "+want) {
		t.Errorf("crash summary %q; want the error and the setup error of each slot", out)
	}
	if n := tc.ev.count(0, is(herd.EventSetupError)); n != 2 {
		t.Errorf("%d setup errors after %d crashes; want one per slot, 2", n, tc.ev.count(0, is(herd.EventExited)))
	}
}

// TestMaxRequestsWithoutIPC runs a command that does not speak the IPC
// protocol with MaxRequests: once its channel times out without a hello,
// herd must say, once, that requests will not recycle it.
func TestMaxRequestsWithoutIPC(t *testing.T) {
	tc := startClusterWith(t, herd.Config{
		Workers: 2, Ready: herd.ReadyDelay, ReadyDelay: 10 * time.Millisecond, MaxRequests: 1000,
	}, "", "", nil, "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done")
	e := tc.ev.waitN(t, 0, 1, "setup_error", is(herd.EventSetupError))[0]
	want := "--max-requests needs workers that report requests over HERD_IPC; slot " + strconv.Itoa(e.Slot) +
		"'s command does not, so requests will not recycle it"
	if e.Reason != want {
		t.Errorf("setup error %q; want %q", e.Reason, want)
	}
	if w := tc.stats(t).Warnings; len(w) != 1 || !strings.Contains(w[0], want) {
		t.Errorf("Stats().Warnings = %q; want the setup error", w)
	}
	tc.stop(t)
	if n := tc.ev.count(0, is(herd.EventSetupError)); n != 1 {
		t.Errorf("%d setup errors; want 1 per cluster", n)
	}
}
