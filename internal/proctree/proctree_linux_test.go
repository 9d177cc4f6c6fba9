package proctree

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const waitLimit = 10 * time.Second

// waitFor polls cond, which reads what other processes change (/proc),
// until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func state(pid int) string {
	st, err := readStat(pid)
	if err != nil {
		return "gone"
	}
	return st.State
}

func TestCgroupName(t *testing.T) {
	id := primaryID{pid: 4242, start: 99, pidns: 4026531836}
	for _, name := range []string{"app", "my.app-v2", "a b/c\nd", "", string(make([]byte, 300))} {
		dir := cgroupName(name, id)
		stem, got, ok := parseCgroupName(dir)
		if !ok || got != id || stem != cgroupStem(name) {
			t.Errorf("parseCgroupName(%q) = %q %+v %v; want %q %+v", dir, stem, got, ok, cgroupStem(name), id)
		}
		if len(dir) > 255 {
			t.Errorf("cgroup name %d bytes long; want at most 255", len(dir))
		}
	}
	for _, bad := range []string{"herd.x", "herd.x.1.2", "other.x.1.2.3", "herd.x.a.2.3", "herd.x.1.2.z"} {
		if _, _, ok := parseCgroupName(bad); ok {
			t.Errorf("parseCgroupName(%q) ok; want refused", bad)
		}
	}
}

// TestReaper: as a subreaper, the primary reaps orphans and children that
// nothing waits for, but never the exit of a child os/exec waits for.
func TestReaper(t *testing.T) {
	tr := Open(Options{NoCgroups: true, NoKeeper: true})
	defer tr.Close()
	if tr.reaper == nil {
		t.Fatal("no reaper in group mode")
	}

	cmd := exec.Command("sh", "-c", "exit 7")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the os/exec child to exit", func() bool { return state(cmd.Process.Pid) == "Z" })
	tr.reaper.scan() // as a SIGCHLD would
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("os/exec Wait = %v; want exit status 7 (its exit taken by the reaper?)", err)
	}

	// A child started without a pidfd, that no one waits for.
	devNull, _ := os.Open(os.DevNull)
	defer devNull.Close()
	pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", "exit 0"}, &syscall.ProcAttr{
		Files: []uintptr{devNull.Fd(), devNull.Fd(), devNull.Fd()}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the unwaited child to be reaped", func() bool { return state(pid) == "gone" })

	// An orphan of a child: it comes back to the subreaper when its
	// parent exits, and is reaped when it ends.
	out, err := exec.Command("sh", "-c", "sleep 0.2 & echo $!").Output()
	if err != nil {
		t.Fatal(err)
	}
	orphan, _ := strconv.Atoi(string(out[:len(out)-1]))
	if st, err := readStat(orphan); err != nil || st.PPID != os.Getpid() {
		t.Fatalf("orphan %d: %+v %v; want it handed to this subreaper", orphan, st, err)
	}
	waitFor(t, "the orphan to be reaped", func() bool { return state(orphan) == "gone" })
}

// TestEndLeftovers: processes marked by a dead primary of the name are
// killed; those of a live primary, or of another name, are not.
func TestEndLeftovers(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	start := func(name string, primary int) *exec.Cmd {
		cmd := exec.Command("sleep", "30")
		cmd.Env = []string{"HERD_NAME=" + name, "HERD_PRIMARY_PID=" + strconv.Itoa(primary), "HERD_WORKER_ID=0", "HERD_GENERATION=1"}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	name := "leftovers-test-" + strconv.Itoa(os.Getpid())
	orphan := start(name, dead.Process.Pid)
	live := start(name, os.Getpid())
	other := start(name+"-other", dead.Process.Pid)
	l, err := EndLeftovers(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.PIDs) != 1 || l.PIDs[0] != orphan.Process.Pid || len(l.Primaries) != 1 || l.Primaries[0] != dead.Process.Pid {
		t.Errorf("EndLeftovers = %+v; want pid %d of primary %d", l, orphan.Process.Pid, dead.Process.Pid)
	}
	if err := orphan.Wait(); err == nil {
		t.Errorf("the dead primary's process exited cleanly; want it killed")
	}
	for _, c := range []*exec.Cmd{live, other} {
		if err := unix.Kill(c.Process.Pid, 0); err != nil {
			t.Errorf("pid %d killed: %v; want it left alone", c.Process.Pid, err)
		}
	}
}

func TestParseKeeper(t *testing.T) {
	pid, start, dir, err := parseKeeper("12:34:/sys/fs/cgroup/herd.x.12.34")
	if err != nil || pid != 12 || start != 34 || dir != "/sys/fs/cgroup/herd.x.12.34" {
		t.Errorf("parseKeeper = %d %d %q %v", pid, start, dir, err)
	}
	if _, _, dir, err := parseKeeper("12:34:"); err != nil || dir != "" {
		t.Errorf("parseKeeper without a cgroup = %q %v", dir, err)
	}
	for _, bad := range []string{"", "12", "x:1:", "1:y:"} {
		if _, _, _, err := parseKeeper(bad); err == nil {
			t.Errorf("parseKeeper(%q) accepted", bad)
		}
	}
}
