package cpus

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// countCores returns the number of distinct (physical_package_id, core_id)
// pairs among cpus, read from root/cpuN/topology, where root is normally
// /sys/devices/system/cpu.
func countCores(root string, cpus []int) (int, error) {
	cores := make(map[[2]string]struct{}, len(cpus))
	for _, cpu := range cpus {
		dir := filepath.Join(root, "cpu"+strconv.Itoa(cpu), "topology")
		pkg, err := readTrimmed(filepath.Join(dir, "physical_package_id"))
		if err != nil {
			return 0, err
		}
		core, err := readTrimmed(filepath.Join(dir, "core_id"))
		if err != nil {
			return 0, err
		}
		cores[[2]string{pkg, core}] = struct{}{}
	}
	return len(cores), nil
}

// readTrimmed returns the contents of a one-value sysfs file.
func readTrimmed(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("read cpu topology: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("read cpu topology: %s is empty", name)
	}
	return s, nil
}
