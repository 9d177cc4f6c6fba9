package logs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// flaky is a destination that fails while broken is set, and counts the
// reopens asked of it.
type flaky struct {
	bytes.Buffer
	broken  bool
	reopens int
}

func (f *flaky) Write(p []byte) (int, error) {
	if f.broken {
		return 0, syscall.EPIPE
	}
	return f.Buffer.Write(p)
}

func (f *flaky) Reopen() error { f.reopens++; return nil }

// TestDest follows a destination through a failure and its recovery on a
// fake clock: lines are dropped and counted while it fails, the failure is
// reported once, writing is retried after a growing backoff with a reopen,
// and the output says how many lines were lost once it works again.
func TestDest(t *testing.T) {
	now := time.Unix(1000, 0)
	f := &flaky{}
	var report bytes.Buffer
	d := Guard(f, "stdout", false)
	d.now = func() time.Time { return now }
	d.SetReport(&report)
	if Guard(d, "other", true) != d {
		t.Fatal("Guard of a Dest made a new one")
	}
	write := func(s string) {
		if n, err := d.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v; want %d, nil", s, n, err, len(s))
		}
	}
	write("one\n")
	f.broken = true
	write("two\nthree\n") // fails: dropped, reported
	write("four\n")       // within the backoff: dropped without a try
	now = now.Add(minRetry)
	write("five\n") // retried, fails again: the backoff doubles
	now = now.Add(minRetry)
	write("six\n") // 100ms into a 200ms backoff: dropped
	if got := d.Dropped(); got != 5 {
		t.Errorf("Dropped() = %d while failing; want 5", got)
	}
	if n := strings.Count(report.String(), "writing to stdout failed"); n != 1 {
		t.Errorf("report %q; want one line about the failure", report.String())
	}
	f.broken = false
	now = now.Add(minRetry)
	write("seven\n")
	want := "one\nherd: 5 lines were dropped while writing to stdout failed\nseven\n"
	if f.String() != want {
		t.Errorf("output %q; want %q", f.String(), want)
	}
	if f.reopens != 2 {
		t.Errorf("%d reopens; want one per retry, 2", f.reopens)
	}
	f.broken = true
	write("eight\n")
	if n := strings.Count(report.String(), "writing to stdout failed"); n != 2 {
		t.Errorf("a new failure after recovery reported %d times in all; want 2", n)
	}
}

// TestDestFullDevice writes on /dev/full, a device that fails every write
// with ENOSPC as a full disk does: nothing returns an error, and every
// line is counted as dropped.
func TestDestFullDevice(t *testing.T) {
	r, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full on this system: %v", err)
	}
	defer r.Close()
	if _, err := r.Write([]byte("x\n")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write to /dev/full: %v; want ENOSPC", err)
	}
	var report bytes.Buffer
	d := Guard(r, "log file", true)
	d.SetReport(&report)
	for range 3 {
		d.Write([]byte("a\nb\n"))
	}
	if d.Dropped() != 6 || !strings.Contains(report.String(), "no space left on device") {
		t.Errorf("Dropped() = %d, report %q; want 6 and the cause", d.Dropped(), report.String())
	}
}

// TestOpenRotatingRefusesSpecialFiles checks that a log file must be a
// regular file: rotating /dev/null would rename it, and opening a FIFO no
// one reads would hang.
func TestOpenRotatingRefusesSpecialFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/dev/null", fifo, t.TempDir()} {
		if r, err := OpenRotating(path, 0, 0); err == nil {
			r.Close()
			t.Errorf("OpenRotating(%s): nil error; want refused", path)
		}
	}
}

// TestSinkOnBrokenOutput checks that a Sink writing to a failing Dest goes
// on capturing, keeps its rings, and never blocks.
func TestSinkOnBrokenOutput(t *testing.T) {
	f := &flaky{broken: true}
	d := Guard(f, "stdout", false)
	s := New(Config{Stdout: d, Stderr: d})
	defer s.Close()
	<-s.Capture(0, 1, Stdout, strings.NewReader("a\nb\nc\n"))
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d.Dropped() != 3 || len(s.Tail(0, 10)) != 3 {
		t.Errorf("dropped %d, ring %d lines; want 3 and 3", d.Dropped(), len(s.Tail(0, 10)))
	}
}
