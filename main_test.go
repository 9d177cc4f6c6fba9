package herd_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/herd-cluster/herd"
)

// The test binary plays every program these tests need: the exec shim, Go
// workers (HERD_TEST_WORK), command workers (HERD_TEST_HELPER) and a
// primary in a process of its own (HERD_TEST_PRIMARY).
const (
	helperEnv  = "HERD_TEST_HELPER"
	workEnv    = "HERD_TEST_WORK"
	primaryEnv = "HERD_TEST_PRIMARY"
	outEnv     = "HERD_TEST_OUT" // a directory helpers write reports to
)

func TestMain(m *testing.M) {
	if err := herd.ExecShim(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(127)
	}
	if name := os.Getenv(helperEnv); name != "" {
		os.Exit(runHelper(name))
	}
	if name := os.Getenv(workEnv); name != "" && herd.IsWorker() {
		if err := herd.Run(context.Background(), herd.Config{Workers: 1}, works[name]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(primaryEnv) != "" {
		os.Exit(runPrimaryHelper())
	}
	os.Exit(m.Run())
}

// helpers are the command workers, chosen by HERD_TEST_HELPER.
var helpers = map[string]func() int{
	// systemd-app is a server written as any go-systemd user writes one.
	"systemd-app": func() int {
		env, inode := workerEnv(), fdInode(3) // Listeners unsets the one and closes the other
		ls, err := activation.Listeners()
		if err != nil || len(ls) == 0 {
			fmt.Fprintln(os.Stderr, "no sockets from activation.Listeners:", err)
			return 3
		}
		report(map[string]any{"env": env, "pid": os.Getpid(), "listeners": len(ls), "inode": inode})
		if ok, err := daemon.SdNotify(false, daemon.SdNotifyReady); !ok || err != nil {
			fmt.Fprintln(os.Stderr, "sd_notify failed:", ok, err)
			return 4
		}
		return serveUntilTerm(ls[0])
	},
	// shutdown-on-exit is systemd-app that, asked to stop, calls shutdown(2)
	// on its listening socket before it exits, as some servers do.
	"shutdown-on-exit": func() int {
		ls, err := activation.Listeners()
		if err != nil || len(ls) == 0 {
			fmt.Fprintln(os.Stderr, "no sockets from activation.Listeners:", err)
			return 3
		}
		report(map[string]any{"pid": os.Getpid()})
		if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
			return 4
		}
		// Like most servers, it goes on accepting after an error: the
		// shutdown by another worker makes accept fail (EINVAL) until
		// herd makes the socket listen again.
		go func() {
			h := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { fmt.Fprintf(rw, "%d\n", os.Getpid()) })
			for {
				_ = http.Serve(ls[0], h)
				time.Sleep(10 * time.Millisecond)
			}
		}()
		ch := make(chan os.Signal, 1)
		signalNotify(ch)
		for s := range ch {
			if s == syscall.SIGTERM {
				raw, _ := ls[0].(*net.TCPListener).SyscallConn()
				raw.Control(func(fd uintptr) { syscall.Shutdown(int(fd), syscall.SHUT_RD) })
				return 0
			}
		}
		return 0
	},
	// crash writes a line to stderr and exits 1 at once.
	"crash": func() int {
		fmt.Fprintln(os.Stderr, "crash helper: cannot open /nonexistent/config.yaml")
		return 1
	},
	// sleep never notifies; it stops on SIGTERM, or ignores it when
	// HERD_TEST_IGNORE_TERM is set.
	"sleep": func() int {
		ch := make(chan os.Signal, 1)
		signalNotify(ch)
		report(map[string]any{"pid": os.Getpid(), "env": workerEnv()})
		for s := range ch {
			if s == syscall.SIGTERM && os.Getenv("HERD_TEST_IGNORE_TERM") == "" {
				return 0
			}
			report(map[string]any{"pid": os.Getpid(), "signal": s.String()})
		}
		return 0
	},
	// chatty writes many lines, then a marker file, then waits for TERM.
	"chatty": func() int {
		line := strings.Repeat("x", 200)
		for i := range 50000 {
			fmt.Printf("line %d %s\n", i, line)
		}
		report(map[string]any{"pid": os.Getpid(), "done": true})
		ch := make(chan os.Signal, 1)
		signalNotify(ch)
		<-ch
		return 0
	},
}

