package cpus

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseCPUMax(t *testing.T) {
	tests := []struct {
		in      string
		n       int
		ok      bool
		wantErr bool
	}{
		{"150000 100000", 2, true, false},
		{"150000 100000\n", 2, true, false},
		{"200000 100000", 2, true, false},
		{"50000 100000", 1, true, false},
		{"1000 100000", 1, true, false},
		{"400000 50000", 8, true, false},
		{"max 100000", 0, false, false},
		{"max\n", 0, false, false},
		{"", 0, false, true},
		{"100000", 0, false, true},
		{"x 100000", 0, false, true},
		{"-1 100000", 0, false, true},
		{"100000 0", 0, false, true},
		{"100000 y", 0, false, true},
		{"1 2 3", 0, false, true},
	}
	for _, tt := range tests {
		n, ok, err := parseCPUMax(tt.in)
		if n != tt.n || ok != tt.ok || (err != nil) != tt.wantErr {
			t.Errorf("parseCPUMax(%q) = %d, %v, %v; want %d, %v, error %v", tt.in, n, ok, err, tt.n, tt.ok, tt.wantErr)
		}
	}
}

func TestParseCgroupV1(t *testing.T) {
	tests := []struct {
		quota, period string
		n             int
		ok            bool
		wantErr       bool
	}{
		{"150000\n", "100000\n", 2, true, false},
		{"100000", "100000", 1, true, false},
		{"250000", "100000", 3, true, false},
		{"-1\n", "100000\n", 0, false, false},
		{"-x", "100000", 0, false, true},
		{"", "100000", 0, false, true},
		{"100000", "0", 0, false, true},
		{"100000", "", 0, false, true},
	}
	for _, tt := range tests {
		n, ok, err := parseCgroupV1(tt.quota, tt.period)
		if n != tt.n || ok != tt.ok || (err != nil) != tt.wantErr {
			t.Errorf("parseCgroupV1(%q, %q) = %d, %v, %v; want %d, %v, error %v",
				tt.quota, tt.period, n, ok, err, tt.n, tt.ok, tt.wantErr)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    cgroupRef
		wantErr bool
	}{
		{"v2", "0::/system.slice/herd.service\n",
			cgroupRef{v2Path: "/system.slice/herd.service", hasV2: true}, false},
		{"v1", "4:memory:/m\n3:cpu,cpuacct:/user.slice\n2:cpuset:/\n",
			cgroupRef{v1Path: "/user.slice", v1Controllers: "cpu,cpuacct", hasV1: true}, false},
		{"hybrid", "9:name=systemd:/\n2:cpuacct:/a\n1:cpu:/b\n0::/c\n",
			cgroupRef{v1Path: "/b", v1Controllers: "cpu", hasV1: true, v2Path: "/c", hasV2: true}, false},
		{"colon in path", "0::/a:b\n", cgroupRef{v2Path: "/a:b", hasV2: true}, false},
		{"empty", "", cgroupRef{}, false},
		{"malformed", "garbage\n", cgroupRef{}, true},
		{"relative path", "0::a\n", cgroupRef{}, true},
	}
	for _, tt := range tests {
		got, err := parseProcCgroup(strings.NewReader(tt.in))
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s: parseProcCgroup = %+v, %v; want %+v, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

// writeFiles creates files (path relative to root: contents) under root.
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCgroupQuota(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		proc  string
		n     int
		ok    bool
	}{
		{"v2 leaf", map[string]string{"cpu.max": "max 100000", "a/b/cpu.max": "250000 100000"}, "0::/a/b", 3, true},
		{"v2 parent tighter", map[string]string{"a/cpu.max": "100000 100000", "a/b/cpu.max": "max 100000"}, "0::/a/b", 1, true},
		{"v2 no limit", map[string]string{"cpu.max": "max 100000", "a/cpu.max": "max 100000"}, "0::/a", 0, false},
		{"v2 container root", map[string]string{"cpu.max": "300000 100000"}, "0::/docker/abc", 3, true},
		{"v2 no controller", map[string]string{"a/cgroup.procs": ""}, "0::/a", 0, false},
		{"v2 garbage", map[string]string{"a/cpu.max": "garbage"}, "0::/a", 0, false},
		{"v1", map[string]string{
			"cpu,cpuacct/x/cpu.cfs_quota_us": "400000", "cpu,cpuacct/x/cpu.cfs_period_us": "100000",
			"cpu,cpuacct/cpu.cfs_quota_us": "-1", "cpu,cpuacct/cpu.cfs_period_us": "100000",
		}, "3:cpu,cpuacct:/x\n0::/", 4, true},
		{"v1 cpu dir", map[string]string{
			"cpu/cpu.cfs_quota_us": "150000", "cpu/cpu.cfs_period_us": "100000",
		}, "3:cpuacct,cpu:/\n", 2, true},
		{"v1 unlimited", map[string]string{
			"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000",
		}, "1:cpu:/\n", 0, false},
		{"v1 not mounted falls back to v2", map[string]string{"cpu.max": "200000 100000"}, "1:cpu:/\n0::/", 2, true},
		{"malformed proc", map[string]string{"cpu.max": "200000 100000"}, "garbage", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeFiles(t, root, tt.files)
			n, ok := cgroupQuota(root, strings.NewReader(tt.proc))
			if n != tt.n || ok != tt.ok {
				t.Errorf("cgroupQuota = %d, %v; want %d, %v", n, ok, tt.n, tt.ok)
			}
		})
	}
}
