package supervisor

import (
	"fmt"
	"math"
	"time"
)

// slot is one stable worker number and the processes that serve it.
type slot struct {
	id  int
	gen int // starts so far
	// cur serves the slot (or is starting to); next is its replacement
	// during a rolling restart, running beside it until ready.
	cur, next *worker
	respawn   timer // pending respawn
	disabled  bool
	removing  bool // scaled away: goes once its workers exit
	crashed   bool // last worker crashed and will not be respawned

	// replaceReason says why s.next was started: rollout, recycle, hung.
	replaceReason string
	recycleWanted bool      // queued for a recycle
	recycleAfter  time.Time // no recycle before: the last one failed

	crashTimes  []time.Time // within the crash window
	consecutive int         // crashes since the last healthy run
	unready     int         // workers in a row that failed before they were ready
	quickStops  int         // self-stops in a row without a worker serving long
	shortages   int         // starts in a row that failed for want of resources
	crashes     int
	lastExit    Exit
}

// worker is one process of a slot.
type worker struct {
	slot        *slot
	gen         int
	proc        Process
	pid         int
	started     time.Time
	readyAt     time.Time
	ready       bool
	stopping    bool
	stopReason  string
	status      string
	readyTimer  timer
	killTimer   timer
	readyFailed bool // killed for not being ready in time
	selfStop    bool // said STOPPING=1 on its own

	lastBeat    time.Time // hang detection counts from here: ready or last beat
	heardAt     time.Time // last beat, zero before any
	hung        bool
	requests    uint64
	maxRequests uint64 // 0: no limit
	ageTimer    timer
	usage       Usage

	// The cluster view the worker was started with (LaunchView).
	index, total int
	epoch        int64
}

// startWorker starts a new process for s and returns it. The new worker
// serves the slot at once when the slot has no worker, and becomes its
// replacement (s.next) otherwise. A start that fails counts as a crash of
// the slot unless an older worker still serves it.
func (p *Pool) startWorker(s *slot, reason string) (*worker, error) {
	p.beginStart(s)
	proc, err := p.launch.Launch(s.id, s.gen, p.liveSlots())
	return p.launched(s, reason, proc, err)
}

// beginStart readies s for the start of its next generation.
func (p *Pool) beginStart(s *slot) {
	stopTimer(&s.respawn)
	s.crashed = false
	s.gen++
}

// launched records the outcome of the start of s's current generation:
// the new worker, or the failure, handled as startWorker says.
func (p *Pool) launched(s *slot, reason string, proc Process, err error) (*worker, error) {
	if err != nil && resourceShortage(err) {
		p.startShortOfResources(s, err)
		return nil, err
	}
	if err != nil {
		p.cfg.Logger.Error("worker failed to start", "slot", s.id, "gen", s.gen, "err", err)
		p.emit(Event{Type: EventExited, Slot: s.id, Gen: s.gen, Crash: true, Status: -1, Reason: "start failed", Err: err})
		p.counts.crashes++
		s.crashes++
		if s.cur == nil {
			p.afterCrash(s, p.clock.Now(), nil)
		}
		return nil, err
	}
	s.shortages = 0
	w := &worker{slot: s, gen: s.gen, proc: proc, pid: proc.Pid(), started: p.clock.Now()}
	p.noteView(w)
	p.byPID[w.pid] = w
	p.counts.spawned++
	if s.gen > 1 {
		p.counts.restarts++
		p.counts.byReason[restartReason(reason)]++
	}
	if p.cfg.ReadyByNotify {
		p.armReadyTimeout(w, p.cfg.ReadyTimeout)
	} else {
		w.readyTimer = p.after(p.cfg.ReadyDelay, func() { p.markReady(w) })
	}
	go func() {
		exit := proc.Wait()
		_ = p.post(func() { p.onExit(w, exit) })
	}()
	if s.cur == nil {
		s.cur = w
		p.writePIDFile(s.id, w.pid)
	} else {
		s.next = w
	}
	p.emit(Event{Type: EventStarted, Slot: s.id, PID: w.pid, Gen: w.gen, Reason: reason})
	return w, nil
}

