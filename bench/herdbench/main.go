// Command herdbench measures herd on this machine: HTTP throughput against a
// plain Go server, how evenly connections spread over workers, rolling
// restarts under load, the time from kill -9 to a ready replacement, the
// cost of an idle primary, the control API (GET /stats, GET /events),
// heartbeats, memory-limit recycling and delegation. It prints one results
// table; BENCHMARKS.md records a run.
//
//	go run ./bench/herdbench                  # everything, about 8 minutes
//	go run ./bench/herdbench -only rollout    # one measurement
//
// Run it from the repository: it builds ./cmd/herd unless -herd names a
// binary. "herdbench serve" is the tiny HTTP server it measures (herd
// library or plain net/http), started by herdbench itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// opts holds the command line.
type opts struct {
	only    string
	herdBin string

	tputDur    time.Duration
	tputRounds int
	tputConns  int

	distConns int

	rolloutWorkers int
	rollouts       int
	rolloutConns   int
	rolloutRate    float64
	steady         time.Duration

	killClusters int
	killWorkers  int

	idleWorkers int
	idleWindow  time.Duration
	idleListen  bool

	statsWorkers int
	statsReqs    int
	statsConc    int
	statsLimit   time.Duration

	eventsClients int
	eventsWorkers int
	eventsRounds  int

	hbWorkers int
	hbWindow  time.Duration

	memWorkers  int
	memLimitMiB uint64
	memCheck    time.Duration
	memLeak     int
	memConns    int
	memRate     float64
	memDur      time.Duration

	delegDur time.Duration

	scaleSizes  string
	scaleWindow time.Duration

	peersRounds int
	peersDur    time.Duration
	peersConns  int
	peersOnly   string

	shimRuns int
}

// scenarios lists the measurements in the order they run.
var scenarios = []struct {
	name string
	run  func(context.Context, *env) ([]row, error)
}{
	{"throughput", benchThroughput},
	{"distribution", benchDistribution},
	{"rollout", benchRollout},
	{"respawn", benchRespawn},
	{"idle", benchIdle},
	{"crashgap", benchCrashGap},
	{"scaledown", benchScaleDown},
	{"stats", benchStats},
	{"events", benchEvents},
	{"heartbeat", benchHeartbeat},
	{"memrecycle", benchMemRecycle},
	{"delegate", benchDelegate},
	{"trees", benchTrees},
	{"scale", benchScale},
	{"peers", benchPeers},
	{"shim", benchShim},
}

// env is what every scenario gets: the options, the herd binary, this
// binary (for "serve") and a scratch directory.
type env struct {
	o       *opts
	herdBin string
	selfBin string
	tmp     string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := serveMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "herdbench serve:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(benchMain(os.Args[1:]))
}

