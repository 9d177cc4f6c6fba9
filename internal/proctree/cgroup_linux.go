package proctree

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// cgroupPrefix starts the name of every primary's cgroup:
// herd.<name>.<pid>.<start>.<pidns>: the primary's pid, start time and pid
// namespace tell a live primary's cgroup from one left by a primary that
// died, and leave alone those of primaries in other pid namespaces.
const cgroupPrefix = "herd."

// ownCgroupDir returns the directory of this process's cgroup v2: the
// unified hierarchy is mounted at /sys/fs/cgroup, or at
// /sys/fs/cgroup/unified on a hybrid system.
func ownCgroupDir() (string, error) {
	cgs, err := procfs.NewDefaultFS()
	if err != nil {
		return "", err
	}
	self, err := cgs.Self()
	if err != nil {
		return "", err
	}
	list, err := self.Cgroups()
	if err != nil {
		return "", err
	}
	own, found := "", false
	for _, c := range list {
		if c.HierarchyID == 0 && len(c.Controllers) == 0 {
			own, found = c.Path, true
		}
	}
	if !found {
		return "", errors.New("no cgroup v2 hierarchy")
	}
	mounts, err := procfs.GetMounts()
	if err != nil {
		return "", err
	}
	var best *procfs.MountInfo
	for _, m := range mounts {
		if m.FSType != "cgroup2" || !strings.HasPrefix(own, m.Root) {
			continue
		}
		if best == nil || m.MountPoint == "/sys/fs/cgroup" {
			best = m
		}
	}
	if best == nil {
		return "", errors.New("cgroup v2 is not mounted")
	}
	return filepath.Join(best.MountPoint, strings.TrimPrefix(own, best.Root)), nil
}

// cloneIntoCgroup reports whether the kernel starts processes straight into
// a cgroup (clone3 with CLONE_INTO_CGROUP, Linux 5.7): without it a worker
// would run in the primary's cgroup until moved, time enough to fork
// outside its own.
func cloneIntoCgroup() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	rel := unix.ByteSliceToString(u.Release[:])
	var major, minor int
	if _, err := fmt.Sscanf(rel, "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 5 || major == 5 && minor >= 7
}

// primaryID names a primary process for as long as it lives.
type primaryID struct {
	pid   int
	start uint64 // clock ticks after boot
	pidns uint64 // the inode of its pid namespace
}

// selfID returns this process's primaryID.
func selfID() (primaryID, error) {
	st, err := readStat(os.Getpid())
	if err != nil {
		return primaryID{}, err
	}
	ns, err := pidNS(os.Getpid())
	return primaryID{pid: os.Getpid(), start: st.Start, pidns: ns}, err
}

// pidNS returns the inode of pid's pid namespace.
func pidNS(pid int) (uint64, error) {
	fi, err := os.Stat(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, errors.New("no inode for a pid namespace")
	}
	return st.Ino, nil
}

// cgroupName is the name of the cgroup of primary id, for cluster name.
// Characters a directory name may not hold, or that would make it
// ambiguous, become '_'.
func cgroupName(name string, id primaryID) string {
	return fmt.Sprintf("%s.%d.%d.%d", cgroupStem(name), id.pid, id.start, id.pidns)
}

// cgroupStem is the part of a cgroup name that depends on the cluster
// name only.
func cgroupStem(name string) string {
	b := []byte(name)
	if len(b) > 64 {
		b = b[:64]
	}
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return cgroupPrefix + string(b)
}

// parseCgroupName is the inverse of cgroupName: it returns the stem and
// the primary.
func parseCgroupName(dir string) (stem string, id primaryID, ok bool) {
	f := strings.Split(dir, ".")
	if len(f) < 5 || f[0]+"." != cgroupPrefix {
		return "", primaryID{}, false
	}
	n := len(f)
	pid, err1 := strconv.Atoi(f[n-3])
	start, err2 := strconv.ParseUint(f[n-2], 10, 64)
	ns, err3 := strconv.ParseUint(f[n-1], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return "", primaryID{}, false
	}
	return strings.Join(f[:n-3], "."), primaryID{pid: pid, start: start, pidns: ns}, true
}

// cgroup is one cgroup v2 directory.
type cgroup struct {
	dir string
	fd  int // the directory, open for CLONE_INTO_CGROUP; -1 once closed
}

// makeCgroup creates dir and opens it.
func makeCgroup(dir string) (*cgroup, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	return &cgroup{dir: dir, fd: fd}, nil
}

// procs returns the pids in the cgroup (not in its children).
func (c *cgroup) procs() []int {
	b, err := os.ReadFile(filepath.Join(c.dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// signal sends sig to every process of the cgroup. A pid read from
// cgroup.procs may end and be reused before the signal, as with any kill by
// pid; kill sends SIGKILL through cgroup.kill instead, which has no such
// race.
func (c *cgroup) signal(sig unix.Signal) {
	for _, pid := range c.procs() {
		_ = unix.Kill(pid, sig)
	}
}

// kill ends every process of the cgroup and of its children. Before
// cgroup.kill (Linux 5.14) it kills the processes one by one, a few rounds
// to catch those forked meanwhile.
func (c *cgroup) kill() {
	err := os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0)
	if err == nil || errors.Is(err, os.ErrNotExist) && !c.exists() {
		return
	}
	for range 4 {
		c.signal(unix.SIGKILL)
	}
}

func (c *cgroup) exists() bool {
	_, err := os.Stat(c.dir)
	return err == nil
}

// populated reports whether a process is left in the cgroup or below it.
func (c *cgroup) populated() bool {
	f, err := os.Open(filepath.Join(c.dir, "cgroup.events"))
	if err != nil {
		return false // gone
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("populated ")); ok {
			return string(v) != "0"
		}
	}
	return false
}

// remove closes the cgroup and removes its directory once empty. A process
// that has just ended may keep it busy a moment, so it tries for a while.
func (c *cgroup) remove() error {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
	var err error
	for range 50 {
		if err = os.Remove(c.dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return err
		}
		time.Sleep(10 * time.Millisecond) // nothing to wait on: the kernel frees it
	}
	return err
}

// removeTree removes dir and every cgroup below it, deepest first, after
// killing what runs there; it waits up to wait for them to end.
func removeTree(dir string, wait time.Duration) error {
	c := &cgroup{dir: dir, fd: -1}
	c.kill()
	deadline := time.Now().Add(wait)
	for c.populated() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // the kernel delivers SIGKILL; nothing to wait on
	}
	ents, _ := os.ReadDir(dir)
	var errs []error
	for _, e := range ents {
		if e.IsDir() {
			errs = append(errs, removeTree(filepath.Join(dir, e.Name()), 0))
		}
	}
	errs = append(errs, c.remove())
	return errors.Join(errs...)
}
