package supervisor

// endTree ends what w left running once its main process has exited: the
// stop signal to the rest of its tree, then SIGKILL after ShutdownTimeout,
// or at once when the primary is being force-stopped. The pool does not
// finish a shutdown before every tree is gone.
func (p *Pool) endTree(w *worker) {
	done := w.proc.EndTree(p.cfg.StopSignal)
	select {
	case <-done:
		return
	default:
	}
	p.cfg.Logger.Info("the worker's main process ended; stopping the processes it left", "slot", w.slot.id, "pid", w.pid)
	if p.shutdown != nil && p.shutdown.force {
		_ = w.proc.Kill()
	}
	p.ending[w] = p.after(p.cfg.ShutdownTimeout, func() { p.killTree(w) })
	go func() {
		<-done
		_ = p.post(func() {
			if t, ok := p.ending[w]; ok {
				t.Stop()
				delete(p.ending, w)
			}
		})
	}()
}

// killTree kills what is left of w's tree.
func (p *Pool) killTree(w *worker) {
	if _, ok := p.ending[w]; ok {
		p.cfg.Logger.Warn("processes the worker left did not stop in time, killing them", "slot", w.slot.id, "pid", w.pid, "timeout", p.cfg.ShutdownTimeout)
		_ = w.proc.Kill()
	}
}
