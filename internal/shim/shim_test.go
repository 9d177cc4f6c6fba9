package shim

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/herd-cluster/herd/internal/envvar"
)

// run starts command through the shim, as the primary does (this process
// playing the primary), and returns what it printed.
func run(t *testing.T, env []string, command ...string) (string, int, error) {
	t.Helper()
	path, args, extra := Command(command, "/nonexistent/herd")
	if path != Shell {
		t.Skipf("no %s on this system: the shim is the herd executable, tested in the root package", Shell)
	}
	cmd := exec.Command(path)
	cmd.Args = args
	cmd.Env = append(append(os.Environ(), env...), extra...)
	out, err := cmd.CombinedOutput()
	return string(out), cmd.Process.Pid, err
}

func TestShimSetsItsPID(t *testing.T) {
	self := envvar.PrimaryPID + "=" + strconv.Itoa(os.Getpid())
	tests := []struct {
		name string
		env  []string
		want func(pid string) string
	}{
		{"sockets", []string{self, envvar.ListenFDs + "=1"}, func(pid string) string { return pid + " - " + pid }},
		{"watchdog", []string{self, envvar.WatchdogUSec + "=1000"}, func(pid string) string { return "- " + pid + " " + pid }},
		{"neither", []string{self}, func(pid string) string { return "- - " + pid }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The command is sh again: $$ is the pid it runs as, which
			// must be the shim's own.
			out, pid, err := run(t, tc.env, "sh", "-c", `echo "${LISTEN_PID:--} ${WATCHDOG_PID:--} $$"`, "arg0 with spaces")
			if err != nil {
				t.Fatalf("shim: %v\n%s", err, out)
			}
			if got, want := strings.TrimSpace(out), tc.want(strconv.Itoa(pid)); got != want {
				t.Errorf("printed %q; want %q", got, want)
			}
		})
	}
}

// TestShimArguments checks that arguments reach the command as they are,
// never parsed by the shell.
func TestShimArguments(t *testing.T) {
	self := envvar.PrimaryPID + "=" + strconv.Itoa(os.Getpid())
	args := []string{"a b", "$HOME", "`id`", "'\"", "*", ""}
	out, _, err := run(t, []string{self}, append([]string{"printf", "[%s]"}, args...)...)
	if err != nil {
		t.Fatalf("shim: %v\n%s", err, out)
	}
	if want := "[a b][$HOME][`id`]['\"][*][]"; out != want {
		t.Errorf("printed %q; want %q", out, want)
	}
}

// TestShimOrphan checks that the shim refuses to run the command when its
// parent is not the primary that started it.
func TestShimOrphan(t *testing.T) {
	out, _, err := run(t, []string{envvar.PrimaryPID + "=1"}, "echo", "ran")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 127 || strings.Contains(out, "ran") {
		t.Fatalf("shim under another parent: %v, %q; want exit 127 without running the command", err, out)
	}
	if !strings.Contains(out, "the primary is gone") {
		t.Errorf("output %q does not say why", out)
	}
}

func TestShimMissingCommand(t *testing.T) {
	self := envvar.PrimaryPID + "=" + strconv.Itoa(os.Getpid())
	_, _, err := run(t, []string{self}, "/nonexistent/server")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 127 {
		t.Errorf("missing command: %v; want exit 127", err)
	}
}

// TestFallback checks that a system without a usable shell gets the
// primary's own executable as the shim, told so by HERD_SHIM=1.
func TestFallback(t *testing.T) {
	dir := t.TempDir()
	notExec := dir + "/sh"
	if err := os.WriteFile(notExec, []byte("#!/bin/false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, shell := range []string{dir + "/none", dir, notExec} {
		path, args, env := command(shell, []string{"./server", "-v"}, "/proc/self/exe")
		if path != "/proc/self/exe" || strings.Join(args, " ") != "/proc/self/exe ./server -v" ||
			strings.Join(env, " ") != envvar.Shim+"=1" {
			t.Errorf("shell %s: got %s %q %q; want the herd executable with HERD_SHIM=1", shell, path, args, env)
		}
	}
}
