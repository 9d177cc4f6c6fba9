package cpus

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// cgroupRef is where /proc/self/cgroup places a process.
type cgroupRef struct {
	v1Path        string // path in the v1 hierarchy with the cpu controller
	v1Controllers string // that hierarchy's controller list, e.g. "cpu,cpuacct"
	hasV1         bool
	v2Path        string // path in the unified (v2) hierarchy
	hasV2         bool
}

// parseProcCgroup reads /proc/<pid>/cgroup lines, "ID:CONTROLLERS:PATH", and
// returns the v1 hierarchy holding the cpu controller and the v2 path.
func parseProcCgroup(r io.Reader) (cgroupRef, error) {
	var ref cgroupRef
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			return cgroupRef{}, fmt.Errorf("malformed cgroup line %q", line)
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			ref.v2Path, ref.hasV2 = parts[2], true
		case slices.Contains(strings.Split(parts[1], ","), "cpu"):
			ref.v1Path, ref.v1Controllers, ref.hasV1 = parts[2], parts[1], true
		}
	}
	if err := sc.Err(); err != nil {
		return cgroupRef{}, fmt.Errorf("read cgroup list: %w", err)
	}
	return ref, nil
}

// parseCPUMax parses a cgroup v2 cpu.max file, "QUOTA PERIOD" or
// "max PERIOD", into a CPU count rounded up. ok is false when there is no
// limit.
func parseCPUMax(s string) (n int, ok bool, err error) {
	fields := strings.Fields(s)
	if len(fields) == 0 || len(fields) > 2 {
		return 0, false, fmt.Errorf("malformed cpu.max %q", s)
	}
	if fields[0] == "max" {
		return 0, false, nil
	}
	if len(fields) != 2 {
		return 0, false, fmt.Errorf("malformed cpu.max %q", s)
	}
	return quotaCPUs(fields[0], fields[1])
}

// parseCgroupV1 parses the contents of cgroup v1 cpu.cfs_quota_us and
// cpu.cfs_period_us into a CPU count rounded up. ok is false when there is
// no limit (a quota of -1).
func parseCgroupV1(quota, period string) (n int, ok bool, err error) {
	q := strings.TrimSpace(quota)
	if strings.HasPrefix(q, "-") {
		if _, err := strconv.ParseInt(q, 10, 64); err != nil {
			return 0, false, fmt.Errorf("parse cfs quota %q: %w", q, err)
		}
		return 0, false, nil
	}
	return quotaCPUs(q, strings.TrimSpace(period))
}

// quotaCPUs returns ceil(quota/period), at least 1.
func quotaCPUs(quota, period string) (int, bool, error) {
	q, err := strconv.ParseUint(quota, 10, 63)
	if err != nil {
		return 0, false, fmt.Errorf("parse cpu quota %q: %w", quota, err)
	}
	p, err := strconv.ParseUint(period, 10, 63)
	if err != nil {
		return 0, false, fmt.Errorf("parse cpu period %q: %w", period, err)
	}
	if p == 0 {
		return 0, false, errors.New("cpu period is zero")
	}
	n := q / p
	if q%p != 0 {
		n++
	}
	return int(max(n, 1)), true, nil
}

// cgroupQuota returns the CPU quota, rounded up, of the cgroup that procCgroup
// (the contents of /proc/self/cgroup) names, with root being where cgroup
// hierarchies are mounted (/sys/fs/cgroup). The cpu controller of a v1
// hierarchy, when mounted, wins over v2, as on hybrid systems. ok is false when there is no
// limit or it cannot be read.
func cgroupQuota(root string, procCgroup io.Reader) (n int, ok bool) {
	ref, err := parseProcCgroup(procCgroup)
	if err != nil {
		return 0, false
	}
	if ref.hasV1 {
		for _, dir := range []string{ref.v1Controllers, "cpu"} {
			base := filepath.Join(root, dir)
			if _, err := os.Stat(base); err == nil {
				return walkQuota(base, ref.v1Path, readV1)
			}
		}
	}
	if ref.hasV2 {
		return walkQuota(root, ref.v2Path, readV2)
	}
	return 0, false
}

// walkQuota returns the tightest quota read from the directory of cgPath
// under base and those of all its ancestors. Directories that are missing or
// unreadable are skipped, so a container's own cgroup mounted at base is
// found even when cgPath is a path of the host's hierarchy.
func walkQuota(base, cgPath string, read func(dir string) (int, bool, error)) (int, bool) {
	best, found := 0, false
	for p := path.Clean("/" + cgPath); ; p = path.Dir(p) {
		n, ok, err := read(filepath.Join(base, filepath.FromSlash(p)))
		if err == nil && ok && (!found || n < best) {
			best, found = n, true
		}
		if p == "/" {
			return best, found
		}
	}
}

// readV2 reads the cpu.max file in dir.
func readV2(dir string) (int, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cpu.max"))
	if err != nil {
		return 0, false, fmt.Errorf("read cpu.max: %w", err)
	}
	return parseCPUMax(string(b))
}

// readV1 reads the cpu.cfs_quota_us and cpu.cfs_period_us files in dir.
func readV1(dir string) (int, bool, error) {
	q, err := os.ReadFile(filepath.Join(dir, "cpu.cfs_quota_us"))
	if err != nil {
		return 0, false, fmt.Errorf("read cfs quota: %w", err)
	}
	p, err := os.ReadFile(filepath.Join(dir, "cpu.cfs_period_us"))
	if err != nil {
		return 0, false, fmt.Errorf("read cfs period: %w", err)
	}
	return parseCgroupV1(string(q), string(p))
}
