package logs

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Backoff bounds of a Dest that failed: the first retry comes after
// minRetry, each further failure doubles the wait, up to maxRetry.
const (
	minRetry = 100 * time.Millisecond
	maxRetry = 5 * time.Second
)

// Reopener is a destination that can be opened again after a write error,
// such as a RotatingFile whose disk filled up or whose file was removed.
type Reopener interface {
	Reopen() error
}

// Dest is an output destination that survives its own failure: a closed
// pipe (the reader of herd's stdout went away), a full disk, a log file on
// a vanished mount. After a failed write it drops the lines written to it,
// counting them, and tries again after a backoff (reopening a Reopener
// first); when a write succeeds again it says, in the output itself, how
// many lines were lost. The first failure of a run of them is reported
// once on Report, when set and working. A Dest never returns an error, so
// a writer of herd's own log or of worker output never sees one; it is
// safe for concurrent use.
type Dest struct {
	w      io.Writer
	name   string
	json   bool
	report io.Writer
	now    func() time.Time

	dropped atomic.Uint64 // lines lost to write errors, ever

	mu      sync.Mutex
	failing bool
	retryAt time.Time
	wait    time.Duration
	lost    uint64 // lines lost in the current run of failures
}

// Guard returns w as a Dest named name ("stdout", "log file…"), or w itself
// when it already is one. Lines it writes itself are JSON objects when
// asJSON is set.
func Guard(w io.Writer, name string, asJSON bool) *Dest {
	if d, ok := w.(*Dest); ok {
		return d
	}
	return &Dest{w: w, name: name, json: asJSON, now: time.Now}
}

// SetReport makes d report the start of a failure on r (herd's stderr when
// d is stdout or a log file). A nil r, or d itself, reports nowhere.
func (d *Dest) SetReport(r io.Writer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r == io.Writer(d) {
		r = nil
	}
	d.report = r
}

// Dropped returns how many lines were lost to write errors.
func (d *Dest) Dropped() uint64 { return d.dropped.Load() }

// Write writes p, or drops it while d is failing. It always reports
// len(p) and no error: what could not be written is counted instead.
func (d *Dest) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if d.failing {
		if now.Before(d.retryAt) {
			d.lose(p)
			return len(p), nil
		}
		if r, ok := d.w.(Reopener); ok {
			_ = r.Reopen() // a failed reopen keeps the old file: the write tells
		}
		if _, err := d.w.Write(d.notice()); err != nil {
			d.fail(now, err, p)
			return len(p), nil
		}
		d.failing, d.lost, d.wait = false, 0, 0
	}
	if n, err := d.w.Write(p); err != nil {
		d.fail(now, err, p[n:])
	}
	return len(p), nil
}

// lose counts the lines of p as dropped. A last line without its newline
// counts too.
func (d *Dest) lose(p []byte) {
	n := uint64(bytes.Count(p, []byte{'\n'}))
	if len(p) > 0 && p[len(p)-1] != '\n' {
		n++
	}
	d.lost += n
	d.dropped.Add(n)
}

// fail starts or prolongs a run of failures; rest is what was not written.
func (d *Dest) fail(now time.Time, err error, rest []byte) {
	d.lose(rest)
	first := !d.failing
	d.failing = true
	d.wait = min(max(2*d.wait, minRetry), maxRetry)
	d.retryAt = now.Add(d.wait)
	if first && d.report != nil {
		// One line; if the report fails too, there is nowhere left to say it.
		fmt.Fprintf(d.report, "herd: writing to %s failed (%v): dropping its lines, and trying again every %s at most\n",
			d.name, err, maxRetry)
	}
}

// notice is the line that tells, in the output itself, how many lines
// were lost while it failed.
func (d *Dest) notice() []byte {
	msg := "herd: " + strconv.FormatUint(d.lost, 10) + " lines were dropped while writing to " + d.name + " failed"
	if !d.json {
		return []byte(msg + "\n")
	}
	b := []byte(`{"time":"`)
	b = d.now().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","stream":"herd","msg":`...)
	b = appendJSONString(b, []byte(msg))
	return append(b, "}\n"...)
}
