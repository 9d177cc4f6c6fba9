package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// waitLimit bounds every wait of the tests: nothing here sleeps, but a wait
// for a state that never comes must fail, not hang.
const waitLimit = 5 * time.Second

// t0 is the fake clock's start.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is a manual clock: AfterFunc registers callbacks and Advance
// fires the due ones in time order (ties in registration order).
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*fakeTimer
	// settle, if set, runs after each fired callback, so that what the
	// callback set off (it posts to the pool) has happened before the next
	// due timer is looked for.
	settle func()
}

type fakeTimer struct {
	c    *fakeClock
	when time.Time
	seq  int
	f    func()
	done bool // fired or stopped
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, when: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.done {
		return false
	}
	t.done = true
	t.c.remove(t)
	return true
}

func (c *fakeClock) remove(t *fakeTimer) {
	c.timers = slices.DeleteFunc(c.timers, func(x *fakeTimer) bool { return x == t })
}

// Advance moves the clock d forward, firing every callback due by then.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.when.After(target) && (next == nil || t.when.Before(next.when) ||
				t.when.Equal(next.when) && t.seq < next.seq) {
				next = t
			}
		}
		if next == nil {
			c.now = target
			c.mu.Unlock()
			return
		}
		next.done = true
		c.remove(next)
		if next.when.After(c.now) {
			c.now = next.when
		}
		settle := c.settle
		c.mu.Unlock()
		next.f()
		if settle != nil {
			settle()
		}
	}
}

// Stall moves the clock d forward without firing anything, as if the
// process had been stopped: the next Advance fires what fell due
// meanwhile, late.
func (c *fakeClock) Stall(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// pending returns how many callbacks are waiting.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// launchCall is one call of Launch.
type launchCall struct{ Slot, Gen, Count int }

// fakeLauncher starts fakeProcs with pids from a counter.
type fakeLauncher struct {
	mu         sync.Mutex
	nextPID    int
	procs      []*fakeProc
	launches   []launchCall
	resizes    []int
	calls      []string // "resize N" and "launch SLOT GEN COUNT", in order
	exited     []int    // pids, in the order their processes ended
	stopSig    syscall.Signal
	exitOnStop bool          // the stop signal makes a process exit 0
	launchErr  map[int]error // Launch of that slot fails
}

func newFakeLauncher(stop syscall.Signal) *fakeLauncher {
	return &fakeLauncher{nextPID: 1000, stopSig: stop, launchErr: map[int]error{}}
}

func (l *fakeLauncher) Launch(slot, gen, count int) (Process, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.launches = append(l.launches, launchCall{slot, gen, count})
	l.calls = append(l.calls, fmt.Sprintf("launch %d %d %d", slot, gen, count))
	if err := l.launchErr[slot]; err != nil {
		return nil, err
	}
	l.nextPID++
	p := &fakeProc{l: l, pid: l.nextPID, slot: slot, gen: gen, exitc: make(chan Exit, 1)}
	l.procs = append(l.procs, p)
	return p, nil
}

func (l *fakeLauncher) Resize(n int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.resizes = append(l.resizes, n)
	l.calls = append(l.calls, fmt.Sprintf("resize %d", n))
	return nil
}

func (l *fakeLauncher) setExitOnStop(v bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.exitOnStop = v
}

func (l *fakeLauncher) setLaunchErr(slot int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.launchErr[slot] = err
}

func (l *fakeLauncher) getLaunches() []launchCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.launches)
}

func (l *fakeLauncher) getResizes() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.resizes)
}

func (l *fakeLauncher) getCalls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

func (l *fakeLauncher) exitedPIDs() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.exited)
}

// find returns the process of slot and gen, or nil.
func (l *fakeLauncher) find(slot, gen int) *fakeProc {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.procs {
		if p.slot == slot && p.gen == gen {
			return p
		}
	}
	return nil
}

// launched counts the launches of slot.
func (l *fakeLauncher) launched(slot int) int {
	n := 0
	for _, c := range l.getLaunches() {
		if c.Slot == slot {
			n++
		}
	}
	return n
}

