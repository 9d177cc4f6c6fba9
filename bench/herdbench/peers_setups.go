package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// peerWorkers is how many workers every clustered setup runs.
const peerWorkers = 4

// peer is one way of serving the same app: herd or what users would pick
// instead.
type peer struct {
	name  string // "node: herd"
	group string // node, python, go: ratios compare within a group
	herd  bool
	// start runs the setup on port; leak makes the app keep memory per
	// request, for the memory-recycle phase.
	start func(e *env, port int, leak bool) (*peerProc, error)
	// roll starts one rolling restart; nil when the setup has none.
	roll func(p *peerProc) error
	// kills: its workers may be killed (a single process may not).
	kills bool
	// recycles: it replaces a worker past a memory limit.
	recycles bool
}

// peerProc is a running setup.
type peerProc struct {
	cmd   *exec.Cmd
	super func() int // the supervisor's pid, whose children are the workers
	stop  func() error
	log   string
}

// workers returns the pids of the supervisor's children, leaving out
// herd's keeper.
func (p *peerProc) workers() []int {
	sup := p.super()
	var pids []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", sup))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if pid > 0 && !strings.Contains(string(cl), "herd-keeper") {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// peersDir is bench/peers of the repository: the apps' sources.
func peersDir() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", errors.New("run herdbench inside the herd repository")
	}
	return filepath.Join(filepath.Dir(gomod), "bench", "peers"), nil
}

// startPeerCmd starts name with args in a process group of its own, its
// output to a log file, and waits until port answers.
func startPeerCmd(e *env, label string, port int, extraEnv []string, name string, args ...string) (*peerProc, error) {
	logPath := filepath.Join(e.tmp, strings.NewReplacer(" ", "-", ":", "", "(", "", ")", "").Replace(label)+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p := &peerProc{cmd: cmd, log: logPath, super: func() int { return cmd.Process.Pid }}
	p.stop = func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			return nil
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			return fmt.Errorf("%s did not stop within 15s after SIGTERM", label)
		}
	}
	if err := waitHTTP(port, exited, 30*time.Second); err != nil {
		_ = p.stop()
		b, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("%s: %w\n%s", label, err, tail(string(b), 2000))
	}
	return p, nil
}

// waitHTTP waits until GET / on port answers 200, or exited closes.
func waitHTTP(port int, exited <-chan struct{}, limit time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("exited before it served")
		default:
		}
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no answer on port %d within %s", port, limit)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// herdRunArgs are the herd run flags every command setup under herd
// shares: peerWorkers workers, quick respawns that are not given up on
// when the benchmark kills workers on purpose, and readiness after
// readyDelay.
func herdRunArgs(port int, readyDelay string, leak bool) []string {
	a := []string{"run", "--name", fmt.Sprintf("peers%d", port), "--workers", fmt.Sprint(peerWorkers),
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--startup-delay", "0", "--ready-delay", readyDelay,
		"--respawn-delay", "1ms", "--max-crashes", "1000", "--control", "-", "--shutdown-timeout", "10s"}
	if leak {
		a = append(a, "--memory-limit", "96MiB", "--memory-check-interval", "1s", "--env", "LEAK=1")
	}
	return a
}

func signalSuper(sig syscall.Signal) func(p *peerProc) error {
	return func(p *peerProc) error { return syscall.Kill(p.super(), sig) }
}

