package main

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/herd-cluster/herd/internal/testkit"
	"github.com/herd-cluster/herd/membership/etcdtest"
)

// indexWorkerLog makes the test binary, run as a herd worker command, the
// index logger: it appends "start" to the file named by this variable
// with its pid, cluster index, total, epoch and CLOCK_MONOTONIC time, and
// "exit" the same way when SIGTERM stops it. It does not start with HERD_,
// which herd would refuse as an unknown variable.
const indexWorkerLog = "HERDCLI_TEST_INDEX_LOG"

func init() {
	if os.Getenv(indexWorkerLog) == "" || os.Getenv("HERD_WORKER_ID") == "" || os.Getenv("HERD_SHIM") != "" {
		return // the primary, or the exec shim on its way to the worker
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	logIndex("start")
	<-stop
	logIndex("exit")
	os.Exit(0)
}

// logIndex appends one line of the index logger, in one write.
func logIndex(what string) {
	f, err := os.OpenFile(os.Getenv(indexWorkerLog), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		os.Exit(3)
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %d %s %s %s %d\n", what, os.Getpid(), os.Getenv("HERD_CLUSTER_INDEX"),
		os.Getenv("HERD_CLUSTER_TOTAL"), os.Getenv("HERD_CLUSTER_EPOCH"), monotonic())
}

// monotonic returns CLOCK_MONOTONIC in nanoseconds, one clock for every
// process on the machine.
func monotonic() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}

// holding is one worker's hold on its index, from its start until its
// exit: its own "exit" line, or when the test saw it gone (killed).
type holding struct {
	node         string
	pid          int
	index, total int
	epoch        int64
	from, to     int64 // to is 0 while it runs
}

// herdNode is one `herd run` primary of the acceptance test.
type herdNode struct {
	name   string
	log    string
	stderr *testkit.Buffer
	cmd    interface{ Wait() error }
	proc   *os.Process
	exited chan struct{}
}

// nodeCluster is the test's etcd and its herd run nodes.
type nodeCluster struct {
	t        *testing.T
	registry string
	key      string
	dir      string
	nodes    []*herdNode

	mu    sync.Mutex
	gone  map[int]int64 // pid → when the test saw it gone
	holds map[int]*holding
}

// start starts a herd run node with workers command workers.
func (c *nodeCluster) start(name string, workers int) *herdNode {
	c.t.Helper()
	n := &herdNode{name: name, log: filepath.Join(c.dir, name+".log"), stderr: &testkit.Buffer{}, exited: make(chan struct{})}
	cmd := herdCmd([]string{indexWorkerLog + "=" + n.log}, "run", "--name", name, "--control", "-",
		"--registry", c.registry, "--cluster-key", c.key, "--instance-id", name, "--cluster-ttl", "2s",
		"--workers", strconv.Itoa(workers), "--ready-delay", "100ms", "--startup-delay", "0s",
		"--shutdown-timeout", "5s", "--", os.Args[0])
	cmd.Stdout, cmd.Stderr = n.stderr, n.stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	n.cmd, n.proc = cmd, cmd.Process
	go func() { cmd.Wait(); close(n.exited) }()
	c.t.Cleanup(func() {
		n.proc.Kill()
		<-n.exited
	})
	c.nodes = append(c.nodes, n)
	return n
}

// read reads every node's log into c.holds; workers whose process is gone
// without an exit line end when the test first saw them gone.
func (c *nodeCluster) read() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		f, err := os.Open(n.log)
		if err != nil {
			continue // no worker started yet
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var what string
			var h holding
			var mono int64
			if _, err := fmt.Sscanf(sc.Text(), "%s %d %d %d %d %d", &what, &h.pid, &h.index, &h.total, &h.epoch, &mono); err != nil {
				c.t.Fatalf("%s: bad line %q: %v", n.log, sc.Text(), err)
			}
			switch {
			case what == "start" && c.holds[h.pid] == nil:
				h.node, h.from = n.name, mono
				c.holds[h.pid] = &h
			case what == "exit" && c.holds[h.pid] != nil:
				c.holds[h.pid].to = mono
			}
		}
		f.Close()
	}
	for pid, h := range c.holds {
		if h.to != 0 {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			if c.gone[pid] == 0 {
				c.gone[pid] = monotonic()
			}
			h.to = c.gone[pid]
		}
	}
}

