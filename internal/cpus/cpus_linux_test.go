package cpus

import (
	"runtime"
	"testing"
)

func TestLogicalPhysical(t *testing.T) {
	l, p := Logical(), Physical()
	t.Logf("Logical() = %d, Physical() = %d, runtime.NumCPU() = %d", l, p, runtime.NumCPU())
	if l < 1 || l > runtime.NumCPU() {
		t.Errorf("Logical() = %d, want 1..%d", l, runtime.NumCPU())
	}
	if p < 1 || p > l {
		t.Errorf("Physical() = %d, want 1..%d", p, l)
	}
}

func TestAffinity(t *testing.T) {
	cpus, err := affinity()
	if err != nil {
		t.Fatalf("affinity: %v", err)
	}
	if len(cpus) != runtime.NumCPU() {
		t.Errorf("affinity() has %d CPUs, runtime.NumCPU() = %d", len(cpus), runtime.NumCPU())
	}
}
