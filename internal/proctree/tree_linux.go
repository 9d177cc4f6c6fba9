package proctree

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Mode is how the trees of a primary's workers are known.
type Mode string

// The modes; the package documentation describes them.
const (
	ModeCgroup Mode = "cgroup"
	ModeGroup  Mode = "process group"
)

// Options configure Open.
type Options struct {
	// Name is the cluster's name, part of its cgroup's name.
	Name string
	// NoCgroups forces group mode even where cgroups could be used.
	NoCgroups bool
	// NoKeeper starts no keeper (see RunKeeper).
	NoKeeper bool
	// Logger receives what the trees do; nil logs nothing.
	Logger *slog.Logger
}

// Trees tracks the process trees of one primary's workers. Its methods are
// safe for concurrent use.
type Trees struct {
	mode      Mode
	dir       string // the primary's cgroup, in cgroup mode
	log       *slog.Logger
	reaper    *Reaper
	subreaper bool // Open made the primary a child subreaper

	keeper   *os.File // the write end of the keeper's pipe
	keeperFD int      // the keeper's pidfd

	mu    sync.Mutex
	seq   int
	live  map[[2]int]*Tree // by slot and generation, until Release
	mains map[int]bool     // main pids of the live trees
}

// Open prepares the trees of a primary: its cgroup where it can make one,
// else group mode with the primary a child subreaper. As PID 1, or in group
// mode, it starts a Reaper. Close undoes it.
func Open(opts Options) *Trees {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Trees{mode: ModeGroup, log: log, live: make(map[[2]int]*Tree), mains: make(map[int]bool)}
	if !opts.NoCgroups {
		dir, err := makePrimaryCgroup(opts.Name)
		if err == nil {
			t.mode, t.dir = ModeCgroup, dir
		} else {
			log.Debug("no cgroup per worker; tracking process groups", "reason", err)
		}
	}
	if t.mode == ModeGroup {
		t.becomeSubreaper()
	}
	if t.mode == ModeGroup || os.Getpid() == 1 {
		t.reaper = startReaper(t)
	}
	if os.Getpid() != 1 && !opts.NoKeeper {
		// As PID 1 the kernel ends every process of the namespace with
		// the primary: no keeper needed.
		w, pidfd, err := startKeeper(t.dir)
		if err != nil {
			log.Warn("no keeper: if the primary is killed, what its workers left runs until the next start", "err", err)
		} else {
			t.keeper, t.keeperFD = w, pidfd
		}
	}
	return t
}

// becomeSubreaper makes orphans of the workers come back to the primary,
// which ends them (Tree.Signal) and reaps them.
func (t *Trees) becomeSubreaper() {
	var was int32
	_ = unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&was)), 0, 0, 0)
	if was != 0 {
		return
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.log.Warn("cannot become a child subreaper: processes that leave a worker's group may outlive it", "err", err)
		return
	}
	t.subreaper = true
}

// makePrimaryCgroup creates this primary's cgroup beside itself.
func makePrimaryCgroup(name string) (string, error) {
	if !cloneIntoCgroup() {
		return "", errors.New("the kernel cannot start processes in a cgroup (Linux 5.7)")
	}
	own, err := ownCgroupDir()
	if err != nil {
		return "", err
	}
	id, err := selfID()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(own, cgroupName(name, id))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// Mode says how the trees are known.
func (t *Trees) Mode() Mode { return t.mode }

// Dir is the primary's cgroup directory, "" in group mode.
func (t *Trees) Dir() string { return t.dir }

// Close stops the reaper and removes the primary's cgroup, killing what is
// left in it. Call it once every worker's tree is released.
func (t *Trees) Close() error {
	var err error
	if t.dir != "" {
		err = removeTree(t.dir, 5*time.Second)
	}
	if t.keeper != nil {
		stopKeeper(t.keeper, t.keeperFD)
	}
	if t.reaper != nil {
		t.reaper.stop()
	}
	if t.subreaper {
		// A program that goes on after its cluster stopped reaps no
		// orphans: let them go to init again.
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	}
	return err
}

// New prepares the tree of the worker about to start in slot with
// generation gen: in cgroup mode, a cgroup of its own. Start the worker
// with CgroupFD, then call Started with its pid, or Abandon if it did not
// start. On nil Trees, the tree is the worker's process group alone.
func (t *Trees) New(slot, gen int) (*Tree, error) {
	tr := &Tree{trees: t, slot: slot, gen: gen, signaled: make(map[int]bool)}
	if t == nil {
		return tr, nil
	}
	if t.dir != "" {
		t.mu.Lock()
		t.seq++
		name := fmt.Sprintf("w%d.%d", slot, t.seq)
		t.mu.Unlock()
		cg, err := makeCgroup(filepath.Join(t.dir, name))
		switch {
		case errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) || errors.Is(err, unix.ENOMEM):
			return nil, err
		case err != nil:
			// The worker can still run, tracked by its process group.
			t.log.Warn("no cgroup for a worker; tracking its process group only", "slot", slot, "err", err)
		}
		tr.cg = cg
	}
	// Live from before the fork: the reaper must never take the worker
	// for an orphan of a gone tree.
	t.mu.Lock()
	t.live[[2]int{slot, gen}] = tr
	t.mu.Unlock()
	return tr, nil
}

