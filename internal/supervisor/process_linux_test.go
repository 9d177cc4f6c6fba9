package supervisor

import (
	"errors"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// realLauncher starts sh -c script with its output drained, through a
// spawner closed at cleanup.
func realLauncher(t *testing.T, script string) *ExecLauncher {
	t.Helper()
	sp, err := NewSpawner()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sp.Close)
	return &ExecLauncher{
		Path: "/bin/sh", Args: []string{"sh", "-c", script}, Spawner: sp,
		Capture: func(_, _ int, _ bool, r io.Reader) <-chan struct{} {
			done := make(chan struct{})
			go func() { io.Copy(io.Discard, r); close(done) }()
			return done
		},
	}
}

func launch(t *testing.T, l *ExecLauncher) *OSProcess {
	t.Helper()
	p, err := l.Launch(0, 1, 1)
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	op := p.(*OSProcess)
	t.Cleanup(func() { op.Kill() })
	return op
}

// waitExit runs Wait with a deadline.
func waitExit(t *testing.T, p Process) Exit {
	t.Helper()
	c := make(chan Exit, 1)
	go func() { c <- p.Wait() }()
	select {
	case e := <-c:
		return e
	case <-time.After(waitLimit):
		t.Fatalf("Wait did not return within %s", waitLimit)
		return Exit{}
	}
}

func TestOSProcess(t *testing.T) {
	t.Run("exit seen while a child holds the pipes", func(t *testing.T) {
		p := launch(t, realLauncher(t, "sleep 30 & exit 3"))
		if e := waitExit(t, p); e != (Exit{Code: 3}) {
			t.Errorf("exit = %+v; want status 3", e)
		}
		if err := syscall.Kill(-p.Pid(), 0); err != nil {
			t.Fatalf("the child holding the pipes is not in the worker's group: %v", err)
		}
		select {
		case <-p.EndTree(syscall.SIGTERM):
		case <-time.After(waitLimit):
			t.Fatalf("the child left behind was not ended")
		}
		if err := syscall.Kill(-p.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("the worker's group after EndTree: %v; want it empty (ESRCH)", err)
		}
		if err := p.Signal(syscall.SIGTERM); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("Signal after the exit = %v; want ESRCH", err)
		}
	})
	t.Run("killed by a signal", func(t *testing.T) {
		p := launch(t, realLauncher(t, "exec sleep 30"))
		if err := p.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if e := waitExit(t, p); e != (Exit{Code: -1, Signal: "SIGKILL"}) {
			t.Errorf("exit = %+v; want killed by SIGKILL", e)
		}
	})
}

// TestSpawnReserve: when every descriptor is taken, the spawner's reserve
// lets a worker start anyway.
func TestSpawnReserve(t *testing.T) {
	l := realLauncher(t, "exit 0")
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = 256
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &old) })
	var hog []*os.File
	t.Cleanup(func() { closeAll(hog...) })
	takeAll := func() {
		for {
			f, err := os.Open(os.DevNull)
			if err != nil {
				if !errors.Is(err, syscall.EMFILE) {
					t.Fatal(err)
				}
				return
			}
			hog = append(hog, f)
		}
	}
	takeAll()
	p := launch(t, l)
	if e := waitExit(t, p); e != (Exit{}) {
		t.Errorf("exit = %+v; want 0", e)
	}
	// Without the reserve, the same start fails.
	l.Spawner.releaseReserve()
	takeAll()
	if _, err := l.Launch(0, 2, 1); !fdShortage(err) {
		t.Errorf("Launch with no descriptor and no reserve = %v; want EMFILE", err)
	}
}
