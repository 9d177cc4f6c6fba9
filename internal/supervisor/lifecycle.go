package supervisor

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// beginShutdown stops every worker gracefully; Run returns once they are
// gone. A second call changes nothing.
func (p *Pool) beginShutdown(reason string) {
	if p.shutdown != nil {
		return
	}
	p.shutdown = &shutdown{done: make(chan struct{})}
	p.cfg.Logger.Info("stopping all workers", "reason", reason, "timeout", p.cfg.ShutdownTimeout)
	for _, s := range p.slots {
		stopTimer(&s.respawn)
	}
	if p.rollout != nil {
		p.finishRollout(ErrShutdown)
	}
	for _, w := range p.byPID {
		p.stopWorker(w, "shutdown")
	}
}

// killAll sends SIGKILL to every worker, and to what exited workers left,
// at once.
func (p *Pool) killAll() {
	for _, w := range p.byPID {
		_ = w.proc.Kill()
	}
	for w := range p.ending {
		_ = w.proc.Kill()
	}
}

// liveSlots counts the slots that are not being scaled away.
func (p *Pool) liveSlots() int {
	n := 0
	for _, s := range p.slots {
		if !s.removing {
			n++
		}
	}
	return n
}

// scale sets the number of live slots to n.
func (p *Pool) scale(n int) error {
	if p.shutdown != nil {
		return ErrShutdown
	}
	if n < p.cfg.MinWorkers || n > p.cfg.MaxWorkers {
		return &RangeError{Want: n, Min: p.cfg.MinWorkers, Max: p.cfg.MaxWorkers}
	}
	old := p.liveSlots()
	if n == old {
		return nil
	}
	if n > len(p.slots) {
		if err := p.launch.Resize(n); err != nil {
			return fmt.Errorf("scale to %d: %w", n, err)
		}
	}
	for len(p.slots) < n {
		p.slots = append(p.slots, &slot{id: len(p.slots)})
	}
	for _, s := range p.slots[:n] {
		if s.removing {
			// Scaled away and back before its worker left: start anew
			// once it is gone.
			s.removing = false
			if w := s.cur; w != nil && w.stopping {
				w.stopReason = "restart"
			}
		}
	}
	for _, s := range p.slots[:n] {
		if s.cur == nil && s.next == nil && s.respawn == nil && !s.disabled {
			_, _ = p.startWorker(s, "scale") // a failure is handled as a crash
		}
	}
	var removed []*slot
	for _, s := range p.slots[n:] {
		if s.removing {
			continue
		}
		s.removing = true
		stopTimer(&s.respawn)
		p.dropFromRollout(s)
		if s.next != nil {
			p.stopWorker(s.next, "scale")
		}
		removed = append(removed, s)
	}
	p.steer() // no new connection reaches the removed slots from now on
	for _, s := range removed {
		if s.cur != nil {
			p.stopWhenDrained(s.cur, "scale")
		}
	}
	p.dropRemovedSlots()
	p.cfg.Logger.Debug("scaling", "from", old, "to", n)
	p.emit(Event{Type: EventScaled, Slot: -1, Workers: n})
	return nil
}

// dropRemovedSlots forgets the trailing slots that were scaled away and
// whose workers are gone, and shrinks the launcher to match.
func (p *Pool) dropRemovedSlots() {
	n := len(p.slots)
	for n > 0 {
		s := p.slots[n-1]
		if !s.removing || s.cur != nil || s.next != nil {
			break
		}
		p.removePIDFile(s.id)
		n--
	}
	if n == len(p.slots) {
		return
	}
	p.slots = p.slots[:n]
	if err := p.launch.Resize(n); err != nil {
		p.cfg.Logger.Warn("releasing sockets of removed slots", "err", err)
	}
}

