package compat

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// buildDir holds the herd binary built for this run.
var buildDir string

func TestMain(m *testing.M) {
	if app := os.Getenv(appSwitch); app != "" {
		os.Exit(runGoApp(app))
	}
	os.Exit(run(m))
}

// run runs the tests, writes the report and removes the herd build.
func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "herd-compat-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	if err := report.write(); err != nil {
		fmt.Fprintln(os.Stderr, "writing the report:", err)
		return 1
	}
	return code
}

var (
	buildOnce sync.Once
	buildErr  error
)

// herdBin returns the path of a herd binary built from this tree, building
// it on first use.
func herdBin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(buildDir, "herd")
	buildOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", bin, "github.com/herd-cluster/herd/cmd/herd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building herd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}

// required reports whether an absent server fails the suite instead of
// skipping: CI sets COMPAT_REQUIRE=1 after installing every server.
func required() bool { return os.Getenv("COMPAT_REQUIRE") == "1" }

// need skips (or, with COMPAT_REQUIRE=1, fails) t when a program is
// not installed, naming the package that provides it, and returns its path.
func need(t *testing.T, prog, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(prog)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s is not installed (%s); test/compat/install.sh installs it", prog, pkg)
	if required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// needFile is need for a file that must exist, such as a module a
// package installs.
func needFile(t *testing.T, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	msg := fmt.Sprintf("%s is missing (%s); test/compat/install.sh installs it", path, pkg)
	if required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
