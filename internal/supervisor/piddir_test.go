package supervisor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWritePIDFileNoFollow plants symbolic links where the pid file and
// its temporary file go, as another user could in a shared directory, and
// checks that WritePIDFile writes through neither.
func TestWritePIDFileNoFollow(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "primary.pid")
	for _, link := range []string{path, path + ".tmp"} {
		if err := os.Symlink(victim, link); err != nil {
			t.Fatal(err)
		}
	}
	if err := WritePIDFile(path, 4242); err != nil {
		t.Fatalf("WritePIDFile: %v", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("the link's target was written: %q", b)
	}
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("%s after WritePIDFile: %v, %v; want a regular file", path, fi, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "4242\n" {
		t.Errorf("pid file holds %q; want 4242", b)
	}
	left, _ := filepath.Glob(path + ".tmp-*")
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestCheckPIDDir checks which directories may hold pid files.
func TestCheckPIDDir(t *testing.T) {
	mk := func(mode os.FileMode) string {
		d := filepath.Join(t.TempDir(), "pids")
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tc := range []struct {
		name string
		mode os.FileMode
		want string // "" for accepted
	}{
		{"private", 0o755, ""},
		{"world-writable", 0o777, "writable by group or others"},
		{"group-writable", 0o775, "writable by group or others"},
		{"sticky and ours", 0o777 | os.ModeSticky, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPIDDir(mk(tc.mode))
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("CheckPIDDir(%v) = %v; want %q", tc.mode, err, tc.want)
			}
		})
	}
	t.Run("another user's", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("giving a directory to another user needs root")
		}
		d := mk(0o777 | os.ModeSticky)
		if err := os.Chown(d, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if err := CheckPIDDir(d); err == nil || !strings.Contains(err.Error(), "uid 65534") {
			t.Errorf("CheckPIDDir of uid 65534's directory = %v; want refused", err)
		}
		link := filepath.Join(t.TempDir(), "link")
		if err := os.Symlink(mk(0o755), link); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(link, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if err := CheckPIDDir(link); err == nil {
			t.Errorf("CheckPIDDir of uid 65534's link: nil; want refused")
		}
	})
	if err := CheckPIDDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("CheckPIDDir of a missing directory: nil; want an error")
	}
}
