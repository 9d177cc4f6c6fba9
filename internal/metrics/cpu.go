package metrics

import (
	"sync"

	"github.com/herd-cluster/herd/internal/procstat"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// cpuBook keeps herd_worker_cpu_seconds_total{slot} from going backwards
// when a slot's worker is replaced. A slot's counter is the CPU time of its
// exited workers plus that of its live ones, where a worker's CPU time is
// the highest value measured of its process tree.
//
// Live workers are known from Started events and from the pids in the
// pool's Stats (the current worker of each slot), so a replacement started
// during a rollout or recycle counts from its first scrape, and an old
// worker still stopping keeps counting until it exits. At a worker's exit
// (its Exited event, or a scrape that no longer finds it) its last
// measured value moves to the slot's past: CPU used between the last
// scrape and the exit is not counted.
type cpuBook struct {
	mu    sync.Mutex
	procs map[int]*cpuProc // live workers by pid
	past  map[int]float64  // by slot: CPU seconds of exited workers
}

// cpuProc is a live worker.
type cpuProc struct {
	slot int
	cpu  float64
}

func newCPUBook() *cpuBook {
	return &cpuBook{procs: make(map[int]*cpuProc), past: make(map[int]float64)}
}

// started records a new worker of slot; a worker that had the pid before
// has exited.
func (b *cpuBook) started(slot, pid int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fold(pid)
	b.procs[pid] = &cpuProc{slot: slot}
}

// exited moves the CPU time of the worker pid to its slot's past.
func (b *cpuBook) exited(pid int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fold(pid)
}

func (b *cpuBook) fold(pid int) {
	if p, ok := b.procs[pid]; ok {
		b.past[p.slot] += p.cpu
		delete(b.procs, pid)
	}
}

// live adds the current workers of st the book did not know and returns
// the pids of every live worker.
func (b *cpuBook) live(st supervisor.Stats) []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ws := range st.Slots {
		if p, ok := b.procs[ws.PID]; ws.PID > 0 && (!ok || p.slot != ws.Slot) {
			b.fold(ws.PID)
			b.procs[ws.PID] = &cpuProc{slot: ws.Slot}
		}
	}
	pids := make([]int, 0, len(b.procs))
	for pid := range b.procs {
		pids = append(pids, pid)
	}
	return pids
}

// update records the usage measured of pids. A pid that was not measured
// and is no longer current in st has exited.
func (b *cpuBook) update(pids []int, usage map[int]procstat.Usage, st supervisor.Stats) {
	current := make(map[int]bool, len(st.Slots))
	for _, ws := range st.Slots {
		current[ws.PID] = true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, pid := range pids {
		p, ok := b.procs[pid]
		if !ok {
			continue // exited meanwhile
		}
		if u, ok := usage[pid]; ok {
			p.cpu = max(p.cpu, u.CPUSeconds)
		} else if !current[pid] {
			b.fold(pid)
		}
	}
}

// totals returns the CPU seconds of every slot the book knows.
func (b *cpuBook) totals() map[int]float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[int]float64, len(b.past))
	for slot, s := range b.past {
		out[slot] = s
	}
	for _, p := range b.procs {
		out[p.slot] += p.cpu
	}
	return out
}
