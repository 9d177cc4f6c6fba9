package supervisor

import (
	"fmt"
	"os"
	"syscall"
)

// CheckPIDDir refuses a pid directory in which another user could plant
// files or symbolic links that herd would then write through: one owned by
// a user other than herd's or root, or writable by group or others unless
// it is sticky and owned by herd's user (then no one else can remove or
// rename herd's files). A symbolic link to the directory must itself be
// herd's or root's.
func CheckPIDDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		if err := checkOwner(dir, fi); err != nil {
			return err
		}
		if fi, err = os.Stat(dir); err != nil {
			return err
		}
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if err := checkOwner(dir, fi); err != nil {
		return err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	perm := fi.Mode().Perm()
	mine := st != nil && int(st.Uid) == os.Geteuid()
	if perm&0o022 != 0 && !(fi.Mode()&os.ModeSticky != 0 && mine) {
		return fmt.Errorf("%s is writable by group or others (mode %04o): another user could plant links there; give a directory only herd's user can write, or a sticky one herd's user owns", dir, perm)
	}
	return nil
}

// checkOwner refuses a file owned by neither herd's user nor root.
func checkOwner(path string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := int(st.Uid); uid != os.Geteuid() && uid != 0 {
		return fmt.Errorf("%s belongs to uid %d, not to herd's user (uid %d) or root", path, uid, os.Geteuid())
	}
	return nil
}
