package watch

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// run starts w and returns the channel of its reports.
func run(t *testing.T, w *Watcher) <-chan []string {
	t.Helper()
	ch := make(chan []string, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx, func(p []string) { ch <- p }) }()
	t.Cleanup(func() { cancel(); <-done; w.Close() })
	return ch
}

// next waits for w's next report.
func next(t *testing.T, ch <-chan []string) []string {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported within 10s")
		return nil
	}
}

func write(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestChangesAreDebounced(t *testing.T) {
	dir := t.TempDir()
	w, err := New([]string{dir}, Options{Quiet: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ch := run(t, w)
	var want []string
	for i := range 5 {
		p := filepath.Join(dir, "f"+string(rune('a'+i))+".py")
		write(t, p)
		want = append(want, p)
	}
	got := next(t, ch)
	if !slices.Equal(got, want) {
		t.Fatalf("first report = %v; want all five files at once: %v", got, want)
	}
	write(t, want[0])
	if got := next(t, ch); !slices.Equal(got, want[:1]) {
		t.Errorf("second report = %v; want %v", got, want[:1])
	}
}

func TestScratchFilesAndVersionControlAreIgnored(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, ".git", "HEAD"))
	write(t, filepath.Join(dir, "node_modules", "x", "index.js"))
	w, err := New([]string{dir}, Options{Quiet: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ch := run(t, w)
	for _, name := range []string{".git/HEAD", ".git/index", "node_modules/x/index.js", ".app.py.swp", "4913", "app.py~", ".#app.py", "#app.py#", "x.pyc"} {
		write(t, filepath.Join(dir, name))
	}
	real := filepath.Join(dir, "app.py")
	write(t, real)
	if got := next(t, ch); !slices.Equal(got, []string{real}) {
		t.Errorf("report = %v; want only %s", got, real)
	}
}

func TestNewDirectoriesAreWatched(t *testing.T) {
	dir := t.TempDir()
	w, err := New([]string{dir}, Options{Quiet: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ch := run(t, w)
	sub := filepath.Join(dir, "pkg")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	next(t, ch) // the directory itself
	f := filepath.Join(sub, "mod.go")
	write(t, f)
	if got := next(t, ch); !slices.Contains(got, f) {
		t.Errorf("report = %v; want %s", got, f)
	}
}

func TestFileAloneIgnoresItsNeighbours(t *testing.T) {
	dir := t.TempDir()
	app, other := filepath.Join(dir, "app.js"), filepath.Join(dir, "other.js")
	write(t, app)
	write(t, other)
	w, err := New([]string{app}, Options{Quiet: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ch := run(t, w)
	write(t, other)
	// An editor's save: write a new file, rename it over the old one.
	tmp := app + ".new"
	write(t, tmp)
	if err := os.Rename(tmp, app); err != nil {
		t.Fatal(err)
	}
	if got := next(t, ch); !slices.Equal(got, []string{app}) {
		t.Errorf("report = %v; want only %s", got, app)
	}
}

func TestBadPaths(t *testing.T) {
	dir := t.TempDir()
	for i := range 4 {
		if err := os.MkdirAll(filepath.Join(dir, "d"+string(rune('0'+i))), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := New([]string{dir}, Options{MaxDirs: 3}); err == nil || !strings.Contains(err.Error(), "more than 3 directories") {
		t.Errorf("New over MaxDirs: %v; want an error naming the bound", err)
	}
	if _, err := New([]string{filepath.Join(dir, "missing")}, Options{}); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("New of a missing path: %v; want no such file", err)
	}
}
