// Package watch turns changes to files into debounced calls: the primary's
// --watch, which restarts the workers when the code they run changes.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Defaults of Options.
const (
	DefaultQuiet   = 300 * time.Millisecond
	DefaultMaxDirs = 1024
)

// skipDirs are directories never watched: version control and caches,
// whose churn is no change to the program.
var skipDirs = []string{".git", ".hg", ".svn", "node_modules", "__pycache__", ".cache"}

// Options tune a Watcher. The zero value of each field means its default.
type Options struct {
	// Quiet is how long the files must stay unchanged after a change
	// before it is reported, so that a save that writes many files, or a
	// build, is one change. Zero means DefaultQuiet.
	Quiet time.Duration
	// MaxDirs bounds the directories watched (each takes one inotify
	// watch). Zero means DefaultMaxDirs.
	MaxDirs int
}

// Watcher reports changes under a set of paths: files, and directories
// with everything below them except skipDirs and editors' scratch files.
type Watcher struct {
	fw      *fsnotify.Watcher
	opts    Options
	dirs    map[string]bool
	files   map[string]bool // paths given as files: only they count in their directory
	watched map[string]bool // directories whose every file counts
}

// New watches paths, which must exist. It fails when they hold more than
// MaxDirs directories.
func New(paths []string, opts Options) (*Watcher, error) {
	if opts.Quiet <= 0 {
		opts.Quiet = DefaultQuiet
	}
	if opts.MaxDirs <= 0 {
		opts.MaxDirs = DefaultMaxDirs
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	w := &Watcher{fw: fw, opts: opts, dirs: map[string]bool{}, files: map[string]bool{}, watched: map[string]bool{}}
	for _, p := range paths {
		if err := w.add(p); err != nil {
			fw.Close()
			return nil, err
		}
	}
	return w, nil
}

// add watches path: a file through its directory, a directory with
// everything below it.
func (w *Watcher) add(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, errors.Unwrap(err))
	}
	if !fi.IsDir() {
		w.files[abs] = true
		return w.watchDir(filepath.Dir(abs))
	}
	return w.addTree(abs)
}

// addTree watches dir and every directory below it but skipDirs.
func (w *Watcher) addTree(dir string) error {
	w.watched[dir] = true
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // gone or unreadable since: not ours to watch
		}
		if !d.IsDir() {
			return nil
		}
		if p != dir && slices.Contains(skipDirs, d.Name()) {
			return filepath.SkipDir
		}
		w.watched[p] = true
		return w.watchDir(p)
	})
}

// watchDir adds one inotify watch, within MaxDirs.
func (w *Watcher) watchDir(dir string) error {
	if w.dirs[dir] {
		return nil
	}
	if len(w.dirs) >= w.opts.MaxDirs {
		return fmt.Errorf("watch: more than %d directories under the watched paths; watch fewer (version control, node_modules and __pycache__ are left out already)", w.opts.MaxDirs)
	}
	if err := w.fw.Add(dir); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	w.dirs[dir] = true
	return nil
}

// Dirs returns how many directories are watched.
func (w *Watcher) Dirs() int { return len(w.dirs) }

// Close stops watching.
func (w *Watcher) Close() error { return w.fw.Close() }

// Run calls changed with the paths that changed, once they have stayed
// unchanged for Quiet, until ctx ends. changed runs on Run's goroutine; a
// change during it is reported after it returns. Run returns ctx's error,
// or the watcher's if it fails.
func (w *Watcher) Run(ctx context.Context, changed func(paths []string)) error {
	var pending []string
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-w.fw.Events:
			if !ok {
				return errors.New("watch: the watcher closed")
			}
			if !w.counts(ev) {
				continue
			}
			if !slices.Contains(pending, ev.Name) {
				pending = append(pending, ev.Name)
			}
			quiet.Reset(w.opts.Quiet)
		case err, ok := <-w.fw.Errors:
			if !ok {
				return errors.New("watch: the watcher closed")
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: something changed, say so.
				pending = append(pending, "(events lost)")
				quiet.Reset(w.opts.Quiet)
				continue
			}
			return fmt.Errorf("watch: %w", err)
		case <-quiet.C:
			slices.Sort(pending)
			changed(pending)
			pending = nil
		}
	}
}

// counts reports whether ev is a change to a watched file, and watches a
// directory created under a watched tree.
func (w *Watcher) counts(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false // touch, chmod: the content is the same
	}
	dir, name := filepath.Split(ev.Name)
	dir = filepath.Clean(dir)
	if !w.watched[dir] && !w.files[ev.Name] {
		return false // a neighbour of a file given alone
	}
	if scratch(name) {
		return false
	}
	if ev.Has(fsnotify.Create) && w.watched[dir] {
		if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
			if slices.Contains(skipDirs, name) {
				return false
			}
			_ = w.addTree(ev.Name) // past MaxDirs, the new tree is not watched
		}
	}
	return true
}

// scratch reports whether name is an editor's or a tool's temporary file:
// vim's swap files and write probe, emacs's backups and locks, and other
// editors' ~ and .tmp files.
func scratch(name string) bool {
	switch {
	case name == "4913", name == ".DS_Store":
		return true
	case strings.HasSuffix(name, "~"), strings.HasPrefix(name, ".#"),
		strings.HasPrefix(name, "#") && strings.HasSuffix(name, "#"):
		return true
	}
	switch filepath.Ext(name) {
	case ".swp", ".swo", ".swx", ".tmp", ".pyc":
		return true
	}
	return false
}
