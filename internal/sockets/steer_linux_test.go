package sockets

import (
	"fmt"
	"net"
	"testing"
)

// dialN opens n connections to the port of s and keeps them open until the
// test ends; they wait in the accept queues.
func dialN(t *testing.T, s *Set, n int) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", s.Port())
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
}

// queues returns the accept queue length of each slot's socket.
func queues(t *testing.T, s *Set, slots int) []int {
	t.Helper()
	q := make([]int, slots)
	for i := range q {
		n, ok := s.Queued(i)
		if !ok {
			t.Fatalf("Queued(%d): slot has no socket of its own", i)
		}
		q[i] = n
	}
	return q
}

// wantOnly checks that the connections queued since before went to the
// serving slots only, all of them.
func wantOnly(t *testing.T, s *Set, before []int, serving []bool, n int) []int {
	t.Helper()
	after := queues(t, s, len(serving))
	got := 0
	for i, on := range serving {
		d := after[i] - before[i]
		got += d
		if !on && d != 0 {
			t.Errorf("slot %d, not serving, got %d connections (queues %v, serving %v)", i, d, after, serving)
		}
	}
	if got != n {
		t.Errorf("%d of %d connections queued (queues %v)", got, n, after)
	}
	return after
}

func TestSteer(t *testing.T) {
	s := mustBind(t, BalanceReusePort, 8, "127.0.0.1:0")
	q := queues(t, s, 8)
	for _, serving := range [][]bool{
		{true, false, true, false, false, false, false, false},
		{false, true, true, true, false, false, true, true}, // three runs
		{false, false, false, false, false, false, false, true},
		{true, true, true, true, true, true, true, false},
	} {
		if err := s.Steer(serving); err != nil {
			t.Fatal(err)
		}
		dialN(t, s, 64)
		q = wantOnly(t, s, q, serving, 64)
	}
	// Every slot serving: the program goes, and every socket gets some.
	all := []bool{true, true, true, true, true, true, true, true}
	if err := s.Steer(all); err != nil {
		t.Fatal(err)
	}
	dialN(t, s, 400)
	after := wantOnly(t, s, q, all, 400)
	for i := range after {
		if after[i] == q[i] {
			t.Errorf("slot %d got nothing with every slot serving: %v then %v", i, q, after)
		}
	}
}

// TestSteerResize checks that new slots get nothing until they serve, and
// that each slot keeps its socket's index in the group through shrinking
// and growing again.
func TestSteerResize(t *testing.T) {
	s := mustBind(t, BalanceReusePort, 4, "127.0.0.1:0")
	if err := s.Steer([]bool{true, true, true, true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Resize(6); err != nil {
		t.Fatal(err)
	}
	q := queues(t, s, 6)
	dialN(t, s, 100)
	q = wantOnly(t, s, q, []bool{true, true, true, true, false, false}, 100)

	if err := s.Resize(2); err != nil {
		t.Fatal(err)
	}
	if err := s.Steer([]bool{false, true}); err != nil {
		t.Fatal(err)
	}
	dialN(t, s, 50)
	q = wantOnly(t, s, q[:2], []bool{false, true}, 50)

	if err := s.Resize(4); err != nil {
		t.Fatal(err)
	}
	serving := []bool{false, false, true, false}
	if err := s.Steer(serving); err != nil {
		t.Fatal(err)
	}
	q = append(q, 0, 0)
	dialN(t, s, 50)
	wantOnly(t, s, q, serving, 50)
}

func TestQueuedShared(t *testing.T) {
	s := mustBind(t, BalanceShared, 2, "127.0.0.1:0")
	if err := s.Steer([]bool{true, false}); err != nil {
		t.Fatal(err)
	}
	if n, ok := s.Queued(1); n != 0 || ok {
		t.Errorf("Queued(1) of shared sockets = %d, %v; want 0, false", n, ok)
	}
	dialN(t, s, 10) // still spread as ever: the shared socket takes them all
}
