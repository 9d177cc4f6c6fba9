package herd

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/herd-cluster/herd/internal/logs"
)

// EventSetupError names a mistake of setup that herd recognised and that
// keeps the cluster from working as configured, such as an app that binds
// herd's port itself instead of using the socket it inherits. Reason says
// what it is and what to do. It comes once per slot and kind.
const EventSetupError EventType = "setup_error"

// maxWarnings bounds the setup errors kept for Stats.
const maxWarnings = 16

// portNumber finds the port numbers a bind error names: ":8080",
// "('0.0.0.0', 8000)", "port 9292".
// It is compiled on first use: every worker process links this package,
// and none of them needs it.
var portNumber = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?:[:\]]|\bport\s+|,\s*)(\d{1,5})\b`)
})

// advisor watches worker output and lifecycle events for mistakes of setup
// herd can name, and says each once: as an EventSetupError (which the
// event log writes at error level), in Stats.Warnings and in the crash
// summary. It reads a subscription of its own to the output and to the
// events, so it never slows a worker or the supervisor.
type advisor struct {
	ports []int // TCP and UDP ports herd listens on
	push  func(Event)

	mu       sync.Mutex
	inUse    map[int]bindFailure // by slot: the last "address in use" seen
	crashed  map[int]int         // by slot: the pid of the last crash
	told     map[int]string      // by slot: the setup error said for it
	ipcTold  bool
	warnings []string
}

// bindFailure is an "address already in use" line of one worker.
type bindFailure struct {
	pid   int
	ports []int // the ports herd holds that the line names; all when it names none
}

// startAdvisor starts watching sink and events; the returned stop ends it.
func (c *Cluster) startAdvisor(addrs []string, sink *logs.Sink, events *eventQueue) (*advisor, func()) {
	a := &advisor{ports: listenPorts(addrs), push: events.push,
		inUse: map[int]bindFailure{}, crashed: map[int]int{}, told: map[int]string{}}
	sub := sink.Subscribe(-1, 256)
	evs, _, cancel := events.subscribe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Both channels are read until closed, so what was buffered when
		// stop was called is seen.
		for lines := sub.C(); lines != nil || evs != nil; {
			select {
			case l, ok := <-lines:
				if !ok {
					lines = nil
					continue
				}
				a.line(l)
			case e, ok := <-evs:
				if !ok {
					evs = nil
					continue
				}
				if e.Type == EventExited && e.Crash {
					a.crash(e.Slot, e.PID)
				}
			}
		}
	}()
	var once sync.Once
	return a, func() { once.Do(func() { sub.Close(); cancel(); <-done }) }
}

// listenPorts returns the ports of the "name=tcp://host:port" and udp
// addresses, as sockets.Set.Addrs describes them.
func listenPorts(addrs []string) []int {
	var ports []int
	for _, a := range addrs {
		_, url, _ := strings.Cut(a, "=")
		for _, scheme := range []string{"tcp://", "udp://"} {
			if hp, ok := strings.CutPrefix(url, scheme); ok {
				if _, p, err := net.SplitHostPort(hp); err == nil {
					if n, err := strconv.Atoi(p); err == nil && n > 0 {
						ports = append(ports, n)
					}
				}
			}
		}
	}
	return ports
}

// line looks at one line of output for a failed bind.
func (a *advisor) line(l logs.Line) {
	// A cheap test first: most lines are not about bind failures.
	if !strings.Contains(l.Text, "ddress already in use") && !strings.Contains(l.Text, "EADDRINUSE") {
		return
	}
	ours := a.namedPorts(l.Text)
	if ours == nil {
		return // it names ports, none of them herd's
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inUse[l.Slot] = bindFailure{pid: l.PID, ports: ours}
	a.check(l.Slot)
}

// namedPorts returns the ports of herd that text names, all of herd's when
// it names none (Python's "[Errno 98] Address already in use" does not),
// and nil when it names only others.
func (a *advisor) namedPorts(text string) []int {
	var named, ours []int
	for _, m := range portNumber().FindAllStringSubmatch(text, -1) {
		n, _ := strconv.Atoi(m[1])
		named = append(named, n)
		for _, p := range a.ports {
			if p == n {
				ours = append(ours, n)
			}
		}
	}
	if len(named) == 0 {
		return a.ports
	}
	return ours
}

// crash records that the worker pid of slot failed.
func (a *advisor) crash(slot, pid int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.crashed[slot] = pid
	a.check(slot)
}

// check says the setup error of slot once its worker both failed and said
// that herd's port was in use, whichever came first. The caller holds a.mu.
func (a *advisor) check(slot int) {
	f, ok := a.inUse[slot]
	if !ok || a.crashed[slot] != f.pid || a.told[slot] != "" {
		return
	}
	var ps []string
	for _, p := range f.ports {
		ps = append(ps, ":"+strconv.Itoa(p))
	}
	msg := fmt.Sprintf("herd already listens on %s; the app must use the inherited socket (fd 3, LISTEN_FDS) instead of binding it",
		strings.Join(ps, ", "))
	a.told[slot] = msg
	a.warn(slot, f.pid, msg)
}

// noIPC says, once per cluster, that MaxRequests cannot recycle a command
// that does not report its requests over its IPC channel.
func (a *advisor) noIPC(slot, pid int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ipcTold {
		return
	}
	a.ipcTold = true
	a.warn(slot, pid, fmt.Sprintf("--max-requests needs workers that report requests over HERD_IPC; slot %d's command does not, so requests will not recycle it", slot))
}

// warn records msg and emits it. The caller holds a.mu.
func (a *advisor) warn(slot, pid int, msg string) {
	if len(a.warnings) < maxWarnings {
		a.warnings = append(a.warnings, fmt.Sprintf("slot %d: %s", slot, msg))
	}
	a.push(Event{Type: EventSetupError, Slot: slot, PID: pid, Reason: msg})
}

// Warnings returns the setup errors said so far.
func (a *advisor) Warnings() []string {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.warnings...)
}

// toldSlot returns the bind setup error said for slot, or "".
func (a *advisor) toldSlot(slot int) string {
	if a == nil {
		return ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.told[slot]
}
