package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// backtraceScript fails as puma does on a bad config: the error line,
// then 30 lines of backtrace, exit 1.
const backtraceScript = `echo "/app/config/puma.rb:3:in 'require': cannot load such file -- missing_gem (LoadError)" >&2
i=0; while [ $i -lt 30 ]; do echo "	from /gems/puma/lib/frame$i.rb:$i:in 'load'" >&2; i=$((i+1)); done
exit 1`

// TestCrashSummaryKeepsError runs a cluster whose workers print an error
// and a long backtrace and exit: the summary herd prints must name the
// error, not only the last frames, and stay bounded.
func TestCrashSummaryKeepsError(t *testing.T) {
	// --ready notify: the worker is never taken as ready, however slowly
	// it starts on a loaded machine, so herd ends with the summary.
	cmd := exec.Command(os.Args[0], "run", "--workers", "1", "--respawn-delay", "5ms", "--log-level", "error", "--ready", "notify",
		"--control", "-", "--", "sh", "-c", backtraceScript)
	cmd.Env = append(os.Environ(), mainSwitch+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("herd: %v; want exit status 1\n%s", err, stderr.String())
	}
	before, out, _ := strings.Cut(stderr.String(), "the workers' last lines on stderr:")
	if !strings.Contains(before, "no worker ever became ready") {
		t.Errorf("stderr does not say that no worker became ready:\n%s", stderr.String())
	}
	for _, want := range []string{"[0] /app/config/puma.rb:3:in 'require': cannot load such file",
		"[0] … 20 more lines …", "frame29.rb"} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "from /gems/puma"); n != 10 {
		t.Errorf("stderr shows %d frames; want the last 10:\n%s", n, out)
	}
}
