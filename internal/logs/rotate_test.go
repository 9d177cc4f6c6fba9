package logs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRotatingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herd.log")
	r, err := OpenRotating(path, 10, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"aaaa\n", "bbbb\n", "cccc\n", "dddd\n", "eeee\n", "ffff\n", "gggggggggggggggg\n", "h\n"} {
		if n, err := r.Write([]byte(line)); err != nil || n != len(line) {
			t.Fatalf("Write(%q) = %d, %v", line, n, err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// Files hold whole writes, at most 10 bytes unless one write is longer.
	for _, tc := range []struct{ name, want string }{
		{path, "h\n"},
		{path + ".1", "gggggggggggggggg\n"},
		{path + ".2", "eeee\nffff\n"},
	} {
		if got := readFile(t, tc.name); got != tc.want {
			t.Errorf("%s = %q, want %q", filepath.Base(tc.name), got, tc.want)
		}
	}
	if _, err := os.Stat(path + ".3"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s.3 exists (err %v); want only 2 old files kept", path, err)
	}
	if _, err := r.Write([]byte("x")); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Write after Close = %v, want fs.ErrClosed", err)
	}
}

func TestRotatingFileAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herd.log")
	if err := os.WriteFile(path, []byte("12345678\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := OpenRotating(path, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Write([]byte("next\n")); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path+".1"); got != "12345678\n" {
		t.Errorf("old file = %q; want the existing content, rotated since it was full", got)
	}
	if got := readFile(t, path); got != "next\n" {
		t.Errorf("file = %q", got)
	}
}

func TestRotatingFileDefaults(t *testing.T) {
	r, err := OpenRotating(filepath.Join(t.TempDir(), "a.log"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.maxSize != DefaultMaxSize || r.maxFiles != DefaultMaxFiles {
		t.Errorf("maxSize %d maxFiles %d; want the defaults", r.maxSize, r.maxFiles)
	}
	if _, err := OpenRotating(filepath.Join(t.TempDir(), "a.log"), -1, 0); err == nil {
		t.Error("negative size accepted")
	}
	if _, err := OpenRotating("/nonexistent/dir/a.log", 0, 0); err == nil || !strings.Contains(err.Error(), "open log file") {
		t.Errorf("missing dir: err %v", err)
	}
}

// TestRotatingFileWithSink writes worker output through a Sink into a
// rotating file and checks no line is split or lost.
func TestRotatingFileWithSink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.log")
	r, err := OpenRotating(path, 64, 100)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Stdout: r, Stderr: r})
	var input strings.Builder
	for range 50 {
		input.WriteString("0123456789\n")
	}
	waitFor(t, s.Capture(0, 1, Stdout, strings.NewReader(input.String())), 5*time.Second, "capture")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	matches, _ := filepath.Glob(path + "*")
	lines := 0
	for _, m := range matches {
		for l := range strings.Lines(readFile(t, m)) {
			if l != "[0] 0123456789\n" {
				t.Fatalf("%s: line %q", m, l)
			}
			lines++
		}
	}
	if lines != 50 {
		t.Errorf("%d lines in %d files, want 50", lines, len(matches))
	}
}
