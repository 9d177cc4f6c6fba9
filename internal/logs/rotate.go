package logs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// Defaults of OpenRotating for a zero size or count.
const (
	DefaultMaxSize  = 100 << 20
	DefaultMaxFiles = 5
)

// RotatingFile is an io.Writer appending to a file that it rotates by size:
// when a write would take the file past its maximum size, path is renamed
// path.1 (path.1 becomes path.2, and so on; the oldest beyond the kept
// count is removed) and a new path is opened. A write is never split
// between two files, so whole lines written at once stay whole. It is safe
// for concurrent use.
type RotatingFile struct {
	path     string
	maxSize  int64
	maxFiles int

	mu   sync.Mutex
	f    *os.File
	size int64
}

// OpenRotating opens (or creates, mode 0640) path for appending, rotated
// when it would grow past maxSize bytes, keeping maxFiles old files. Zero
// means DefaultMaxSize and DefaultMaxFiles.
func OpenRotating(path string, maxSize int64, maxFiles int) (*RotatingFile, error) {
	switch {
	case maxSize < 0 || maxFiles < 0:
		return nil, errors.New("logs: log file size and count must not be negative")
	case maxSize == 0:
		maxSize = DefaultMaxSize
	}
	if maxFiles == 0 {
		maxFiles = DefaultMaxFiles
	}
	r := &RotatingFile{path: path, maxSize: maxSize, maxFiles: maxFiles}
	f, size, err := r.open()
	if err != nil {
		return nil, err
	}
	r.f, r.size = f, size
	return r, nil
}

// open opens the log file, which must be a regular file: rotating renames
// it, which a device such as /dev/null must never be, and opening a FIFO
// for writing would wait for a reader (O_NONBLOCK makes that fail at
// once instead; it changes nothing for a regular file).
func (r *RotatingFile) open() (*os.File, int64, error) {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NONBLOCK, 0o640)
	if err != nil {
		return nil, 0, fmt.Errorf("logs: open log file: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", r.path)
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("logs: open log file: %w", err)
	}
	return f, fi.Size(), nil
}

// Write appends p, rotating first if p would take the file past its
// maximum size (unless the file is empty: a write larger than the maximum
// gets a file of its own).
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, fmt.Errorf("logs: write log file: %w", fs.ErrClosed)
	}
	if r.size > 0 && r.size+int64(len(p)) > r.maxSize {
		if err := r.rotate(); err != nil {
			// Keep writing to the current file rather than losing output.
			n, werr := r.f.Write(p)
			r.size += int64(n)
			return n, errors.Join(err, werr)
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

// rotate shifts the old files up by one, renames the current file path.1
// and opens a new one. On failure the current file stays in use.
func (r *RotatingFile) rotate() error {
	old := func(i int) string { return r.path + "." + strconv.Itoa(i) }
	if err := os.Remove(old(r.maxFiles)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("logs: rotate log file: %w", err)
	}
	for i := r.maxFiles - 1; i >= 1; i-- {
		if err := os.Rename(old(i), old(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("logs: rotate log file: %w", err)
		}
	}
	if err := os.Rename(r.path, old(1)); err != nil {
		return fmt.Errorf("logs: rotate log file: %w", err)
	}
	f, size, err := r.open()
	if err != nil {
		return err // the renamed file, still open, keeps receiving output
	}
	r.f.Close()
	r.f, r.size = f, size
	return nil
}

// Reopen opens path again and writes there from now on, as after a write
// error: the file may have been removed, or its disk may have room again.
// On failure the current file stays in use.
func (r *RotatingFile) Reopen() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return fmt.Errorf("logs: reopen log file: %w", fs.ErrClosed)
	}
	f, size, err := r.open()
	if err != nil {
		return err
	}
	r.f.Close()
	r.f, r.size = f, size
	return nil
}

// Close closes the file. Later writes fail.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
