package cpus

import (
	"strconv"
	"testing"
)

func TestCountCores(t *testing.T) {
	root := t.TempDir()
	// Two packages; each core has two hyperthreads, and core ids repeat
	// across packages.
	topo := map[int][2]string{
		0: {"0", "0"}, 1: {"0", "1"}, 2: {"1", "0"}, 3: {"1", "1"},
		4: {"0", "0"}, 5: {"0", "1"}, 6: {"1", "0"}, 7: {"1", "1\n"},
	}
	files := map[string]string{}
	for cpu, pc := range topo {
		dir := "cpu" + strconv.Itoa(cpu) + "/topology/"
		files[dir+"physical_package_id"] = pc[0] + "\n"
		files[dir+"core_id"] = pc[1] + "\n"
	}
	files["cpu9/topology/physical_package_id"] = "0\n"
	files["cpu9/topology/core_id"] = "\n"
	writeFiles(t, root, files)

	tests := []struct {
		name    string
		cpus    []int
		want    int
		wantErr bool
	}{
		{"all", []int{0, 1, 2, 3, 4, 5, 6, 7}, 4, false},
		{"siblings", []int{0, 4}, 1, false},
		{"one package", []int{0, 1, 4, 5}, 2, false},
		{"same core id other package", []int{0, 2}, 2, false},
		{"none", nil, 0, false},
		{"missing cpu", []int{0, 8}, 0, true},
		{"empty file", []int{9}, 0, true},
	}
	for _, tt := range tests {
		got, err := countCores(root, tt.cpus)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s: countCores(%v) = %d, %v; want %d, error %v", tt.name, tt.cpus, got, err, tt.want, tt.wantErr)
		}
	}
}
