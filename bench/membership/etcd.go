package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/herd-cluster/herd/membership/etcdtest"
)

// serveEnv makes this program, re-executed, serve an embedded etcd with
// its data under the variable's value: it prints the endpoints on a line
// and serves until its stdin closes. etcd runs in a process of its own so
// that the instances' CPU time is the benchmark process's alone.
const serveEnv = "MEMBERSHIP_BENCH_SERVE_ETCD"

// serveEtcd is the re-executed program: it never returns.
func serveEtcd(dir string) {
	e, err := etcdtest.Start(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "membership bench: etcd:", err)
		os.Exit(1)
	}
	fmt.Println(strings.Join(e.Endpoints(), ","))
	io.Copy(io.Discard, os.Stdin) // until the parent goes
	e.Close()
	os.Exit(0)
}

// etcdProc is etcd running in a child process.
type etcdProc struct {
	cmd       *exec.Cmd
	stdin     io.Closer
	endpoints []string
}

// startEtcd runs this program again as an embedded etcd with its data
// under dir, or, with bin set, the etcd binary (as etcdtest runs it).
func startEtcd(dir, bin string) (*etcdProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), serveEnv+"="+dir)
	if bin != "" {
		cmd.Env = append(cmd.Env, etcdtest.BinaryEnv+"="+bin)
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &etcdProc{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("etcd child: %w", err)
	}
	p.endpoints = strings.Split(strings.TrimSpace(line), ",")
	return p, nil
}

// stop ends the child and reaps it.
func (p *etcdProc) stop() {
	p.stdin.Close()
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// cpu returns the CPU time the child (etcd, and the etcd binary it may
// run in turn) has used so far, from /proc.
func (p *etcdProc) cpu() (time.Duration, error) {
	return procCPU(p.cmd.Process.Pid)
}

// procCPU returns the user and system time of pid and of its children,
// living or reaped, from /proc/PID/stat and its children's.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(s[i+2:])
	var ticks int64
	for _, k := range []int{11, 12, 13, 14} { // utime stime cutime cstime
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += v
	}
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	total := time.Duration(ticks) * time.Second / 100 // USER_HZ
	for _, c := range strings.Fields(string(kids)) {
		if n, err := strconv.Atoi(c); err == nil {
			if d, err := procCPU(n); err == nil {
				total += d
			}
		}
	}
	return total, nil
}

// selfCPU returns the CPU time this process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