// peerSetups lists the setups, grouped by app.
func peerSetups(dir string) []peer {
	app := filepath.Join(dir, "app.js")
	nodeCluster := func(policy string) func(e *env, port int, leak bool) (*peerProc, error) {
		return func(e *env, port int, leak bool) (*peerProc, error) {
			env := []string{"PORT=" + fmt.Sprint(port), "WORKERS=" + fmt.Sprint(peerWorkers), "NODE_CLUSTER_SCHED_POLICY=" + policy}
			if leak {
				env = append(env, "LEAK=1")
			}
			return startPeerCmd(e, "node cluster "+policy, port, env, "node", filepath.Join(dir, "cluster.js"))
		}
	}
	return []peer{
		{name: "node: herd run", group: "node", herd: true, kills: true, recycles: true, roll: signalSuper(syscall.SIGUSR2),
			start: func(e *env, port int, leak bool) (*peerProc, error) {
				args := append(herdRunArgs(port, "300ms", leak), "--", "node", app)
				return startPeerCmd(e, "node herd", port, nil, e.herdBin, args...)
			}},
		{name: "node: herd run --balance reuseport", group: "node", kills: true, recycles: true, roll: signalSuper(syscall.SIGUSR2),
			start: func(e *env, port int, leak bool) (*peerProc, error) {
				args := append(herdRunArgs(port, "300ms", leak), "--balance", "reuseport", "--", "node", app)
				return startPeerCmd(e, "node herd reuseport", port, nil, e.herdBin, args...)
			}},
		{name: "node: cluster module, rr", group: "node", kills: true, roll: signalSuper(syscall.SIGUSR2), start: nodeCluster("rr")},
		{name: "node: cluster module, none", group: "node", kills: true, roll: signalSuper(syscall.SIGUSR2), start: nodeCluster("none")},
		{name: "node: PM2 cluster mode", group: "node", kills: true, recycles: true, roll: pm2Reload, start: startPM2(dir)},
		{name: "python ASGI: herd run + uvicorn", group: "python", herd: true, kills: true, recycles: true, roll: signalSuper(syscall.SIGUSR2),
			start: func(e *env, port int, leak bool) (*peerProc, error) {
				args := append(herdRunArgs(port, "1s", leak), "--dir", dir, "--", pythonWithUvicorn, "serve_asgi.py")
				return startPeerCmd(e, "python herd", port, nil, e.herdBin, args...)
			}},
		{name: "python ASGI: gunicorn -k uvicorn", group: "python", kills: true, roll: signalSuper(syscall.SIGHUP),
			start: func(e *env, port int, leak bool) (*peerProc, error) {
				var env []string
				if leak {
					env = append(env, "LEAK=1")
				}
				return startPeerCmd(e, "python gunicorn", port, env, "gunicorn", "-w", fmt.Sprint(peerWorkers),
					"-k", "uvicorn.workers.UvicornWorker", "-b", fmt.Sprintf("127.0.0.1:%d", port), "--chdir", dir,
					"--graceful-timeout", "10", "--log-level", "warning", "app:app")
			}},
		{name: "go: herd library", group: "go", herd: true, kills: true, recycles: true, roll: signalSuper(syscall.SIGUSR2),
			start: func(e *env, port int, leak bool) (*peerProc, error) {
				args := []string{"serve", "-mode", "herd", "-workers", fmt.Sprint(peerWorkers), "-listen", fmt.Sprintf("127.0.0.1:%d", port),
					"-respawn-delay", "1ms", "-max-crashes", "1000", "-name", fmt.Sprintf("peers%d", port)}
				if leak {
					args = append(args[:2:2], "leak", "-memory-limit-mib", "96", "-memory-check", "1s")
					args = append(args, "-workers", fmt.Sprint(peerWorkers), "-listen", fmt.Sprintf("127.0.0.1:%d", port), "-name", fmt.Sprintf("peers%d", port))
				}
				return startPeerCmd(e, "go herd", port, nil, e.selfBin, args...)
			}},
		{name: "go: one process", group: "go",
			start: func(e *env, port int, _ bool) (*peerProc, error) {
				return startPeerCmd(e, "go plain", port, nil, e.selfBin, "serve", "-mode", "plain", "-listen", fmt.Sprintf("127.0.0.1:%d", port))
			}},
	}
}

// pm2Home is PM2's state directory, inside the benchmark's scratch space.
func pm2Home(e *env) string { return filepath.Join(e.tmp, "pm2") }

// pm2Bin is the pm2 installed in bench/peers/node_modules.
func pm2Bin(dir string) string { return filepath.Join(dir, "node_modules", ".bin", "pm2") }

// startPM2 runs app.js in PM2's cluster mode, with as quick and as
// persistent a respawn as herd's setups get.
func startPM2(dir string) func(e *env, port int, leak bool) (*peerProc, error) {
	return func(e *env, port int, leak bool) (*peerProc, error) {
		env := []string{"PM2_HOME=" + pm2Home(e), "PORT=" + fmt.Sprint(port), "PM2_WORKER_INTERVAL=1000"}
		args := []string{"start", filepath.Join(dir, "app.js"), "--name", "peers", "-i", fmt.Sprint(peerWorkers),
			"--max-restarts", "1000", "--kill-timeout", "10000"}
		if leak {
			env = append(env, "LEAK=1")
			args = append(args, "--max-memory-restart", "96M")
		}
		cmd := exec.Command(pm2Bin(dir), args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		pidOf := func() int {
			b, _ := os.ReadFile(filepath.Join(pm2Home(e), "pm2.pid"))
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return pid
		}
		p := &peerProc{super: pidOf, log: filepath.Join(pm2Home(e), "pm2.log")}
		p.stop = func() error {
			cmd := exec.Command(pm2Bin(dir), "kill")
			cmd.Env = append(os.Environ(), "PM2_HOME="+pm2Home(e))
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("pm2 kill: %v\n%s", err, out)
			}
			return nil
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("pm2 start: %v\n%s", err, tail(string(out), 500)), p.stop())
		}
		if err := waitHTTP(port, nil, 30*time.Second); err != nil {
			return nil, errors.Join(err, p.stop())
		}
		return p, nil
	}
}

// pm2Reload starts PM2's rolling restart.
func pm2Reload(p *peerProc) error {
	dir, err := peersDir()
	if err != nil {
		return err
	}
	home := filepath.Dir(p.log)
	cmd := exec.Command(pm2Bin(dir), "reload", "peers")
	cmd.Env = append(os.Environ(), "PM2_HOME="+home)
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }() // it runs while the load does
	return nil
}

// ensurePM2 installs pm2 into bench/peers/node_modules when missing.
func ensurePM2(ctx context.Context, dir string) error {
	if _, err := os.Stat(pm2Bin(dir)); err == nil {
		return nil
	}
	logf("installing pm2 into %s", dir)
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--no-save", "--prefix", dir, "pm2@5")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm install pm2: %v\n%s", err, out)
	}
	return nil
}

// pythonWithUvicorn is the Python of Debian's python3-uvicorn and gunicorn
// packages, which an interpreter earlier in PATH may not see.
const pythonWithUvicorn = "/usr/bin/python3"
