package membership

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herd-cluster/herd/membership/etcdtest"
)

// testTTL is the lease TTL of the tests' sessions.
const testTTL = 2 * time.Second

// TestMain checks that no test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// cluster is one test's etcd and the instances it runs, all in this
// process with their own clients.
type cluster struct {
	t    *testing.T
	etcd *etcdtest.Etcd
	key  string
	rec  *recorder
}

// newCluster starts an etcd for t (or uses MEMBERSHIP_ETCD_ENDPOINTS).
func newCluster(t *testing.T) *cluster {
	t.Helper()
	e, err := etcdtest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	key := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()) + fmt.Sprint(time.Now().UnixNano())
	return &cluster{t: t, etcd: e, key: key, rec: newRecorder()}
}

// nodeOpts are a test node's settings beyond the session options.
type nodeOpts struct {
	proxy  bool       // connect through a proxy the test can freeze
	onView func(View) // called after each view is recorded, in the callback
}

// join starts instance id with threads, joined, its views recorded.
func (c *cluster) join(id string, threads int, no nodeOpts, opts ...Option) *tnode {
	c.t.Helper()
	n := c.newNode(id, threads, no, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.s.Join(ctx); err != nil {
		c.t.Fatalf("join %s: %v", id, err)
	}
	return n
}

// tnode is one instance of a test cluster.
type tnode struct {
	s     *Session
	name  string
	proxy *etcdtest.Proxy
	logs  *logTap
}

// newNode returns instance id with threads, not joined yet.
func (c *cluster) newNode(id string, threads int, no nodeOpts, opts ...Option) *tnode {
	c.t.Helper()
	n := &tnode{name: c.rec.holderName(id)}
	n.logs = newLogTap(c.t.Name() + " " + n.name)
	eps := c.etcd.Endpoints()
	if no.proxy {
		p, err := etcdtest.NewProxy(eps[0])
		if err != nil {
			c.t.Fatal(err)
		}
		n.proxy, eps = p, []string{p.Addr()}
	}
	observe := c.rec.observer(n.name)
	if no.onView != nil {
		observe = func(v View) { c.rec.record(n.name, v); no.onView(v) }
	}
	base := []Option{WithEndpoints(eps...), WithInstanceID(id), WithThreads(threads), WithTTL(testTTL),
		WithOnRebalance(observe), WithLogger(slog.New(n.logs))}
	s, err := New(c.key, append(base, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	n.s = s
	c.t.Cleanup(func() {
		s.Close()
		if n.proxy != nil {
			n.proxy.Close()
		}
	})
	return n
}

// recorder records every view every instance got, and every index each
// held, with the time it started and stopped holding it.
type recorder struct {
	mu      sync.Mutex
	latest  map[string]View
	holds   []hold
	open    map[string]map[int]int // holder → index → position in holds
	epochs  map[int64]View
	last    map[string]int64 // holder → its highest epoch so far
	errs    []string
	changed chan struct{}
	seq     int
	// looseEpochs drops the check that views of one epoch agree, which
	// eventual consistency cannot keep for an instance that joins an etcd
	// restored from a backup before the others find out.
	looseEpochs bool
}

// hold is one holder holding one index from one time to another (zero
// while it still holds it).
type hold struct {
	holder   string
	index    int
	epoch    int64
	from, to time.Time
}

func newRecorder() *recorder {
	return &recorder{latest: map[string]View{}, open: map[string]map[int]int{},
		epochs: map[int64]View{}, last: map[string]int64{}, changed: make(chan struct{})}
}

// holderName returns a name for a new instance with id, unique even when
// the id comes back.
func (r *recorder) holderName(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	return fmt.Sprintf("%s#%d", id, r.seq)
}

// observer returns the rebalance callback of holder.
func (r *recorder) observer(holder string) func(View) {
	return func(v View) { r.record(holder, v) }
}

// record notes that holder now has view v.
func (r *recorder) record(holder string, v View) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	open := r.open[holder]
	if open == nil {
		open = map[int]int{}
		r.open[holder] = open
	}
	for i, pos := range open {
		if !v.Holds(i) {
			r.holds[pos].to = now
			delete(open, i)
		}
	}
	for i := v.Index; v.Index >= 0 && i < v.Index+v.Threads; i++ {
		if _, ok := open[i]; !ok {
			open[i] = len(r.holds)
			r.holds = append(r.holds, hold{holder: holder, index: i, epoch: v.Epoch, from: now})
		}
	}
	if v.Epoch != 0 {
		if v.Epoch < r.last[holder] {
			r.errs = append(r.errs, fmt.Sprintf("%s: epoch went back from %d to %d", holder, r.last[holder], v.Epoch))
		}
		r.last[holder] = max(r.last[holder], v.Epoch)
		if w, ok := r.epochs[v.Epoch]; ok && !r.looseEpochs && (w.Total != v.Total || !slices.Equal(w.Members, v.Members)) {
			r.errs = append(r.errs, fmt.Sprintf("epoch %d: %s has total %d members %v; another had %d %v",
				v.Epoch, holder, v.Total, v.Members, w.Total, w.Members))
		}
		r.epochs[v.Epoch] = v
	}
	r.latest[holder] = v
	close(r.changed)
	r.changed = make(chan struct{})
}

// waitFor waits until cond holds of the latest views, or fails t after
// timeout. It returns how long it waited.
func (r *recorder) waitFor(t *testing.T, timeout time.Duration, what string, cond func(map[string]View) bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		ok := cond(r.latest)
		ch := r.changed
		views := brief(r.latest)
		r.mu.Unlock()
		if ok {
			return time.Since(start)
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s: not within %s; latest views: %s", what, timeout, views)
		}
	}
}

// brief describes the latest views for a failure message: each holder's
// index, threads, total and epoch, and the member ids in base order.
func brief(latest map[string]View) string {
	var b strings.Builder
	for name, v := range latest {
		ids := make([]string, len(v.Members))
		for i, m := range v.Members {
			ids[i] = m.ID
		}
		fmt.Fprintf(&b, "%s:{index %d threads %d total %d epoch %d members %v} ", name, v.Index, v.Threads, v.Total, v.Epoch, ids)
	}
	return b.String()
}

// checkMode is check in strict consistency; in eventual consistency,
// which promises no uniqueness, it only checks the epochs.
func (r *recorder) checkMode(t *testing.T, mode Consistency) {
	t.Helper()
	if mode == Strict {
		r.check(t)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		t.Error(e)
	}
}

// check fails t if two holders held one index at overlapping times, or
// two views of one epoch disagreed.
func (r *recorder) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		t.Error(e)
	}
	byIndex := map[int][]hold{}
	for _, h := range r.holds {
		byIndex[h.index] = append(byIndex[h.index], h)
	}
	far := time.Now().Add(time.Hour)
	for i, hs := range byIndex {
		for a := range hs {
			for b := a + 1; b < len(hs); b++ {
				x, y := hs[a], hs[b]
				xe, ye := x.to, y.to
				if xe.IsZero() {
					xe = far
				}
				if ye.IsZero() {
					ye = far
				}
				if x.holder != y.holder && x.from.Before(ye) && y.from.Before(xe) {
					t.Errorf("index %d held by %s (epoch %d, %v to %v) and %s (epoch %d, %v to %v) at once",
						i, x.holder, x.epoch, x.from.Format("15:04:05.000"), xe.Format("15:04:05.000"),
						y.holder, y.epoch, y.from.Format("15:04:05.000"), ye.Format("15:04:05.000"))
				}
			}
		}
	}
}

