package notify

import (
	"io"
	"os"
	"os/exec"
	"testing"

	"github.com/herd-cluster/herd/internal/testkit"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/goleak"
)

// helperEnv selects a helper role when the test binary is re-executed as a
// child process.
const helperEnv = "HERD_NOTIFY_TEST_HELPER"

const (
	// roleNotify sends READY=1 to NOTIFY_SOCKET, then waits for EOF on stdin.
	roleNotify = "notify"
	// roleSpawn starts the test binary again in roleNotify, sharing its
	// stdin, and waits for it.
	roleSpawn = "spawn"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		goleak.VerifyTestMain(m)
	case roleNotify:
		os.Exit(helperNotify())
	case roleSpawn:
		os.Exit(helperSpawn())
	default:
		os.Exit(3)
	}
}

func helperNotify() int {
	if ok, err := daemon.SdNotify(false, "READY=1\nSTATUS=child"); !ok || err != nil {
		return 1
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

func helperSpawn() int {
	cmd := helperCommand(roleNotify)
	cmd.Stdin = os.Stdin
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return 2
	}
	return 0
}

// helperCommand returns a command re-executing the test binary in role.
func helperCommand(role string) *exec.Cmd { return testkit.SelfCommand(helperEnv + "=" + role) }
