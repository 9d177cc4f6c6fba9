package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/herd-cluster/herd/internal/shim"
)

// benchShim times the exec shim of command workers: /bin/true started
// directly, through the shell shim herd uses, and through the herd
// executable (the shim where the system has no shell). Each start is a
// fork, the exec chain and the wait for the exit; the three ways take
// turns, so load changes hit them alike.
func benchShim(ctx context.Context, e *env) ([]row, error) {
	pid := "HERD_PRIMARY_PID=" + strconv.Itoa(os.Getpid())
	shPath, shArgs, _ := shim.Command([]string{"/bin/true"}, e.herdBin)
	ways := []struct {
		name string
		path string
		args []string
		env  []string
	}{
		{"/bin/true, no shim", "/bin/true", []string{"true"}, nil},
		{"through " + shPath + " (herd's shim)", shPath, shArgs, []string{pid, "LISTEN_FDS=1"}},
		{"through the herd executable (HERD_SHIM=1)", e.herdBin, []string{e.herdBin, "/bin/true"}, []string{pid, "LISTEN_FDS=1", "HERD_SHIM=1"}},
	}
	wall := make([][]time.Duration, len(ways))
	cpu := make([]time.Duration, len(ways))
	for i := 0; i < e.o.shimRuns && ctx.Err() == nil; i++ {
		for j, w := range ways {
			cmd := exec.Command(w.path)
			cmd.Args, cmd.Env = w.args, append(os.Environ(), w.env...)
			t := time.Now()
			if err := cmd.Run(); err != nil {
				return nil, fmt.Errorf("%s: %w", w.name, err)
			}
			wall[j] = append(wall[j], time.Since(t))
			ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			cpu[j] += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	var rows []row
	for j, w := range ways {
		n := time.Duration(max(len(wall[j]), 1))
		rows = append(rows, row{"15 exec shim", w.name + ": start to exit, p50 / p90; CPU per start",
			fmt.Sprintf("%s / %s; %s", ms(pct(wall[j], .5)), ms(pct(wall[j], .9)), ms(cpu[j]/n)), "", ""})
	}
	return rows, ctx.Err()
}
