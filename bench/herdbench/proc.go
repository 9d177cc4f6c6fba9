package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// hevent is one JSON line of herd's log (or of herdbench serve's).
type hevent struct {
	Time   time.Time `json:"time"`
	Level  string    `json:"level"`
	Msg    string    `json:"msg"`
	Event  string    `json:"event"`
	Slot   *int      `json:"slot"`
	PID    int       `json:"pid"`
	Gen    int       `json:"gen"`
	Reason string    `json:"reason"`
	After  int64     `json:"after"` // nanoseconds
	Stream string    `json:"stream"`
}

// slot returns the event's slot, or -1.
func (e hevent) slot() int {
	if e.Slot == nil {
		return -1
	}
	return *e.Slot
}

// logWatch collects the events a process logs and lets callers wait for
// one.
type logWatch struct {
	mu      sync.Mutex
	evs     []hevent
	other   []string      // the last lines that were not herd events
	changed chan struct{} // closed and replaced on every new line
	eof     bool
}

func newLogWatch() *logWatch { return &logWatch{changed: make(chan struct{})} }

// keepLogs, when set, is a directory that receives the stderr of every
// process herdbench starts (-keep-logs).
var keepLogs string

// feed reads r to its end, copying each line to raw when it is not nil.
func (l *logWatch) feed(r io.Reader, raw io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if raw != nil {
			fmt.Fprintln(raw, line)
		}
		var e hevent
		err := json.Unmarshal([]byte(line), &e)
		l.mu.Lock()
		// herd's CLI marks its own JSON lines "stream":"herd" (since
		// b3e705a); worker output lines say "stdout" or "stderr".
		if err == nil && (e.Stream == "" || e.Stream == "herd") {
			l.evs = append(l.evs, e)
		} else {
			l.other = append(l.other, line)
			if len(l.other) > 20 {
				l.other = l.other[1:]
			}
		}
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
	}
	l.mu.Lock()
	l.eof = true
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// mark returns the number of events so far, to wait for later ones.
func (l *logWatch) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.evs)
}

// since returns the events from index from on.
func (l *logWatch) since(from int) []hevent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]hevent(nil), l.evs[min(from, len(l.evs)):]...)
}

// waitFor returns the first event at index >= from that match accepts, and
// the index after it.
func (l *logWatch) waitFor(from int, timeout time.Duration, match func(hevent) bool) (hevent, int, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for ; from < len(l.evs); from++ {
			if match(l.evs[from]) {
				e := l.evs[from]
				l.mu.Unlock()
				return e, from + 1, nil
			}
		}
		ch, eof, other := l.changed, l.eof, strings.Join(l.other, "\n")
		l.mu.Unlock()
		if eof {
			return hevent{}, from, fmt.Errorf("process log ended; last other lines:\n%s", other)
		}
		select {
		case <-ch:
		case <-deadline.C:
			return hevent{}, from, fmt.Errorf("timed out after %s; last other lines:\n%s", timeout, other)
		}
	}
}

// waitReady waits until n distinct slots have logged "ready" since from.
func (l *logWatch) waitReady(from, n int, timeout time.Duration) error {
	seen := map[int]bool{}
	end := time.Now().Add(timeout)
	for len(seen) < n {
		e, next, err := l.waitFor(from, time.Until(end), func(e hevent) bool { return e.Event == "ready" })
		if err != nil {
			return fmt.Errorf("%d of %d workers ready: %w", len(seen), n, err)
		}
		seen[e.slot()], from = true, next
	}
	return nil
}

// proc is a process herdbench started; stop reaps it.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *logWatch
	done chan struct{} // closed once reaped
	fed  chan struct{} // closed once its stderr is read to the end
}