// live returns the workers running now, by index.
func (c *nodeCluster) live() []*holding {
	c.read()
	c.mu.Lock()
	defer c.mu.Unlock()
	var ls []*holding
	for _, h := range c.holds {
		if h.to == 0 {
			ls = append(ls, h)
		}
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].index < ls[j].index })
	return ls
}

// settled waits until the live workers hold 0..total-1, each once, in one
// view of that total and one epoch, and returns the epoch.
func (c *nodeCluster) settled(total int, what string) int64 {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ls := c.live()
		ok := len(ls) == total
		for i, h := range ls {
			ok = ok && h.index == i && h.total == total && h.epoch == ls[0].epoch
		}
		if ok {
			return ls[0].epoch
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: live workers %s; want indices 0..%d of %d in one epoch\n%s", what, describeHoldings(ls), total-1, total, c.logs())
		}
		time.Sleep(10 * time.Millisecond) // the workers are other processes: poll their logs
	}
}

// overlaps returns every two holdings of one index that overlap in time.
func (c *nodeCluster) overlaps() []string {
	c.read()
	c.mu.Lock()
	defer c.mu.Unlock()
	byIndex := map[int][]*holding{}
	for _, h := range c.holds {
		if h.index >= 0 {
			byIndex[h.index] = append(byIndex[h.index], h)
		}
	}
	var out []string
	for i, hs := range byIndex {
		for a := range hs {
			for b := a + 1; b < len(hs); b++ {
				x, y := hs[a], hs[b]
				if x.from < end(y) && y.from < end(x) {
					out = append(out, fmt.Sprintf("index %d: %s pid %d (epoch %d, %d..%d) and %s pid %d (epoch %d, %d..%d)",
						i, x.node, x.pid, x.epoch, x.from, x.to, y.node, y.pid, y.epoch, y.from, y.to))
				}
			}
		}
	}
	return out
}

// end is when h stopped holding, or the far future while it runs.
func end(h *holding) int64 {
	if h.to == 0 {
		return 1<<63 - 1
	}
	return h.to
}

func describeHoldings(ls []*holding) string {
	var b strings.Builder
	for _, h := range ls {
		fmt.Fprintf(&b, "%s/%d:index %d of %d epoch %d; ", h.node, h.pid, h.index, h.total, h.epoch)
	}
	return b.String()
}

// logs returns what the nodes wrote, for failures.
func (c *nodeCluster) logs() string {
	var b strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "--- %s\n%s", n.name, n.stderr.String())
	}
	return b.String()
}

// TestRunNodesStrict runs three `herd run` nodes of command workers on one
// etcd, in strict consistency with the default --on-rebalance restart:
// they join one after another without waiting, one stops gracefully and
// one primary is killed with SIGKILL. Each time, once the view settles,
// every index 0..total-1 is held by exactly one live worker; and no two
// workers ever held one index at overlapping times, a worker holding its
// index from its start until its exit.
func TestRunNodesStrict(t *testing.T) {
	e, err := etcdtest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	c := &nodeCluster{t: t, registry: "etcd://" + strings.Join(e.Endpoints(), ","), key: "nodes" + strconv.Itoa(os.Getpid()),
		dir: t.TempDir(), gone: map[int]int64{}, holds: map[int]*holding{}}
	a := c.start("a", 2)
	b := c.start("b", 2)
	c.start("c", 2)
	e1 := c.settled(6, "three nodes joined")
	b.proc.Signal(syscall.SIGTERM)
	<-b.exited
	e2 := c.settled(4, "after b stopped gracefully")
	a.proc.Signal(syscall.SIGKILL)
	<-a.exited
	e3 := c.settled(2, "after a was killed")
	if !(e1 < e2 && e2 < e3) {
		t.Errorf("epochs %d, %d, %d; want them increasing", e1, e2, e3)
	}
	for _, o := range c.overlaps() {
		t.Error(o)
	}
	if t.Failed() {
		t.Logf("holdings:\n%s", c.logs())
	}
}