// holdsCount returns how many holds were recorded.
func (r *recorder) holdsCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.holds)
}

// settled returns a condition: the named holders all have a view of the
// same non-zero epoch with the given bases and total.
func settled(total int, bases map[string]int) func(map[string]View) bool {
	return settledEpochs(total, bases, true)
}

// settledEpochs is settled, with or without the same epoch everywhere (in
// eventual consistency, an instance that listed again has the listed
// revision as its epoch).
func settledEpochs(total int, bases map[string]int, sameEpoch bool) func(map[string]View) bool {
	return func(latest map[string]View) bool {
		var epoch int64
		for name, base := range bases {
			v, ok := latest[name]
			if !ok || v.Index != base || v.Total != total || v.Epoch == 0 || (sameEpoch && epoch != 0 && v.Epoch != epoch) {
				return false
			}
			epoch = v.Epoch
		}
		return true
	}
}

// covered returns a condition: the named holders all hold indices in
// views of one non-zero epoch whose total is total, and their indices are
// 0..total-1, each held once, whatever their order.
func covered(total int, names ...string) func(map[string]View) bool {
	return coveredEpochs(total, true, names...)
}

// coveredEpochs is covered, with or without the same epoch everywhere.
func coveredEpochs(total int, sameEpoch bool, names ...string) func(map[string]View) bool {
	return func(latest map[string]View) bool {
		held := make([]bool, total)
		var epoch int64
		n := 0
		for _, name := range names {
			v, ok := latest[name]
			if !ok || v.Index < 0 || v.Total != total || v.Epoch == 0 || (sameEpoch && epoch != 0 && v.Epoch != epoch) {
				return false
			}
			epoch = v.Epoch
			for i := v.Index; i < v.Index+v.Threads && i < total; i++ {
				if held[i] {
					return false
				}
				held[i] = true
				n++
			}
		}
		return n == total
	}
}

// logTap is a slog handler that keeps the messages logged.
type logTap struct {
	name    string
	mu      sync.Mutex
	msgs    []string
	changed chan struct{}
}

func newLogTap(name string) *logTap { return &logTap{name: name, changed: make(chan struct{})} }

// waitLog waits until a message starting with prefix is logged, or fails
// t after timeout.
func (l *logTap) waitLog(t *testing.T, timeout time.Duration, prefix string) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		ch := l.changed
		l.mu.Unlock()
		if l.count(prefix) > 0 {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %q logged within %s", prefix, timeout)
		}
	}
}

func (l *logTap) Enabled(context.Context, slog.Level) bool { return true }
func (l *logTap) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logTap) WithGroup(string) slog.Handler            { return l }
func (l *logTap) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	close(l.changed)
	l.changed = make(chan struct{})
	if os.Getenv("MEMBERSHIP_TEST_LOG") != "" {
		var b strings.Builder
		r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s", a); return true })
		fmt.Fprintf(os.Stderr, "%s %s %s%s\n", r.Time.Format("15:04:05.000"), l.name, r.Message, b.String())
	}
	return nil
}

// count returns how many messages starting with prefix were logged.
func (l *logTap) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}
