package proctree

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/herd-cluster/herd/internal/envvar"
)

// The keeper ends what a primary's workers left running the moment the
// primary dies without stopping them (SIGKILL, the OOM killer, a crash):
// workers die with the primary by their parent-death signal, but their
// descendants do not, and they keep the listening sockets. It is this
// executable again, started by Open, that waits for end of file on a pipe
// whose only writer is the primary: the kernel closes it however the
// primary ends, which a parent-death signal (sent when the forking thread
// ends, not the process) does not promise as simply. A primary that stops
// normally writes "done" first, and the keeper just exits. It runs in a
// session of its own, so a terminal's ^C reaches the primary alone, and it
// ignores the signals that stop a service, so it outlives the primary.
// Idle, it costs one blocked process.

// keeperDone is what a primary writes to its keeper when it stops normally.
const keeperDone = "done"

// startKeeper starts the keeper of this primary; the primary must stay the
// only holder of the returned pipe's write end. The keeper's pidfd, also
// returned, keeps the reaper from taking its exit.
func startKeeper(dir string) (*os.File, int, error) {
	self, err := readStat(os.Getpid())
	if err != nil {
		return nil, 0, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		w.Close()
		return nil, 0, err
	}
	defer devNull.Close()
	spec := fmt.Sprintf("%d:%d:%s", os.Getpid(), self.Start, dir)
	pidfd := -1
	_, err = syscall.ForkExec("/proc/self/exe", []string{"herd-keeper"}, &syscall.ProcAttr{
		Env:   append(keeperEnv(os.Environ()), envvar.Keeper+"="+spec),
		Files: []uintptr{devNull.Fd(), os.Stderr.Fd(), os.Stderr.Fd(), r.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true, PidFD: &pidfd},
	})
	if err == nil && pidfd < 0 {
		err = errors.New("no pidfd")
	}
	if err != nil {
		w.Close()
		return nil, 0, fmt.Errorf("start the keeper: %w", err)
	}
	return w, pidfd, nil
}

// keeperEnv is the primary's environment without the marks of a cluster
// the primary may itself run in: the keeper is none of its workers.
func keeperEnv(environ []string) []string {
	var env []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case envvar.PrimaryPID, envvar.WorkerID, envvar.Generation, envvar.Keeper, envvar.Shim:
			continue
		}
		env = append(env, kv)
	}
	return env
}

// stopKeeper tells the keeper the primary stopped normally and reaps it.
func stopKeeper(w *os.File, pidfd int) {
	_, _ = io.WriteString(w, keeperDone)
	w.Close()
	var info unix.Siginfo
	for errors.Is(unix.Waitid(unix.P_PIDFD, pidfd, &info, unix.WEXITED, nil), unix.EINTR) {
	}
	unix.Close(pidfd)
}

// IsKeeper reports whether this process was started as a primary's keeper.
func IsKeeper() bool { return os.Getenv(envvar.Keeper) != "" }

// RunKeeper is the keeper's life: it waits until its primary is gone, and
// if the primary did not stop normally, ends what its workers left: the
// primary's cgroup, and every process that carries its marks.
func RunKeeper() error {
	signal.Ignore(unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGPIPE)
	pid, start, dir, err := parseKeeper(os.Getenv(envvar.Keeper))
	if err != nil {
		return err
	}
	got, _ := io.ReadAll(os.NewFile(3, "primary"))
	if string(got) == keeperDone {
		return nil
	}
	var l Leftovers
	if dir != "" {
		l.PIDs = cgroupPIDs(dir)
		_ = removeTree(dir, leftoverWait)
	}
	err = l.endMarked(func(m Marks, st procStat) bool { return m.Primary == pid && st.Start >= start })
	if l.Found() {
		fmt.Fprintf(os.Stderr, "herd: the primary (pid %d) died: ended %d processes its workers left running\n", pid, len(l.PIDs))
	}
	return err
}

func parseKeeper(spec string) (pid int, start uint64, dir string, err error) {
	p, rest, ok1 := strings.Cut(spec, ":")
	s, dir, ok2 := strings.Cut(rest, ":")
	pid, err1 := strconv.Atoi(p)
	start, err2 := strconv.ParseUint(s, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		return 0, 0, "", fmt.Errorf("herd: bad %s=%q", envvar.Keeper, spec)
	}
	return pid, start, dir, nil
}
