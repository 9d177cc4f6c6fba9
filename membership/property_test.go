package membership

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestNoOverlapProperty runs random joins, graceful leaves, kills, stalls
// and thread count changes over a strict cluster whose instances all
// connect through proxies, recording every index every instance holds
// with the times: no index may ever be held by two instances at once, and
// views of one epoch must agree. MEMBERSHIP_SEED replays a run.
func TestNoOverlapProperty(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MEMBERSHIP_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("MEMBERSHIP_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	c := newCluster(t)
	p := &prop{c: c, rng: rng, live: map[string]*tnode{}, threads: map[string]int{}, frozen: map[string]bool{}}
	ids := []string{"a", "b", "c", "d", "e", "f"}
	for range 40 {
		p.step(t, ids[rng.IntN(len(ids))])
		<-time.After(time.Duration(rng.IntN(250)) * time.Millisecond) // pacing, part of the scenario
	}
	for id := range p.frozen {
		p.live[id].proxy.Thaw()
	}
	took := c.rec.waitFor(t, 6*testTTL, "every live instance on one epoch", p.converged)
	t.Logf("converged %s after the last step; %d holds recorded, %d live", took, c.rec.holdsCount(), len(p.live))
	c.rec.check(t)
}

// prop is the state of the property test: the live instances, their
// thread counts and which are cut off.
type prop struct {
	c       *cluster
	rng     *rand.Rand
	live    map[string]*tnode
	threads map[string]int
	frozen  map[string]bool
}

// step does one random thing to instance id.
func (p *prop) step(t *testing.T, id string) {
	n, ok := p.live[id]
	switch {
	case !ok:
		p.threads[id] = 1 + p.rng.IntN(3)
		n = p.c.newNode(id, p.threads[id], nodeOpts{proxy: true})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		n.s.Join(ctx) // a killed predecessor may hold the id until it expires: Join goes on in the background
		cancel()
		p.live[id] = n
		t.Logf("%s joins with %d threads", n.name, p.threads[id])
	case p.frozen[id]:
		n.proxy.Thaw()
		delete(p.frozen, id)
		t.Logf("%s thaws", n.name)
	default:
		p.act(t, id, n)
	}
}

// act leaves, kills, stalls or rescales live instance id.
func (p *prop) act(t *testing.T, id string, n *tnode) {
	switch p.rng.IntN(4) {
	case 0:
		t.Logf("%s leaves", n.name)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		n.s.Leave(ctx)
		cancel()
		delete(p.live, id)
	case 1:
		t.Logf("%s is killed", n.name)
		n.s.Close()
		delete(p.live, id)
	case 2:
		t.Logf("%s stalls", n.name)
		n.proxy.Freeze()
		p.frozen[id] = true
	case 3:
		p.threads[id] = 1 + p.rng.IntN(3)
		t.Logf("%s goes to %d threads", n.name, p.threads[id])
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := n.s.SetThreads(ctx, p.threads[id]); err != nil {
			t.Logf("%s: set threads: %v", n.name, err)
		}
		cancel()
	}
}

// converged reports whether every live instance holds indices in one
// epoch whose total is the sum of their thread counts.
func (p *prop) converged(latest map[string]View) bool {
	total := 0
	for id := range p.live {
		total += p.threads[id]
	}
	var epoch int64
	for id, n := range p.live {
		v := latest[n.name]
		if v.Index < 0 || v.Threads != p.threads[id] || v.Total != total || (epoch != 0 && v.Epoch != epoch) {
			return false
		}
		epoch = v.Epoch
	}
	return true
}