func (p *Pool) stats() Stats {
	now := p.clock.Now()
	st := Stats{
		Started: p.started, MinWorkers: p.cfg.MinWorkers, MaxWorkers: p.cfg.MaxWorkers,
		TotalRestarts: p.counts.restarts, TotalCrashes: p.counts.crashes, Spawned: p.counts.spawned,
		ShutdownRequested: p.shutdown != nil, RestartInProgress: p.rollout != nil,
		RolloutsDone: p.counts.rolloutsDone, RolloutsKO: p.counts.rolloutsKO,
		Restarts: make(map[string]uint64, len(p.counts.byReason)),
	}
	for k, v := range p.counts.byReason {
		st.Restarts[k] = v
	}
	if p.cluster != nil {
		v := *p.cluster
		st.Cluster = &v
	}
	for _, s := range p.slots {
		ws := WorkerStats{
			Slot: s.id, Gen: s.gen, Status: p.status(s), Port: p.cfg.Port,
			ExitStatus: s.lastExit.Code, CrashCount: len(s.crashTimes), Crashes: s.crashes,
			RespawnDisabled: s.disabled, ClusterIndex: -1,
		}
		if p.cluster != nil {
			ws.ClusterIndex = p.cluster.SlotIndex(s.id)
			if s.cur != nil && p.cfg.Follow != FollowNone {
				ws.ClusterIndex = s.cur.index // the one it started with, which it holds
			}
		}
		if w := s.cur; w != nil {
			ws.PID, ws.Gen, ws.StartedAt, ws.Ready, ws.StatusText = w.pid, w.gen, w.started, w.ready, w.status
			ws.Uptime = now.Sub(w.started)
			ws.Requests, ws.LastHeartbeat = w.requests, w.heardAt
			ws.RSS, ws.CPUPercent = w.usage.RSS, w.usage.CPUPercent
		}
		switch ws.Status {
		case StatusActive:
			st.Active++
		case StatusCrashed, StatusRespawning:
			st.Crashed++
		case StatusDisabled:
			st.Disabled++
		case StatusStarting:
			st.Starting++
		}
		if !s.removing {
			st.Workers++
		}
		st.Slots = append(st.Slots, ws)
	}
	return st
}

// status derives the status of s.
func (p *Pool) status(s *slot) Status {
	switch w := s.cur; {
	case s.disabled:
		return StatusDisabled
	case w != nil && w.stopping:
		return StatusStopping
	case w != nil && w.ready:
		return StatusActive
	case w != nil:
		return StatusStarting
	case s.respawn != nil:
		return StatusRespawning
	case s.crashed:
		return StatusCrashed
	case s.removing:
		return StatusStopping
	}
	return StatusStarting
}

func (p *Pool) ancestor(pid int) (int, bool) {
	if p.cfg.Ancestor == nil {
		return 0, false
	}
	return p.cfg.Ancestor(pid, func(q int) bool { return p.byPID[q] != nil })
}

// writePIDFile records the pid serving slot, atomically.
func (p *Pool) writePIDFile(slot, pid int) {
	if p.cfg.PIDDir == "" {
		return
	}
	if err := WritePIDFile(filepath.Join(p.cfg.PIDDir, fmt.Sprintf("worker-%d.pid", slot)), pid); err != nil {
		p.cfg.Logger.Warn("writing pid file", "slot", slot, "err", err)
	}
}

func (p *Pool) removePIDFile(slot int) {
	if p.cfg.PIDDir == "" {
		return
	}
	_ = os.Remove(filepath.Join(p.cfg.PIDDir, fmt.Sprintf("worker-%d.pid", slot)))
}

// WritePIDFile writes pid to path through a temporary file and a rename, so
// a reader never sees a partial file. Neither the temporary file nor path
// is followed if it is a symbolic link: the temporary file gets a random
// name and is created with O_EXCL|O_NOFOLLOW, and the rename replaces a
// link at path instead of writing through it.
func WritePIDFile(path string, pid int) error {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	tmp := path + ".tmp-" + hex.EncodeToString(rnd[:])
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(strconv.Itoa(pid) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
