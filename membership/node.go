package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// errStopped ends the loop when Leave or Close stops it.
var errStopped = errors.New("membership: stopped")

// request is a call of a Session method, carried out by the loop.
type request struct {
	kind    requestKind
	threads int
	leave   bool
	ctx     context.Context
	reply   chan reply
}

// requestKind is what a request asks.
type requestKind int

const (
	reqThreads requestKind = iota
	reqStop
)

// reply answers a request.
type reply struct {
	err error
	inc *incarnation // for reqStop: the incarnation to revoke or orphan
}

// node is the state of a dynamic session, owned by its loop goroutine.
type node struct {
	s   *Session
	o   *options
	lay layout
	cli *clientv3.Client
	log *slog.Logger

	inc        *incarnation // the current lease and its goroutines; nil while not registered
	oldLease   clientv3.LeaseID
	fenceAt    time.Time                  // when to fence unless a renewal succeeds first
	deadline   *time.Timer                // fires at fenceAt
	input      atomic.Pointer[renewInput] // what renewals compare
	stuckAt    atomic.Int64               // while in a callback: when it overruns, in Unix nanoseconds
	members    map[string]memberRecord
	memRev     int64       // revision of the last change to members
	memChanged time.Time   // when members last changed
	memberRev  int64       // ModRevision of this instance's own member key
	commit     *commit     // latest commit key seen
	plan       *plan       // latest plan key seen
	committed  *committed  // the committed assignment, when known
	prepared   int64       // plan revision OnPrepare was called for
	acked      int64       // plan revision acknowledged
	last       viewAt      // what lastView was computed from
	lastView   View        // the view the commit or member list gives, as last computed
	computed   time.Time   // when lastView was computed
	recompute  *time.Timer // fires when a view held back by pace is due
	reg        registry
	state      watcher         // the registry base, commit and plan
	memb       watcher         // the members, when the node follows them
	membSeen   int64           // the revision up to which memb has delivered
	membLag    int64           // a member change a renewal found that memb had not delivered
	foreign    map[string]bool // member keys of another registry base, ignored
	checks     watchChecks     // renewals left that check the members watch
	seq        *sequencer
	retry      *time.Timer
	backoff    time.Duration
	announced  bool
}

// newNode returns the loop state of dynamic session s.
func newNode(s *Session) *node {
	n := &node{s: s, o: s.o, lay: newLayout(s.key, s.o.env), cli: s.cli, log: s.o.logger,
		deadline: stoppedTimer(), retry: stoppedTimer(), recompute: stoppedTimer(),
		members: map[string]memberRecord{}, foreign: map[string]bool{}}
	return n
}

// stoppedTimer returns a timer that is not running.
func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// run is the session's loop: it reacts to watch events, renewals, the
// fence deadline, the sequencer's acks and timers, and requests, until
// ctx ends or a stop request comes.
func (n *node) run(ctx context.Context) error {
	defer n.cleanup()
	n.settle(ctx)
	for {
		var err error
		select {
		case <-ctx.Done():
			return errStopped
		case wr, ok := <-n.state.ch:
			n.onWatch(&n.state, wr, ok)
			n.drainWatch(&n.state)
		case wr, ok := <-n.memb.ch:
			n.onWatch(&n.memb, wr, ok)
			n.drainWatch(&n.memb)
		case r := <-n.inc.renewalsC():
			n.onRenewal(r)
		case <-n.deadline.C:
			n.onDeadline()
		case e := <-n.inc.electedC():
			n.onElected(e)
		case wr, ok := <-n.seq.acksC():
			n.seq.onAcks(n, wr, ok)
		case <-n.seq.timerC():
			n.seq.onTimeout(n)
		case <-n.seq.wakeC():
		case <-n.retry.C:
		case <-n.recompute.C:
		case req := <-n.s.reqs:
			err = n.handle(ctx, req)
		}
		if err != nil {
			return err
		}
		n.settle(ctx)
		n.publishInput()
	}
}