// armReadyTimeout kills w if it is not ready within d.
func (p *Pool) armReadyTimeout(w *worker, d time.Duration) {
	due := p.clock.Now().Add(d)
	w.readyTimer = p.after(d, func() { p.onReadyTimeout(w, due) })
}

// onReadyTimeout kills a worker that did not become ready in time; its exit
// counts as a crash. A timeout that fires late, the primary having been
// stopped meanwhile, first gives back the time it lost: a READY=1 may be
// waiting in the socket.
func (p *Pool) onReadyTimeout(w *worker, due time.Time) {
	if w.ready || w.stopping || p.byPID[w.pid] != w {
		return
	}
	if late := p.clock.Now().Sub(due); late > stallThreshold {
		p.armReadyTimeout(w, min(late, p.cfg.ReadyTimeout))
		return
	}
	p.cfg.Logger.Error("worker not ready in time, killing it: "+readyTimeoutHint, "slot", w.slot.id, "pid", w.pid, "timeout", p.cfg.ReadyTimeout)
	p.emit(Event{Type: EventReadyTimeout, Slot: w.slot.id, PID: w.pid, Gen: w.gen})
	w.readyFailed = true
	_ = w.proc.Kill()
}

// markReady records that w is ready; a replacement takes over its slot.
func (p *Pool) markReady(w *worker) {
	if w.ready || w.stopping || p.byPID[w.pid] != w {
		return
	}
	stopTimer(&w.readyTimer)
	w.ready = true
	w.readyAt = p.clock.Now()
	w.slot.unready = 0
	p.everReady = true
	p.armWorker(w)
	p.emit(Event{Type: EventReady, Slot: w.slot.id, PID: w.pid, Gen: w.gen})
	s := w.slot
	if s.next == w {
		old := s.cur
		s.cur, s.next = w, nil
		p.writePIDFile(s.id, w.pid)
		if old != nil {
			p.retire(old, s.replaceReason)
		}
		p.recycleEnded(s, false)
	}
	p.rolloutStep()
}

// onNotify applies a sd_notify message. A message from a process herd did
// not start is attributed to its closest ancestor that is a worker.
func (p *Pool) onNotify(pid int, ready, stopping bool, status string) {
	w := p.byPID[pid]
	if w == nil {
		if apid, ok := p.ancestor(pid); ok {
			w = p.byPID[apid]
		}
	}
	if w == nil {
		p.cfg.Logger.Debug("notification from an unknown process", "pid", pid)
		return
	}
	if status != "" {
		w.status = status
	}
	if stopping && !w.stopping && !w.selfStop {
		w.selfStop = true
		p.emit(Event{Type: EventStopping, Slot: w.slot.id, PID: w.pid, Gen: w.gen, Reason: "worker said STOPPING"})
	}
	if ready && p.cfg.ReadyByNotify {
		p.markReady(w)
	}
}

// stopWorker asks w to stop and kills it after ShutdownTimeout.
func (p *Pool) stopWorker(w *worker, reason string) {
	if w.killTimer != nil {
		return
	}
	w.stopping, w.stopReason = true, reason
	stopTimer(&w.readyTimer)
	p.emit(Event{Type: EventStopping, Slot: w.slot.id, PID: w.pid, Gen: w.gen, Reason: reason})
	if err := w.proc.Signal(p.cfg.StopSignal); err != nil {
		p.cfg.Logger.Debug("stop signal not delivered", "slot", w.slot.id, "pid", w.pid, "err", err)
	}
	w.killTimer = p.after(p.cfg.ShutdownTimeout, func() {
		if p.byPID[w.pid] == w {
			p.cfg.Logger.Warn("worker did not stop in time, killing it", "slot", w.slot.id, "pid", w.pid, "timeout", p.cfg.ShutdownTimeout)
			_ = w.proc.Kill()
		}
	})
}

