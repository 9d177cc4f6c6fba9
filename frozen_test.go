package herd_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFrozenPrimary: a primary stopped for longer than two heartbeat
// intervals (SIGSTOP, then SIGCONT) judges no worker hung for its own
// silence, while a worker that is really stopped is still caught.
func TestFrozenPrimary(t *testing.T) {
	for _, tt := range []struct{ name, helper, work string }{
		{"watchdog-command", "watchdog", ""},
		{"go-work", "", "http"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pp := startPrimary(t, primaryConfig{Workers: 2, Helper: tt.helper, Work: tt.work,
				Listen: []string{"127.0.0.1:0"}, Watchdog: time.Second})
			pp.waitLog(t, `msg="worker ready"`, 2)
			pids := pp.workerPIDs()
			if len(pids) != 2 {
				t.Fatalf("%d worker pid files; want 2", len(pids))
			}
			pp.signal(t, syscall.SIGSTOP)
			time.Sleep(3 * time.Second) // the fault itself: the primary stays stopped this long
			pp.signal(t, syscall.SIGCONT)

			// A worker really stopped is caught, at least two intervals
			// later: by then a wrong verdict on the others would be out.
			if err := syscall.Kill(pids[1], syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			pp.waitLog(t, "worker hung", 1)
			hung := lineWith(pp.stderr.String(), "worker hung")
			if !strings.Contains(hung, fmt.Sprintf("pid=%d ", pids[1])) {
				t.Errorf("hung: %s; want the stopped worker, pid %d", hung, pids[1])
			}
			if n := strings.Count(pp.stderr.String(), "worker hung"); n != 1 {
				t.Errorf("%d workers judged hung; want only the stopped one:\n%s", n, pp.stderr)
			}
			if !alive(pids[0]) {
				t.Errorf("the healthy worker (pid %d) was killed:\n%s", pids[0], pp.stderr)
			}
		})
	}
}