// fakeProc is a process that runs until the test (or Kill, or the stop
// signal with exitOnStop) makes it exit.
type fakeProc struct {
	l              *fakeLauncher
	pid, slot, gen int
	exitc          chan Exit

	mu      sync.Mutex
	signals []syscall.Signal
	kills   int
	exited  bool
	// left, when set by leaveTree, is the rest of the process's tree: it
	// runs after the process exits until the test ends it or a Kill does.
	left     chan struct{}
	leftOnce sync.Once
	treeSig  []syscall.Signal // signals EndTree sent to the rest
}

func (p *fakeProc) Pid() int { return p.pid }

func (p *fakeProc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	if p.exited {
		p.mu.Unlock()
		return syscall.ESRCH
	}
	p.signals = append(p.signals, sig)
	p.mu.Unlock()
	p.l.mu.Lock()
	stop := p.l.exitOnStop && sig == p.l.stopSig
	p.l.mu.Unlock()
	if stop {
		p.exit(Exit{Code: 0})
	}
	return nil
}

func (p *fakeProc) Kill() error {
	p.mu.Lock()
	p.kills++
	p.mu.Unlock()
	p.exit(Exit{Code: -1, Signal: "SIGKILL"})
	p.endLeft()
	return nil
}

// leaveTree makes the process leave descendants behind when it exits.
func (p *fakeProc) leaveTree() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.left = make(chan struct{})
}

// endLeft ends the descendants the process left, if any.
func (p *fakeProc) endLeft() {
	p.mu.Lock()
	left := p.left
	p.mu.Unlock()
	if left != nil {
		p.leftOnce.Do(func() { close(left) })
	}
}

func (p *fakeProc) EndTree(sig syscall.Signal) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.left == nil {
		return closedChan
	}
	p.treeSig = append(p.treeSig, sig)
	return p.left
}

func (p *fakeProc) getTreeSignals() []syscall.Signal {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.treeSig)
}

func (p *fakeProc) Wait() Exit { return <-p.exitc }

// exit ends the process with e; it reports false if it had already ended.
func (p *fakeProc) exit(e Exit) bool {
	p.mu.Lock()
	if p.exited {
		p.mu.Unlock()
		return false
	}
	p.exited = true
	p.mu.Unlock()
	p.l.mu.Lock()
	p.l.exited = append(p.l.exited, p.pid)
	p.l.mu.Unlock()
	p.exitc <- e
	return true
}

func (p *fakeProc) getSignals() []syscall.Signal {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.signals)
}

func (p *fakeProc) getKills() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kills
}

func (p *fakeProc) isExited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// recorder collects the pool's events.
type recorder struct {
	mu      sync.Mutex
	events  []Event
	changed chan struct{} // closed and replaced on each event
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) emit(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	close(r.changed)
	r.changed = make(chan struct{})
}

// all returns the events matching pred, in order.
func (r *recorder) all(pred func(Event) bool) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if pred(e) {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) count(pred func(Event) bool) int { return len(r.all(pred)) }

func (r *recorder) dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, e := range r.events {
		fmt.Fprintf(&b, "\n\t%s +%s %s", e.Time.Sub(t0), e.Type, e)
	}
	return b.String()
}

// wait returns the first event matching pred, waiting for it until the
// deadline or until stop is closed.
func (r *recorder) wait(pred func(Event) bool, stop <-chan struct{}) (Event, bool) {
	es, ok := r.waitN(pred, 1, stop)
	if !ok {
		return Event{}, false
	}
	return es[0], true
}

// waitN waits until n events match pred and returns them, or returns false
// at the deadline or once stop is closed.
func (r *recorder) waitN(pred func(Event) bool, n int, stop <-chan struct{}) ([]Event, bool) {
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		var got []Event
		for _, e := range r.events {
			if pred(e) {
				got = append(got, e)
			}
		}
		changed := r.changed
		r.mu.Unlock()
		if len(got) >= n {
			return got[:n], true
		}
		if stop == closedChan {
			return nil, false
		}
		select {
		case <-changed:
		case <-stop:
			stop = closedChan // look once more: the events may be there
		case <-deadline.C:
			return nil, false
		}
	}
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// waitFor returns the first event matching pred, or fails the test.
func (r *recorder) waitFor(t *testing.T, what string, pred func(Event) bool) Event {
	t.Helper()
	e, ok := r.wait(pred, nil)
	if !ok {
		t.Fatalf("no %s event within %s; events:%s", what, waitLimit, r.dump())
	}
	return e
}

