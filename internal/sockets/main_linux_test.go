package sockets

import (
	"net"
	"os"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary run a child helper instead of the tests.
const helperEnv = "HERD_SOCKETS_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
	case "inherited":
		os.Exit(inheritedChild())
	default:
		os.Exit(2)
	}
	goleak.VerifyTestMain(m)
}

// mustBind parses ss and binds them, closing the Set at the end of the test.
func mustBind(t *testing.T, balance Balance, slots int, ss ...string) *Set {
	t.Helper()
	specs, err := ParseAll(ss)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Bind(specs, balance, slots, 0)
	if err != nil {
		t.Fatalf("Bind(%q, %s, %d): %v", ss, balance, slots, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// fdFlags returns the F_GETFL and F_GETFD flags of f.
func fdFlags(t *testing.T, f *os.File) (fl, fd int) {
	t.Helper()
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatalf("F_GETFL %s: %v", f.Name(), err)
	}
	fd, err = unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
	if err != nil {
		t.Fatalf("F_GETFD %s: %v", f.Name(), err)
	}
	return fl, fd
}

// checkBlockingCloexec fails unless every file is blocking and close-on-exec.
// Call it before net.FileListener, which makes the shared description
// non-blocking.
func checkBlockingCloexec(t *testing.T, files []*os.File) {
	t.Helper()
	for _, f := range files {
		fl, fd := fdFlags(t, f)
		if fl&unix.O_NONBLOCK != 0 {
			t.Errorf("%s: O_NONBLOCK is set", f.Name())
		}
		if fd&unix.FD_CLOEXEC == 0 {
			t.Errorf("%s: FD_CLOEXEC is clear", f.Name())
		}
	}
}

// inode identifies the socket behind f.
func inode(t *testing.T, f *os.File) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatalf("fstat %s: %v", f.Name(), err)
	}
	return st.Ino
}

// fileListener accepts on a dup of f through Go's net package.
func fileListener(t *testing.T, f *os.File) net.Listener {
	t.Helper()
	ln, err := net.FileListener(f)
	if err != nil {
		t.Fatalf("FileListener(%s): %v", f.Name(), err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// roundTrip dials addr, accepts on ln and passes a byte from client to
// server.
func roundTrip(t *testing.T, network, addr string, ln net.Listener) {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	defer c.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	defer sc.Close()
	if _, err := c.Write([]byte{42}); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := sc.Read(b); err != nil || b[0] != 42 {
		t.Fatalf("read %v, %v; want [42]", b, err)
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
