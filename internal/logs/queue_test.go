package logs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/testkit"
)

// gateWriter blocks every Write until open is closed.
type gateWriter struct {
	open chan struct{}
	buf  testkit.Buffer
}

func (g *gateWriter) Write(p []byte) (int, error) {
	<-g.open
	return g.buf.Write(p)
}

func TestFlush(t *testing.T) {
	g := &gateWriter{open: make(chan struct{})}
	s := New(Config{Stdout: g})
	waitFor(t, s.Capture(1, 1, Stdout, strings.NewReader("a\nb\n")), 5*time.Second, "capture")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush with blocked writer = %v, want deadline exceeded", err)
	}

	close(g.open)
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if got := g.buf.String(); got != "[1] a\n[1] b\n" {
		t.Errorf("after Flush output = %q", got)
	}
	if err := s.Flush(ctx); err != nil { // nothing queued
		t.Fatalf("second Flush: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestClose(t *testing.T) {
	var out testkit.Buffer
	s := New(Config{Stdout: &out})
	waitFor(t, s.Capture(0, 1, Stdout, strings.NewReader("one\ntwo\n")), 5*time.Second, "capture")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// After Close, input is still drained and kept in the ring, not written.
	waitFor(t, s.Capture(0, 1, Stdout, strings.NewReader("late\n")), 5*time.Second, "late capture")
	if got := out.String(); got != "[0] one\n[0] two\n" {
		t.Errorf("output = %q", got)
	}
	if got := s.Tail(0, 1); len(got) != 1 || got[0].Text != "late" {
		t.Errorf("Tail = %+v", got)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Errorf("Flush after Close: %v", err)
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestWriteError(t *testing.T) {
	s := New(Config{Stdout: errWriter{}})
	waitFor(t, s.Capture(0, 1, Stdout, strings.NewReader("x\n")), 5*time.Second, "capture")
	if err := s.Close(); err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Errorf("Close = %v, want the write error", err)
	}
}

func TestCloseContextBlockedWriter(t *testing.T) {
	pr, pw := io.Pipe()
	s := New(Config{Stdout: pw})
	waitFor(t, s.Capture(0, 1, Stdout, strings.NewReader("x\n")), 5*time.Second, "capture")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.CloseContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CloseContext = %v, want deadline exceeded", err)
	}
	if err := s.Flush(context.Background()); err == nil {
		t.Error("Flush after abandoned close succeeded")
	}
	// Unblock the write; the writer goroutine must then exit.
	_ = pr.Close()
	waitFor(t, s.done, 5*time.Second, "writer exit")
}

// TestBlockedWriter checks that a writer that never returns cannot block
// the producer, that lines are dropped and counted, and that the notice
// appears once the writer is unblocked.
func TestBlockedWriter(t *testing.T) {
	pr, pw := io.Pipe() // nobody reads pr yet: Write blocks
	s := New(Config{Stdout: pw, Stderr: pw})

	src, srcW := io.Pipe()
	done := s.Capture(4, 100, Stdout, src)
	const total = 20 << 20
	const lineLen = 100
	lines := total / lineLen
	go func() {
		w := bufio.NewWriterSize(srcW, 64<<10)
		pad := strings.Repeat("p", lineLen-len("line 00000000 ")-1)
		for i := range lines {
			fmt.Fprintf(w, "line %08d %s\n", i, pad)
		}
		_ = w.Flush()
		_ = srcW.Close()
	}()
	waitFor(t, done, 60*time.Second, "producer to finish against a blocked writer")
	dropped := s.Dropped()
	if dropped == 0 {
		t.Fatal("no lines dropped")
	}
	if tail := s.Tail(4, 1); len(tail) != 1 || !strings.HasPrefix(tail[0].Text, fmt.Sprintf("line %08d ", lines-1)) {
		t.Errorf("ring does not end with the last line: %+v", tail)
	}

	notice := make(chan string, 1)
	readErr := make(chan error, 1)
	go func() { readErr <- readOutput(pr, notice) }()
	want := "herd: dropped " + strconv.FormatUint(dropped, 10) + " lines of worker output"
	if got := waitFor(t, notice, 30*time.Second, "drop notice"); got != want {
		t.Errorf("notice = %q, want %q", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()
	if err := waitFor(t, readErr, 10*time.Second, "reader"); err != nil {
		t.Error(err)
	}
}

// readOutput reads text-format output until EOF, sends the first drop
// notice to notice and checks that worker lines are whole and in order.
func readOutput(r io.Reader, notice chan<- string) error {
	br := bufio.NewReader(r)
	last := -1
	for {
		l, err := br.ReadString('\n')
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		l = strings.TrimSuffix(l, "\n")
		if strings.HasPrefix(l, "herd: dropped ") {
			select {
			case notice <- l:
			default:
			}
			continue
		}
		var n int
		if _, err := fmt.Sscanf(l, "[4] line %d p", &n); err != nil || len(l) != 103 || n <= last {
			return fmt.Errorf("bad line after %d: %q", last, l)
		}
		last = n
	}
}

func TestSplitLines(t *testing.T) {
	for _, tc := range []struct {
		in    string
		final bool
		want  string // lines joined by "|"
		used  int
	}{
		{"a\nb\n", false, "a|b", 4},
		{"a\nb", false, "a", 2},
		{"a\nb", true, "a|b", 3},
		{"a\r\n\r\n", false, "a|", 5},
		{"0123456789\n", false, "0123456789", 11},
		{"0123456789a", false, "0123456789", 10},
		{"0123456789", false, "", 0},
		{"", true, "", 0},
	} {
		spans, used := splitLines([]byte(tc.in), 10, tc.final, nil)
		var got []string
		for _, sp := range spans {
			got = append(got, tc.in[sp.start:sp.end])
		}
		if strings.Join(got, "|") != tc.want || used != tc.used {
			t.Errorf("splitLines(%q, %v) = %q, %d; want %q, %d", tc.in, tc.final, got, used, tc.want, tc.used)
		}
	}
}