// startProc starts path with args; its stderr is parsed for herd events,
// its stdout discarded.
func startProc(name, path string, args, extraEnv []string) (*proc, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stderr = w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // ^C reaches herdbench only
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	w.Close()
	p := &proc{name: name, cmd: cmd, log: newLogWatch(), done: make(chan struct{}), fed: make(chan struct{})}
	var raw *os.File
	if keepLogs != "" {
		file := fmt.Sprintf("%s-%d.log", strings.ReplaceAll(name, " ", "-"), p.pid())
		raw, _ = os.Create(filepath.Join(keepLogs, file))
	}
	go func() {
		p.log.feed(r, raw)
		r.Close()
		if raw != nil {
			raw.Close()
		}
		close(p.fed)
	}()
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// signal sends sig to the process itself (never to a group or by name).
func (p *proc) signal(sig syscall.Signal) error {
	return syscall.Kill(p.pid(), sig)
}

// stop asks the process to stop with SIGTERM, kills it after timeout, and
// reaps it. It then checks that the worker pids herd logged are gone.
func (p *proc) stop(timeout time.Duration) error {
	_ = p.signal(syscall.SIGTERM)
	var err error
	select {
	case <-p.done:
	case <-time.After(timeout):
		err = fmt.Errorf("%s did not stop within %s; killed", p.name, timeout)
		_ = p.signal(syscall.SIGKILL)
		<-p.done
	}
	select {
	case <-p.fed:
	case <-time.After(2 * time.Second):
	}
	warns := map[string]int{}
	for _, e := range p.log.since(0) {
		if e.Level == "WARN" || e.Level == "ERROR" {
			warns[fmt.Sprintf("%s %q reason=%q", e.Level, e.Msg, e.Reason)]++
		}
	}
	for w, n := range warns {
		logf("%s logged %d x %s", p.name, n, w)
	}
	if n, s := p.unexpectedStarts("start", "rollout", "respawn", "scale"); n > 0 {
		logf("%s: herd replaced workers on its own: %s", p.name, s)
	}
	return errors.Join(err, p.checkWorkersGone())
}

// checkWorkersGone reports worker pids herd started that still run.
func (p *proc) checkWorkersGone() error {
	var left []string
	for _, e := range p.log.since(0) {
		if e.Event == "started" && e.PID > 0 && processAlive(e.PID, 2*time.Second) {
			left = append(left, strconv.Itoa(e.PID))
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("%s: workers still running after the primary exited: %s", p.name, strings.Join(left, " "))
	}
	return nil
}

// processAlive reports whether pid still runs after waiting up to wait for
// it to end. A zombie counts as gone.
func processAlive(pid int, wait time.Duration) bool {
	end := time.Now().Add(wait)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) && b[i+2] == 'Z' {
			return false
		}
		if time.Now().After(end) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readPID reads a pid file herd wrote.
func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// freeAddr returns a 127.0.0.1 address with a port free right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// buildHerd builds ./cmd/herd of the module herdbench runs in into dir.
func buildHerd(dir string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", errors.New("run herdbench inside the herd repository, or give -herd")
	}
	bin := filepath.Join(dir, "herd")
	logf("building %s", bin)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/herd")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/herd: %v\n%s", err, out)
	}
	return bin, nil
}

// startHerdCluster starts "herd SUB --log-format json ARGS" and waits until
// workers slots are ready.
func startHerdCluster(e *env, name string, workers int, sub string, args ...string) (*proc, error) {
	args = append([]string{sub, "--log-format", "json"}, args...)
	p, err := startProc(name, e.herdBin, args, nil)
	if err != nil {
		return nil, err
	}
	if err := p.log.waitReady(0, workers, 60*time.Second); err != nil {
		return nil, errors.Join(fmt.Errorf("%s: %w", name, err), p.stop(5*time.Second))
	}
	return p, nil
}

// unexpectedStarts counts, by reason, the workers herd started for a
// reason not in allowed ("hung", "recycle", a respawn after a crash…): each
// one replaced a worker the measurement did not ask to replace.
func (p *proc) unexpectedStarts(allowed ...string) (int, string) {
	counts := map[string]int{}
	total := 0
	for _, e := range p.log.since(0) {
		if e.Event == "started" && !contains(allowed, e.Reason) {
			counts[e.Reason]++
			total++
		}
	}
	var parts []string
	for r, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(parts)
	if total == 0 {
		return 0, "0"
	}
	return total, fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

// unexpectedRow is the table row of unexpectedStarts.
func (p *proc) unexpectedRow(section string, allowed ...string) row {
	n, s := p.unexpectedStarts(allowed...)
	return row{section, p.name + ": workers herd replaced on its own, by reason", s, "0", verdict(n == 0)}
}