// Tree is the processes of one worker: its main process's group, or its
// cgroup, plus (group mode) the processes carrying its marks.
type Tree struct {
	trees     *Trees
	slot, gen int
	cg        *cgroup // nil in group mode

	mu        sync.Mutex
	pgid      int          // the main process's pid
	groupGone bool         // the group was seen empty: its id may be reused
	sent      unix.Signal  // the last signal sent to the tree, for strays found later
	signaled  map[int]bool // marked processes outside the group already signalled
	released  bool
}

// CgroupFD is the descriptor of the tree's cgroup for CLONE_INTO_CGROUP,
// or -1 when it has none.
func (tr *Tree) CgroupFD() int {
	if tr == nil || tr.cg == nil {
		return -1
	}
	return tr.cg.fd
}

// DropCgroup gives up the tree's cgroup, which the kernel would not start
// the worker in (why): the worker is tracked by its process group.
func (tr *Tree) DropCgroup(why error) {
	if tr.cg == nil {
		return
	}
	tr.trees.log.Warn("a worker cannot start in its cgroup; tracking its process group only", "slot", tr.slot, "err", why)
	_ = tr.cg.remove()
	tr.cg = nil
}

// Started records the main process, which leads a process group of its own.
func (tr *Tree) Started(pid int) {
	tr.mu.Lock()
	tr.pgid = pid
	tr.mu.Unlock()
	t := tr.trees
	if t == nil {
		return
	}
	t.mu.Lock()
	t.mains[pid] = true
	t.mu.Unlock()
}

// Abandon removes the tree of a worker that did not start.
func (tr *Tree) Abandon() { tr.Release() }

// MainExited tells the tree that its main process was reaped.
func (tr *Tree) MainExited() {
	t := tr.trees
	if t == nil {
		return
	}
	t.mu.Lock()
	delete(t.mains, tr.pgid)
	t.mu.Unlock()
}

// Signal sends sig to every process left in the tree: the cgroup's, or the
// group's and the marked ones that came back to the primary. Poll sends it
// to those that come back later.
func (tr *Tree) Signal(sig unix.Signal) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.released {
		return
	}
	tr.sent = sig
	if tr.cg != nil {
		tr.cg.signal(sig)
		return
	}
	if tr.pgid > 0 && !tr.groupGone {
		_ = unix.Kill(-tr.pgid, sig)
	}
	tr.signalStrays(sig, true)
}

// Kill sends SIGKILL to every process of the tree, the main process
// included if it still runs.
func (tr *Tree) Kill() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.released {
		return
	}
	tr.sent = unix.SIGKILL
	if tr.cg != nil {
		tr.cg.kill()
	}
	if tr.pgid > 0 && !tr.groupGone {
		_ = unix.Kill(-tr.pgid, unix.SIGKILL)
	}
	tr.signalStrays(unix.SIGKILL, true)
}

// Poll reports whether no process of the tree is left, once its main
// process has exited. It sends the last signal of Signal or Kill to marked
// processes that came back to the primary since.
func (tr *Tree) Poll() (empty bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.released {
		return true
	}
	if tr.cg != nil {
		return !tr.cg.populated()
	}
	if !tr.groupGone && tr.pgid > 0 && errors.Is(unix.Kill(-tr.pgid, 0), unix.ESRCH) {
		// From now on the group's id may be reused: never signal it again.
		tr.groupGone = true
	}
	strays := tr.signalStrays(tr.sent, false)
	return tr.groupGone && strays == 0
}

// signalStrays sends sig (when not 0) to the live processes that carry
// the tree's marks and came back to the primary, all of them or only
// those not signalled before; it returns how many there are.
func (tr *Tree) signalStrays(sig unix.Signal, all bool) int {
	if tr.trees == nil || tr.trees.reaper == nil {
		return 0 // not a subreaper: none come back
	}
	n := 0
	for _, pid := range tr.trees.strays() {
		m, ok := readMarks(pid)
		if !ok || m.Primary != os.Getpid() || m.Slot != tr.slot || m.Gen != tr.gen {
			continue
		}
		n++
		if sig != 0 && (all || !tr.signaled[pid]) {
			_ = unix.Kill(pid, sig) // a child of ours: its pid cannot be reused before we reap it
			tr.signaled[pid] = true
		}
	}
	return n
}

// Release forgets the tree and removes its cgroup. Call it once Poll
// reported it empty, or to give up on it.
func (tr *Tree) Release() {
	tr.mu.Lock()
	if tr.released {
		tr.mu.Unlock()
		return
	}
	tr.released = true
	tr.mu.Unlock()
	t := tr.trees
	if t == nil {
		return
	}
	t.mu.Lock()
	if t.live[[2]int{tr.slot, tr.gen}] == tr {
		delete(t.live, [2]int{tr.slot, tr.gen})
	}
	delete(t.mains, tr.pgid)
	t.mu.Unlock()
	if tr.cg != nil {
		if err := tr.cg.remove(); err != nil {
			t.log.Warn("removing a worker's cgroup", "dir", tr.cg.dir, "err", err)
		}
	}
}

// strays returns the live children of the primary that are not the main
// process of a worker: orphans that came back to it, and the children the
// program started itself.
func (t *Trees) strays() []int {
	kids, err := children()
	if err != nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []int
	for _, pid := range kids {
		if t.mains[pid] {
			continue
		}
		if st, err := readStat(pid); err == nil && st.State != "Z" {
			out = append(out, pid)
		}
	}
	return out
}

// owner returns the live tree of the worker that marked a process, or nil.
func (t *Trees) owner(m Marks) *Tree {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.live[[2]int{m.Slot, m.Gen}]
}

func (t *Trees) isMain(pid int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mains[pid]
}