// onExit handles the end of w's process.
func (p *Pool) onExit(w *worker, exit Exit) {
	delete(p.byPID, w.pid)
	defer p.clusterExited(w)
	stopTimer(&w.readyTimer)
	stopTimer(&w.killTimer)
	stopTimer(&w.ageTimer)
	s := w.slot
	s.lastExit = exit
	crash, reason := p.exitKind(w, exit)
	p.emit(Event{Type: EventExited, Slot: s.id, PID: w.pid, Gen: w.gen, Status: exit.Code, Signal: exit.Signal, Crash: crash, Reason: reason})
	p.endTree(w)
	if s.next == w && !w.ready {
		p.recycleEnded(s, true)
	}
	if r := p.rollout; r != nil && r.inflight[s] == w && !w.ready {
		p.rolloutFailed(s, fmt.Errorf("new worker of slot %d exited before it was ready (%s)", s.id, exitString(exit)))
	}
	switch w {
	case s.cur:
		s.cur = nil
		p.removePIDFile(s.id)
	case s.next:
		s.next = nil
	}
	if crash {
		p.counts.crashes++
		s.crashes++
	}
	switch {
	case p.shutdown != nil:
		return
	case s.removing:
		p.dropRemovedSlots()
		return
	case s.cur != nil && s.cur != w:
		return // a failed replacement: the old worker keeps serving
	case s.cur == nil && s.next != nil:
		return // its replacement is on the way
	}
	if crash {
		p.afterCrash(s, p.clock.Now(), w)
		return
	}
	if s.cur == nil && s.next == nil && (w.stopReason == "restart" || w.selfStop && !crash) {
		_, _ = p.startWorker(s, "respawn") // a failure is handled as a crash
	}
}

// afterCrash applies crash protection and schedules a respawn of s. w is
// the crashed worker (nil when it could not even start).
func (p *Pool) afterCrash(s *slot, now time.Time, w *worker) {
	if w != nil && w.ready && now.Sub(w.readyAt) >= healthyRunTime {
		s.consecutive = 0
	}
	s.consecutive++
	if p.countCrash(s, now, w) {
		return
	}
	if !p.cfg.Respawn {
		s.crashed = true
		p.checkHopeless()
		return
	}
	d := respawnDelay(p.cfg.RespawnDelay, s.consecutive)
	p.emit(Event{Type: EventRespawnScheduled, Slot: s.id, Gen: s.gen, Delay: d})
	s.respawn = p.after(d, func() {
		s.respawn = nil
		if p.shutdown == nil && !s.disabled && !s.removing && s.cur == nil {
			_, _ = p.startWorker(s, "respawn") // a failure is handled as a crash
		}
	})
}

// respawnDelay is base grown 1.5 times per consecutive crash after the
// first, capped at 15s.
func respawnDelay(base time.Duration, consecutive int) time.Duration {
	d := float64(base) * math.Pow(backoffFactor, float64(max(consecutive-1, 0)))
	return time.Duration(min(d, float64(backoffCap)))
}

// checkHopeless ends the pool when no worker was ever ready and no slot can
// run one any more: the program cannot start, and waiting will not help.
func (p *Pool) checkHopeless() {
	if p.everReady || p.shutdown != nil {
		return
	}
	for _, s := range p.slots {
		if s.cur != nil || s.next != nil || s.respawn != nil || !(s.disabled || s.crashed) {
			return
		}
	}
	reason := "every slot is disabled after crashing too fast"
	if !p.cfg.Respawn {
		reason = "every worker exited and respawn is off"
	}
	p.exitErr = &NoWorkerReadyError{Reason: reason}
	p.beginShutdown(reason)
}

// restartReason maps the reason a worker was started for to the reason
// counted in restart statistics.
func restartReason(start string) string {
	switch start {
	case "respawn", "start":
		return "crash"
	case "rollout", "recycle", "hung", "scale":
		return start
	}
	return start
}

func exitString(e Exit) string {
	if e.Signal != "" {
		return "killed by " + e.Signal
	}
	return fmt.Sprintf("exit status %d", e.Code)
}