func runHelper(name string) int {
	h, ok := helpers[name]
	if !ok {
		fmt.Fprintln(os.Stderr, "unknown helper", name)
		return 2
	}
	return h()
}

// works are the Go workers, chosen by HERD_TEST_WORK.
var works = map[string]herd.Work{
	"http": httpWork,
	"ipc":  ipcWork,
	// cluster reports its cluster-wide index at start, at every rebalance
	// and at every prepare.
	"cluster": func(ctx context.Context, w *herd.Worker) error {
		idx, total, epoch, ok := w.ClusterIndex()
		report(map[string]any{"pid": os.Getpid(), "slot": w.ID(), "index": idx, "total": total, "epoch": epoch, "ok": ok})
		w.OnRebalance(func(i, t int, e int64) {
			report(map[string]any{"pid": os.Getpid(), "slot": w.ID(), "index": i, "total": t, "epoch": e, "ok": true})
		})
		w.OnPrepare(func(ctx context.Context, i, t int, e int64) error {
			report(map[string]any{"pid": os.Getpid(), "slot": w.ID(), "prepare": i, "epoch": e})
			return nil
		})
		if err := w.Ready(); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	},
	// ecv serves the worker-side ECV handler; it fails validation while
	// HERD_TEST_OUT/sick exists.
	"ecv": func(ctx context.Context, w *herd.Worker) error {
		mux := http.NewServeMux()
		mux.Handle("/ecv", w.ECVHandler(func(*http.Request) error {
			if _, err := os.Stat(os.Getenv(outEnv) + "/sick"); err == nil {
				return errors.New("database unreachable")
			}
			return nil
		}))
		return w.ServeHTTP(ctx, mux)
	},
	// leak grows by 4 MiB every 20ms once ready, like a leaking server.
	"leak": func(ctx context.Context, w *herd.Worker) error {
		report(map[string]any{"pid": os.Getpid(), "slot": w.ID(), "gen": w.Generation()})
		if err := w.Ready(); err != nil {
			return err
		}
		var hoard [][]byte
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				b := make([]byte, 4<<20)
				for i := range b {
					b[i] = byte(i) // touch every page: RSS, not just address space
				}
				hoard = append(hoard, b)
			}
		}
	},
	// burn uses a whole core while HERD_TEST_OUT/burn exists.
	"burn": func(ctx context.Context, w *herd.Worker) error {
		if err := w.Ready(); err != nil {
			return err
		}
		flag := os.Getenv(outEnv) + "/burn"
		for ctx.Err() == nil {
			if _, err := os.Stat(flag); err != nil {
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
				continue
			}
			for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
			}
		}
		return nil
	},
	// fail-gen2 serves like http in generation 1 and exits before it is
	// ready in any later generation: a bad deploy.
	"fail-gen2": func(ctx context.Context, w *herd.Worker) error {
		if w.Generation() > 1 {
			return fmt.Errorf("generation %d refuses to start", w.Generation())
		}
		return httpWork(ctx, w)
	},
}

// ipcWork exercises the channel to the primary and reports what it got.
func ipcWork(ctx context.Context, w *herd.Worker) error {
	msgs, cancel, err := w.Subscribe("config")
	if err != nil {
		return err
	}
	defer cancel()
	r := map[string]any{"pid": os.Getpid(), "slot": w.ID()}
	if raw, err := w.Delegate(ctx, "double", 21); err != nil {
		r["double_err"] = err.Error()
	} else {
		r["double"] = string(raw)
	}
	_, err = w.Delegate(ctx, "missing", nil)
	r["missing_is_no_handler"] = errors.Is(err, herd.ErrNoHandler)
	tctx, tcancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = w.Delegate(tctx, "slow", nil)
	tcancel()
	r["slow_deadline"] = errors.Is(err, context.DeadlineExceeded)
	if st, err := w.ClusterStats(ctx); err == nil {
		r["stats_workers"] = st.Cluster.Workers
	}
	report(r)
	if err := w.Ready(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-msgs:
			report(map[string]any{"pid": os.Getpid(), "publish": string(m.Payload), "topic": m.Topic})
		}
	}
}