func parseOpts(args []string) (*opts, error) {
	o := &opts{}
	fs := flag.NewFlagSet("herdbench", flag.ContinueOnError)
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
	}
	fs.StringVar(&o.only, "only", "", "comma-separated measurements to run: "+strings.Join(names, ","))
	fs.StringVar(&o.herdBin, "herd", "", "herd binary to use (default: go build ./cmd/herd)")
	fs.StringVar(&keepLogs, "keep-logs", "", "directory to keep the stderr of every process started in")
	fs.DurationVar(&o.tputDur, "tput-dur", 10*time.Second, "throughput: length of each measured run")
	fs.IntVar(&o.tputRounds, "tput-rounds", 3, "throughput: interleaved rounds over plain, shared, reuseport")
	fs.IntVar(&o.tputConns, "tput-conns", 32, "throughput: keep-alive connections")
	fs.IntVar(&o.distConns, "dist-conns", 4000, "distribution: short connections per balance mode")
	fs.IntVar(&o.rolloutWorkers, "rollout-workers", 2, "rollout: workers")
	fs.IntVar(&o.rollouts, "rollouts", 10, "rollout: rolling restarts per balance mode")
	fs.IntVar(&o.rolloutConns, "rollout-conns", 16, "rollout: keep-alive connections")
	fs.Float64Var(&o.rolloutRate, "rollout-rate", 2000, "rollout: total requests/s of the paced load")
	fs.DurationVar(&o.steady, "steady", 6*time.Second, "rollout: steady-state load before and after the rollouts")
	fs.IntVar(&o.killClusters, "kill-clusters", 5, "respawn: fresh clusters per respawn delay")
	fs.IntVar(&o.killWorkers, "kill-workers", 10, "respawn: workers per cluster, each killed once")
	fs.IntVar(&o.idleWorkers, "idle-workers", 64, "idle: workers")
	fs.DurationVar(&o.idleWindow, "idle-window", 30*time.Second, "idle: CPU sampling window")
	fs.BoolVar(&o.idleListen, "idle-listen", false, "idle: give the cluster a TCP listener, whose accept queue herd watches")
	fs.IntVar(&o.statsWorkers, "stats-workers", 64, "stats: workers")
	fs.IntVar(&o.statsReqs, "stats-reqs", 2000, "stats: GET /stats requests per phase (1 client, then all clients)")
	fs.IntVar(&o.statsConc, "stats-conc", 8, "stats: concurrent clients of the second phase")
	fs.DurationVar(&o.statsLimit, "stats-limit", 30*time.Second, "stats: time limit of each phase")
	fs.IntVar(&o.eventsClients, "events-clients", 100, "events: GET /events clients on the busy cluster")
	fs.IntVar(&o.eventsWorkers, "events-workers", 16, "events: workers per cluster, each killed once per round")
	fs.IntVar(&o.eventsRounds, "events-rounds", 8, "events: rounds, each with two fresh clusters")
	fs.IntVar(&o.hbWorkers, "hb-workers", 256, "heartbeat: Go workers per cluster")
	fs.DurationVar(&o.hbWindow, "hb-window", 30*time.Second, "heartbeat: CPU sampling window")
	fs.IntVar(&o.memWorkers, "mem-workers", 2, "memrecycle: workers")
	fs.Uint64Var(&o.memLimitMiB, "mem-limit-mib", 64, "memrecycle: Config.MemoryLimit in MiB")
	fs.DurationVar(&o.memCheck, "mem-check", time.Second, "memrecycle: Config.MemoryCheckInterval")
	fs.IntVar(&o.memLeak, "mem-leak", 16<<10, "memrecycle: bytes leaked per request")
	fs.IntVar(&o.memConns, "mem-conns", 8, "memrecycle: keep-alive connections")
	fs.Float64Var(&o.memRate, "mem-rate", 2000, "memrecycle: total requests/s")
	fs.DurationVar(&o.memDur, "mem-dur", 15*time.Second, "memrecycle: length of the load")
	fs.DurationVar(&o.delegDur, "deleg-dur", 5*time.Second, "delegate: length of each cluster's loop")
	fs.StringVar(&o.scaleSizes, "scale-sizes", "64,256,1024", "scale: comma-separated worker counts, one cluster each")
	fs.DurationVar(&o.scaleWindow, "scale-window", 10*time.Second, "scale: idle CPU sampling window")
	fs.IntVar(&o.peersRounds, "peers-rounds", 2, "peers: interleaved throughput rounds")
	fs.DurationVar(&o.peersDur, "peers-dur", 10*time.Second, "peers: length of each throughput run")
	fs.IntVar(&o.peersConns, "peers-conns", 32, "peers: wrk connections")
	fs.StringVar(&o.peersOnly, "peers-only", "", "peers: comma-separated groups to run (node, python, go; default all)")
	fs.IntVar(&o.shimRuns, "shim-runs", 300, "shim: starts of each kind")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for _, n := range strings.Split(o.only, ",") {
		if n != "" && !contains(names, n) {
			return nil, fmt.Errorf("-only: unknown measurement %q (have %s)", n, strings.Join(names, ", "))
		}
	}
	return o, nil
}

func benchMain(args []string) int {
	o, err := parseOpts(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "herdbench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	e, cleanup, err := newEnv(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "herdbench:", err)
		return 1
	}
	defer cleanup()
	printMachine()
	var rows []row
	failed := false
	for _, s := range scenarios {
		if o.only != "" && !contains(strings.Split(o.only, ","), s.name) {
			continue
		}
		load := loadAvg()
		logf("== %s (load average %s)", s.name, load)
		start := time.Now()
		r, err := s.run(ctx, e)
		rows = append(rows, r...)
		rows = append(rows, row{s.name, "1-min load average before / after (this benchmark's own processes included)",
			load + " / " + loadAvg(), "", ""})
		if err != nil {
			failed = true
			logf("%s: FAILED: %v", s.name, err)
			rows = append(rows, row{s.name, "error", err.Error(), "", "ERROR"})
		}
		logf("%s took %s", s.name, time.Since(start).Round(time.Second))
		if ctx.Err() != nil {
			break
		}
	}
	printTable(rows)
	if failed || ctx.Err() != nil {
		return 1
	}
	return 0
}

func newEnv(o *opts) (*env, func(), error) {
	tmp, err := os.MkdirTemp("", "herdbench-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	self, err := os.Executable()
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	e := &env{o: o, herdBin: o.herdBin, selfBin: self, tmp: tmp}
	if e.herdBin == "" {
		if e.herdBin, err = buildHerd(tmp); err != nil {
			cleanup()
			return nil, nil, err
		}
	}
	return e, cleanup, nil
}

// row is one line of the results table.
type row struct {
	section, metric, value, target, verdict string
}

func printTable(rows []row) {
	fmt.Println()
	fmt.Println("| measurement | metric | value | target | met |")
	fmt.Println("|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s | %s | %s |\n", r.section, r.metric, r.value, r.target, r.verdict)
	}
}

func printMachine() {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	migrate, _ := os.ReadFile("/proc/sys/net/ipv4/tcp_migrate_req")
	logf("machine: nproc=%d cpu=%q kernel=%s go=%s tcp_migrate_req=%s", runtime.NumCPU(), model,
		strings.TrimSpace(string(kernel)), runtime.Version(), strings.TrimSpace(string(migrate)))
}

// loadAvg returns the 1-minute load average of the machine.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// logf prints a progress line on stderr with the time of day.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
