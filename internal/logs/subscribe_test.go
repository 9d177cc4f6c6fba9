package logs

import (
	"io"
	"strings"
	"testing"
	"time"
)

// collect reads n lines from sub within a deadline.
func collect(t *testing.T, sub *Subscription, n int) []Line {
	t.Helper()
	var got []Line
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	for len(got) < n {
		select {
		case l, ok := <-sub.C():
			if !ok {
				t.Fatalf("channel closed after %d lines, want %d", len(got), n)
			}
			got = append(got, l)
		case <-timer.C:
			t.Fatalf("got %d lines, want %d", len(got), n)
		}
	}
	return got
}

func TestSubscribe(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	all := s.Subscribe(-1, 0)
	defer all.Close()
	one := s.Subscribe(1, 10)
	defer one.Close()

	waitFor(t, s.Capture(0, 10, Stdout, strings.NewReader("a\nb\n")), 5*time.Second, "capture 0")
	waitFor(t, s.Capture(1, 11, Stderr, strings.NewReader("c\n")), 5*time.Second, "capture 1")

	got := collect(t, all, 3)
	var texts []string
	for i, l := range got {
		texts = append(texts, l.Text)
		if i > 0 && l.Seq <= got[i-1].Seq {
			t.Errorf("Seq not increasing: %d after %d", l.Seq, got[i-1].Seq)
		}
	}
	if strings.Join(texts, ",") != "a,b,c" {
		t.Errorf("all slots: got %q, want a,b,c", texts)
	}
	l := collect(t, one, 1)[0]
	if l.Text != "c" || l.Slot != 1 || l.PID != 11 || l.Stream != Stderr {
		t.Errorf("slot 1: got %+v", l)
	}
	if tail := s.Tail(1, 1); tail[0].Seq != l.Seq {
		t.Errorf("Tail Seq %d, subscription Seq %d: want the same", tail[0].Seq, l.Seq)
	}
	select {
	case extra := <-one.C():
		t.Errorf("slot 1 subscription got slot %d line %q", extra.Slot, extra.Text)
	default:
	}
}

func TestSubscribeDropsWhenFull(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	sub := s.Subscribe(-1, 2)
	defer sub.Close()
	waitFor(t, s.Capture(0, 1, Stdout, strings.NewReader("1\n2\n3\n4\n5\n")), 5*time.Second, "capture")
	if got := collect(t, sub, 2); got[0].Text != "1" || got[1].Text != "2" {
		t.Errorf("got %q %q, want the first two lines", got[0].Text, got[1].Text)
	}
	if d := sub.Dropped(); d != 3 {
		t.Errorf("Dropped = %d, want 3", d)
	}
	if d := s.Dropped(); d != 0 {
		t.Errorf("Sink.Dropped = %d, want 0: a slow subscriber must not affect output", d)
	}
}

func TestSubscribeClose(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	sub := s.Subscribe(-1, 1)
	sub.Close()
	sub.Close() // twice is fine
	if _, ok := <-sub.C(); ok {
		t.Error("channel open after Close")
	}
	if s.subs.Load() != nil {
		t.Error("subscription still registered after Close")
	}
	// Capturing after Close neither blocks nor panics.
	waitFor(t, s.Capture(0, 1, Stdout, strings.NewReader("x\n")), 5*time.Second, "capture")
}

// TestSubscribeConcurrentClose closes subscriptions while lines flow, for
// the race detector.
func TestSubscribeConcurrentClose(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	pr, pw := io.Pipe()
	done := s.Capture(0, 1, Stdout, pr)
	go func() {
		for range 200 {
			_, _ = pw.Write([]byte("line\n"))
		}
		pw.Close()
	}()
	for range 50 {
		s.Subscribe(-1, 1).Close()
	}
	waitFor(t, done, 5*time.Second, "capture")
}