// Event predicates.
func is(typ EventType) func(Event) bool { return func(e Event) bool { return e.Type == typ } }

func isPID(typ EventType, pid int) func(Event) bool {
	return func(e Event) bool { return e.Type == typ && e.PID == pid }
}

func isSlot(typ EventType, slot int) func(Event) bool {
	return func(e Event) bool { return e.Type == typ && e.Slot == slot }
}

func isGen(typ EventType, slot, gen int) func(Event) bool {
	return func(e Event) bool { return e.Type == typ && e.Slot == slot && e.Gen == gen }
}

// harness runs a pool against the fakes.
type harness struct {
	t      *testing.T
	cfg    Config
	clock  *fakeClock
	l      *fakeLauncher
	rec    *recorder
	p      *Pool
	cancel context.CancelFunc
	runc   chan error // Run's result
	ran    bool       // Run's result was taken
	runErr error
}

// testConfig is the configuration every test starts from.
func testConfig() Config {
	return Config{
		Workers: 2, MinWorkers: 1, MaxWorkers: 4,
		ReadyByNotify: true, ReadyDelay: time.Second, ReadyTimeout: 10 * time.Second,
		Respawn: true, RespawnDelay: time.Second, MaxCrashes: 3, CrashWindow: time.Minute,
		StopSignal: syscall.SIGTERM, ShutdownTimeout: 5 * time.Second, MaxSurge: 1,
		Port: 8080, Logger: slog.New(slog.DiscardHandler),
	}
}

// start runs a pool with testConfig changed by edit, and waits until Run
// has started the first workers. The cleanup stops the pool and checks
// that no goroutine is left.
func start(t *testing.T, edit func(*Config)) *harness {
	t.Helper()
	return startOn(t, edit, nil)
}

// startOn is start with the fake launcher wrapped by wrap (when not nil)
// before the pool gets it.
func startOn(t *testing.T, edit func(*Config), wrap func(*fakeLauncher) Launcher) *harness {
	t.Helper()
	cfg := testConfig()
	if edit != nil {
		edit(&cfg)
	}
	h := &harness{t: t, clock: newFakeClock(), rec: newRecorder(), runc: make(chan error, 1)}
	h.l = newFakeLauncher(cfg.StopSignal)
	cfg.Emit = h.rec.emit
	h.cfg = cfg
	var l Launcher = h.l
	if wrap != nil {
		l = wrap(h.l)
	}
	h.p = newPool(cfg, l, h.clock)
	h.clock.settle = h.settle
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.runc <- h.p.Run(ctx) }()
	t.Cleanup(func() {
		if !h.ran {
			h.p.Shutdown(true)
			select {
			case err := <-h.runc:
				h.ran, h.runErr = true, err
			case <-time.After(waitLimit):
				t.Errorf("Run did not return after Shutdown(true); events:%s", h.rec.dump())
			}
		}
		cancel()
		goleak.VerifyNone(t)
	})
	h.settle()
	return h
}

