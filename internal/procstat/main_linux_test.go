package procstat

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/testkit"

	"go.uber.org/goleak"
)

// helperEnv selects a helper role when the test binary is re-executed as a
// child process.
const helperEnv = "HERD_PROCSTAT_TEST_HELPER"

// waitLimit bounds every wait of the tests.
const waitLimit = 10 * time.Second

// allocBytes is what the alloc helper allocates and touches.
const allocBytes = 64 << 20

// helpers are the roles of a re-executed test binary. Each prints "ready"
// (and maybe more) on stdout once set up, then runs until stdin closes.
var helpers = map[string]func() int{
	// idle does nothing.
	"idle": func() int { return readyThenWait("") },
	// alloc touches allocBytes and starts an idle grandchild sharing its
	// stdin; it prints the grandchild's pid.
	"alloc": func() int {
		mem := make([]byte, allocBytes)
		for i := 0; i < len(mem); i += 4096 {
			mem[i] = 1
		}
		gc := helperCommand("idle")
		gc.Stdin = os.Stdin
		if err := gc.Start(); err != nil {
			return 2
		}
		code := readyThenWait(strconv.Itoa(gc.Process.Pid))
		runtime.KeepAlive(mem)
		_ = gc.Process.Kill()
		_ = gc.Wait()
		return code
	},
	// burn spins on one CPU.
	"burn": func() int {
		go func() {
			for n := 0; ; n++ {
				_ = n * n
			}
		}()
		return readyThenWait("")
	},
}

func TestMain(m *testing.M) {
	role := os.Getenv(helperEnv)
	if role == "" {
		goleak.VerifyTestMain(m)
		return
	}
	h, ok := helpers[role]
	if !ok {
		os.Exit(3)
	}
	os.Exit(h())
}

func readyThenWait(extra string) int {
	fmt.Println(strings.TrimSpace("ready " + extra))
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// helperCommand returns a command re-executing the test binary in role.
func helperCommand(role string) *exec.Cmd { return testkit.SelfCommand(helperEnv + "=" + role) }

// startHelper starts role in its own process group, waits until it is
// ready, and returns it with the rest of its ready line. Cleanup kills the
// whole group and waits for the child.
func startHelper(tb testing.TB, role string) (*exec.Cmd, string) {
	tb.Helper()
	cmd := helperCommand(role)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	cmd.Stdout, cmd.Stderr = w, os.Stderr
	err = cmd.Start()
	_ = w.Close()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = stdin.Close()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	_ = r.SetReadDeadline(time.Now().Add(waitLimit))
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		tb.Fatalf("helper %s: got %q, %v; want a ready line", role, line, err)
	}
	return cmd, strings.TrimSpace(strings.TrimPrefix(line, "ready"))
}
