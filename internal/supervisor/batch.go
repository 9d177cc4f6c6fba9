package supervisor

// batchLauncher is implemented by a launcher that can start several
// workers at once. Starting a process waits for the child to exec, which
// on a busy machine is mostly waiting for a CPU: a rollout step of a large
// surge, or the first start of many slots, overlaps those waits instead of
// adding them up.
type batchLauncher interface {
	// LaunchAll starts the workers reqs describe, at once, and returns
	// the outcome of each, in the same order.
	LaunchAll(reqs []LaunchRequest) []LaunchResult
}

// LaunchRequest is one worker to start: Launch's arguments.
type LaunchRequest struct {
	Slot, Gen, Count int
}

// LaunchResult is the outcome of one LaunchRequest: Launch's results.
type LaunchResult struct {
	Proc Process
	Err  error
}

// startWorkers starts a new worker in each of ss, as startWorker does,
// at once when the launcher can, and returns the workers and errors in
// the order of ss.
func (p *Pool) startWorkers(ss []*slot, reason string) ([]*worker, []error) {
	ws, errs := make([]*worker, len(ss)), make([]error, len(ss))
	bl, ok := p.launch.(batchLauncher)
	if !ok || len(ss) < 2 {
		for i, s := range ss {
			ws[i], errs[i] = p.startWorker(s, reason)
		}
		return ws, errs
	}
	count := p.liveSlots()
	reqs := make([]LaunchRequest, len(ss))
	for i, s := range ss {
		p.beginStart(s)
		reqs[i] = LaunchRequest{Slot: s.id, Gen: s.gen, Count: count}
	}
	for i, r := range bl.LaunchAll(reqs) {
		ws[i], errs[i] = p.launched(ss[i], reason, r.Proc, r.Err)
		if ws[i] != nil && p.shutdown != nil {
			// A failure handled just before ended the pool: this
			// worker started too late to be asked to stop with the rest.
			p.stopWorker(ws[i], "shutdown")
		}
	}
	return ws, errs
}
