package herd_test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestExecShimFallback runs the shim herd uses where the system has no
// /bin/sh: this test binary, whose TestMain calls herd.ExecShim, started
// with HERD_SHIM=1 and the command as arguments. The command must run as
// the shim's own process, with LISTEN_PID and WATCHDOG_PID naming it, and
// HERD_SHIM gone.
func TestExecShimFallback(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to run as the command")
	}
	cmd := exec.Command(os.Args[0], sh, "-c", `echo "$LISTEN_PID $WATCHDOG_PID $$ ${HERD_SHIM:-unset}"`)
	cmd.Env = append(os.Environ(), "HERD_SHIM=1", "LISTEN_FDS=1", "WATCHDOG_USEC=1000000",
		"HERD_PRIMARY_PID="+strconv.Itoa(os.Getpid()))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("shim: %v", err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	if got, want := strings.TrimSpace(string(out)), pid+" "+pid+" "+pid+" unset"; got != want {
		t.Errorf("the command printed %q; want %q", got, want)
	}
	// Under another parent than the primary that started it, it runs
	// nothing.
	cmd = exec.Command(os.Args[0], sh, "-c", "echo ran")
	cmd.Env = append(os.Environ(), "HERD_SHIM=1", "HERD_PRIMARY_PID=1")
	if out, err := cmd.CombinedOutput(); err == nil || strings.Contains(string(out), "ran") {
		t.Errorf("orphaned shim: %v, %q; want a failure without running the command", err, out)
	}
}