// settle does what the state calls for: register, list and watch,
// reconcile the view, step the sequencer. What fails is retried with
// backoff.
func (n *node) settle(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	err := n.ensureWatch(ctx) // first, so that no write of ours lands between the list and the watch
	if err == nil {
		err = n.ensureRegistered(ctx)
	}
	if err == nil {
		err = n.reconcile(ctx)
	}
	if err == nil && n.seq != nil {
		if err = n.seq.step(ctx, n); err == nil {
			err = n.reconcile(ctx) // the sequencer's own share of a new plan
		}
	}
	if err != nil {
		n.later(err)
		return
	}
	n.backoff = 0
}

// later schedules another settle after the next backoff delay.
func (n *node) later(err error) {
	if errors.Is(err, errNewRegistry) {
		n.retry.Reset(0) // the state was dropped: list again at once
		return
	}
	n.backoff = min(max(2*n.backoff, 100*time.Millisecond), 5*time.Second, n.o.ttl)
	msg := "etcd unavailable; retrying"
	if errors.Is(err, ErrDuplicateID) {
		msg = "instance id in use; retrying until that instance leaves or expires"
	}
	n.log.Warn(msg, "endpoints", n.cli.Endpoints(), "in", n.backoff, "err", err)
	n.retry.Reset(n.backoff)
}

// margin is how long before the lease could expire the node fences.
func (n *node) margin() time.Duration { return n.o.ttl / 3 }

// callCtx returns a context for one etcd call from the loop: bounded by a
// third of the TTL and, while the instance holds indices, by the fence
// deadline, so that no call can make the loop late to fence.
func (n *node) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	d := time.Now().Add(n.o.ttl / 3)
	if n.inc != nil && n.fenceAt.Before(d) {
		d = n.fenceAt
	}
	return context.WithDeadline(ctx, d)
}

// handle carries out a request; a stop request ends the loop.
func (n *node) handle(ctx context.Context, req request) error {
	switch req.kind {
	case reqThreads:
		req.reply <- reply{err: n.setThreads(req.ctx, req.threads)}
	case reqStop:
		n.emit(fenceView(n.o.threads))
		inc := n.inc
		n.stopSequencer()
		if inc != nil {
			inc.end()
		}
		n.inc = nil
		req.reply <- reply{inc: inc}
		return errStopped
	}
	return nil
}

// record returns this instance's member record as stored.
func (n *node) record() string {
	return encode(memberRecord{Threads: n.o.threads, Addr: n.o.addr, PID: pid,
		Version: n.o.version, TTLMillis: n.o.ttl.Milliseconds(), Reg: n.reg.base.ID})
}

// request sends req to the loop and waits for its reply.
func (s *Session) request(ctx context.Context, req request) error {
	req.ctx, req.reply = ctx, make(chan reply, 1)
	select {
	case s.reqs <- req:
	case <-s.loopDone:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("membership: %w", ctx.Err())
	}
	return (<-req.reply).err
}

// stop ends the loop and, if leave, resigns and revokes the lease with ctx;
// otherwise it leaves the lease to expire.
func (n *node) stop(ctx context.Context, leave bool) error {
	rep := make(chan reply, 1)
	var inc *incarnation
	select {
	case n.s.reqs <- request{kind: reqStop, leave: leave, reply: rep}:
		inc = (<-rep).inc
	case <-n.s.loopDone:
	case <-ctx.Done(): // the loop is busy past ctx: stop it without leaving
	}
	n.s.cancel()
	<-n.s.loopDone
	if !leave || inc == nil {
		return nil
	}
	if inc.leader {
		inc.elect.Resign(ctx) // the revoke below deletes the key anyway
	}
	if _, err := n.cli.Revoke(ctx, inc.lease); err != nil {
		return fmt.Errorf("membership: leave: revoke lease: %w", err)
	}
	return nil
}

// cleanup releases what the loop holds when it returns.
func (n *node) cleanup() {
	n.stopSequencer()
	if n.inc != nil {
		n.inc.end()
		n.inc = nil
	}
	n.state.stop()
	n.memb.stop()
	n.deadline.Stop()
	n.retry.Stop()
	n.recompute.Stop()
}