// settle waits until the pool has handled everything the test set off so
// far: every process that ended has had its exit handled (its Exited event
// is out), and every closure posted before has run (a Stats round trip).
func (h *harness) settle() {
	h.t.Helper()
	for {
		pids := h.l.exitedPIDs()
		for _, pid := range pids {
			if _, ok := h.rec.wait(isPID(EventExited, pid), h.p.Done()); !ok {
				select {
				case <-h.p.Done():
					return
				default:
				}
				h.t.Fatalf("exit of pid %d not handled within %s; events:%s", pid, waitLimit, h.rec.dump())
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		_, err := h.p.Stats(ctx)
		cancel()
		if errors.Is(err, ErrNotRunning) {
			return
		}
		if err != nil {
			h.t.Fatalf("Stats: %v; events:%s", err, h.rec.dump())
		}
		if len(h.l.exitedPIDs()) == len(pids) {
			return
		}
	}
}

// advance settles, moves the fake clock and settles after each callback.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.settle()
	h.clock.Advance(d)
	h.settle()
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	h.t.Cleanup(cancel)
	return ctx
}

func (h *harness) stats() Stats {
	h.t.Helper()
	st, err := h.p.Stats(h.ctx())
	if err != nil {
		h.t.Fatalf("Stats: %v", err)
	}
	return st
}

func (h *harness) slotStats(slot int) WorkerStats {
	h.t.Helper()
	st := h.stats()
	if slot >= len(st.Slots) {
		h.t.Fatalf("Stats has %d slots; want slot %d", len(st.Slots), slot)
	}
	return st.Slots[slot]
}

// proc returns the process of slot and gen, which must have started.
func (h *harness) proc(slot, gen int) *fakeProc {
	h.t.Helper()
	p := h.l.find(slot, gen)
	if p == nil {
		h.t.Fatalf("slot %d gen %d was not launched; launches %v; events:%s", slot, gen, h.l.getLaunches(), h.rec.dump())
	}
	return p
}

// ready makes p say READY=1 and waits until the pool knows.
func (h *harness) ready(p *fakeProc) {
	h.t.Helper()
	h.p.Notify(p.pid, true, false, "")
	h.settle()
	h.rec.waitFor(h.t, fmt.Sprintf("ready of pid %d", p.pid), isPID(EventReady, p.pid))
}

// readyAll makes the first worker of every slot ready.
func (h *harness) readyAll() {
	h.t.Helper()
	for i := range h.cfg.Workers {
		h.ready(h.proc(i, 1))
	}
}

// exit ends p with e and waits until the pool has handled it.
func (h *harness) exit(p *fakeProc, e Exit) Event {
	h.t.Helper()
	if !p.exit(e) {
		h.t.Fatalf("pid %d had already exited", p.pid)
	}
	h.settle()
	return h.rec.waitFor(h.t, fmt.Sprintf("exit of pid %d", p.pid), isPID(EventExited, p.pid))
}

// crash ends p with exit status 1.
func (h *harness) crash(p *fakeProc) Event {
	h.t.Helper()
	return h.exit(p, Exit{Code: 1})
}

// restart runs Restart in the background; its result comes on the channel.
func (h *harness) restart(only int) <-chan error {
	h.t.Helper()
	c := make(chan error, 1)
	ctx := h.ctx()
	n := h.rec.count(is(EventRolloutStarted))
	go func() { c <- h.p.Restart(ctx, only) }()
	// Wait until the rollout has begun.
	if _, ok := h.rec.waitN(is(EventRolloutStarted), n+1, nil); !ok {
		h.t.Fatalf("Restart(%d) did not start a rollout; events:%s", only, h.rec.dump())
	}
	h.settle()
	return c
}

// result waits for an error on c.
func (h *harness) result(c <-chan error, what string) error {
	h.t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(waitLimit):
		h.t.Fatalf("%s did not return within %s; events:%s", what, waitLimit, h.rec.dump())
		return nil
	}
}

// notReturned fails if c already has a result.
func (h *harness) notReturned(c <-chan error, what string) {
	h.t.Helper()
	select {
	case err := <-c:
		h.t.Fatalf("%s returned %v early; events:%s", what, err, h.rec.dump())
	default:
	}
}

// runResult waits for Run to return and returns its error.
func (h *harness) runResult() error {
	h.t.Helper()
	if h.ran {
		return h.runErr
	}
	select {
	case err := <-h.runc:
		h.ran, h.runErr = true, err
		return err
	case <-time.After(waitLimit):
		h.t.Fatalf("Run did not return within %s; events:%s", waitLimit, h.rec.dump())
		return nil
	}
}

// running fails if Run has returned.
func (h *harness) running() {
	h.t.Helper()
	select {
	case <-h.p.Done():
		h.t.Fatalf("Run returned %v; want it still running; events:%s", h.runResult(), h.rec.dump())
	default:
	}
}