// httpWork serves "<slot> <pid> <generation>"; ?ms=N delays the answer.
func httpWork(ctx context.Context, w *herd.Worker) error {
	report(map[string]any{"pid": os.Getpid(), "slot": w.ID(), "gen": w.Generation(), "port": w.Port()})
	return w.ServeHTTP(ctx, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if ms, _ := strconv.Atoi(r.URL.Query().Get("ms")); ms > 0 {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		fmt.Fprintf(rw, "%d %d %d\n", w.ID(), os.Getpid(), w.Generation())
	}))
}

// report appends one JSON line to $HERD_TEST_OUT/<pid>.json.
func report(v map[string]any) {
	dir := os.Getenv(outEnv)
	if dir == "" {
		return
	}
	b, _ := json.Marshal(v)
	f, err := os.OpenFile(fmt.Sprintf("%s/%d.json", dir, os.Getpid()), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	f.Write(append(b, '\n'))
}

func workerEnv() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"HERD_WORKER_ID", "HERD_WORKER_COUNT", "HERD_GENERATION", "HERD_PRIMARY_PID",
		"HERD_PORT", "HERD_NAME", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID", "HERD_SHIM"} {
		if v, ok := os.LookupEnv(k); ok {
			m[k] = v
		}
	}
	return m
}

func fdInode(fd int) uint64 {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return 0
	}
	return st.Ino
}

// serveUntilTerm answers every connection with the pid, until SIGTERM.
func serveUntilTerm(l net.Listener) int {
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, "%d\n", os.Getpid())
	})}
	go srv.Serve(l)
	ch := make(chan os.Signal, 1)
	signalNotify(ch)
	for s := range ch {
		if s == syscall.SIGTERM {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			return 0
		}
	}
	return 0
}

// get fetches url and returns the body.
func get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("status %s", resp.Status)
	}
	return string(b), err
}

// signalNotify relays the signals the helpers watch.
func signalNotify(ch chan os.Signal) {
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGHUP)
}

// runPrimaryHelper runs a primary in a process of its own, configured by
// the JSON in HERD_TEST_PRIMARY, for tests that signal or kill it.
func runPrimaryHelper() int {
	var pc primaryConfig
	if err := json.Unmarshal([]byte(os.Getenv(primaryEnv)), &pc); err != nil {
		fmt.Fprintln(os.Stderr, "bad primary config:", err)
		return 2
	}
	os.Unsetenv(primaryEnv)
	control := pc.Control
	if control == "" {
		control = "-"
	}
	cfg := herd.Config{
		Control: control,
		Workers: pc.Workers, MaxWorkers: 8, Listen: pc.Listen, PIDDir: pc.PIDDir,
		Ready: herd.ReadyDelay, ReadyDelay: 10 * time.Millisecond, StartupDelay: -1,
		ShutdownTimeout: pc.ShutdownTimeout, Hup: herd.HupAction(pc.Hup),
		Env: []string{helperEnv + "=" + pc.Helper, outEnv + "=" + pc.Out},
	}
	if pc.IgnoreTerm {
		cfg.Env = append(cfg.Env, "HERD_TEST_IGNORE_TERM=1")
	}
	herd.SetGroupTreesOnly(pc.GroupTrees)
	if pc.Watchdog > 0 {
		cfg.Watchdog = pc.Watchdog
	}
	var work herd.Work
	if len(pc.Command) > 0 {
		cfg.Command = pc.Command
	} else if pc.Helper != "" {
		cfg.Command = []string{os.Args[0]}
	} else {
		cfg.Env = []string{workEnv + "=" + pc.Work, outEnv + "=" + pc.Out}
		cfg.Ready = herd.ReadyNotify
		work = works[pc.Work]
	}
	if err := herd.Run(context.Background(), cfg, work); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type primaryConfig struct {
	Control         string
	Workers         int
	Listen          []string
	PIDDir, Out     string
	Helper, Work    string
	Hup             string
	IgnoreTerm      bool
	ShutdownTimeout time.Duration
	// Command, when set, is the workers' command instead of a helper.
	Command []string
	// GroupTrees makes the primary follow its workers' trees by process
	// group even where it could make cgroups.
	GroupTrees bool
	Watchdog   time.Duration
}
