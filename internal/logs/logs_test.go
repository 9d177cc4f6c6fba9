package logs

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/herd-cluster/herd/internal/testkit"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor fails the test unless ch closes or yields within d.
func waitFor[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// run captures input for slot 0, pid 7, closes the sink and returns what
// the sink wrote to stdout and stderr.
func run(t *testing.T, cfg Config, stream Stream, input string) (stdout, stderr string) {
	t.Helper()
	var out, errOut testkit.Buffer
	cfg.Stdout, cfg.Stderr = &out, &errOut
	s := New(cfg)
	waitFor(t, s.Capture(0, 7, stream, strings.NewReader(input)), 5*time.Second, "capture")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return out.String(), errOut.String()
}

func TestText(t *testing.T) {
	out, errOut := run(t, Config{}, Stdout, "hello\r\nworld\n\nlast")
	if want := "[0] hello\n[0] world\n[0] \n[0] last\n"; out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	if errOut != "" {
		t.Errorf("stderr = %q, want empty", errOut)
	}
	_, errOut = run(t, Config{Format: "text"}, Stderr, "oops\n")
	if want := "[0] oops\n"; errOut != want {
		t.Errorf("stderr = %q, want %q", errOut, want)
	}
}

func TestJSON(t *testing.T) {
	msgs := []string{
		"plain",
		`he said "hi" \ back\slash`,
		"tab\tand <b>&amp;</b> \u2028 \x01\x7f",
		"é 日本語 🎉",
		"",
		"trailing cr\r",
	}
	input := strings.Join(msgs, "\n") + "\n"
	_, errOut := run(t, Config{Format: "json"}, Stderr, input)
	lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	if len(lines) != len(msgs) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(msgs), errOut)
	}
	for i, l := range lines {
		var rec struct {
			Time   string
			Slot   int
			PID    int
			Stream string
			Msg    string
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %d %q: %v", i, l, err)
		}
		want := strings.TrimSuffix(msgs[i], "\r")
		if rec.Msg != want || rec.Slot != 0 || rec.PID != 7 || rec.Stream != "stderr" {
			t.Errorf("line %d = %+v, want msg %q slot 0 pid 7 stream stderr", i, rec, want)
		}
		if _, err := time.Parse(time.RFC3339Nano, rec.Time); err != nil {
			t.Errorf("line %d time: %v", i, err)
		}
	}
}

func TestJSONInvalidUTF8(t *testing.T) {
	out, _ := run(t, Config{Format: "json"}, Stdout, "bad \xff byte")
	var rec struct{ Msg string }
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	if rec.Msg != "bad \ufffd byte" {
		t.Errorf("msg = %q", rec.Msg)
	}
}

func TestNoTrailingNewline(t *testing.T) {
	// Through a pipe, so the last line arrives in its own read.
	pr, pw := io.Pipe()
	var out testkit.Buffer
	s := New(Config{Stdout: &out})
	done := s.Capture(3, 1, Stdout, pr)
	if _, err := pw.Write([]byte("first\nsecond, no newline")); err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, done, 5*time.Second, "capture")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if want := "[3] first\n[3] second, no newline\n"; out.String() != want {
		t.Errorf("output = %q, want %q", out.String(), want)
	}
	if got := s.Tail(3, 1); len(got) != 1 || got[0].Text != "second, no newline" {
		t.Errorf("Tail = %+v", got)
	}
}

func TestLongLineSplit(t *testing.T) {
	input := strings.Repeat("x", 25) + "\n" + strings.Repeat("y", 10) + "\n"
	out, _ := run(t, Config{MaxLine: 10}, Stdout, input)
	want := "[0] xxxxxxxxxx\n[0] xxxxxxxxxx\n[0] xxxxx\n[0] yyyyyyyyyy\n"
	if out != want {
		t.Errorf("output = %q, want %q", out, want)
	}

	// Multi-byte characters are not cut.
	text := strings.Repeat("é日", 20)
	out, _ = run(t, Config{MaxLine: 8}, Stdout, text)
	var joined strings.Builder
	for l := range strings.Lines(out) {
		piece := strings.TrimSuffix(strings.TrimPrefix(l, "[0] "), "\n")
		if len(piece) > 8 || !utf8.ValidString(piece) {
			t.Errorf("bad piece %q", piece)
		}
		joined.WriteString(piece)
	}
	if joined.String() != text {
		t.Errorf("pieces join to %q, want %q", joined.String(), text)
	}
}

func TestLongLineDefault(t *testing.T) {
	// 1 MiB line through a pipe, read in small pieces.
	line := bytes.Repeat([]byte("z"), 1<<20)
	pr, pw := io.Pipe()
	var out testkit.Buffer
	s := New(Config{Stdout: &out})
	done := s.Capture(0, 1, Stdout, pr)
	go func() {
		for p := line; len(p) > 0; p = p[min(len(p), 1000):] {
			_, _ = pw.Write(p[:min(len(p), 1000)])
		}
		_ = pw.CloseWithError(errors.New("read error ends input too"))
	}()
	waitFor(t, done, 10*time.Second, "capture")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 16 {
		t.Fatalf("got %d lines, want 16", len(lines))
	}
	for _, l := range lines {
		if l != "[0] "+strings.Repeat("z", 64<<10) {
			t.Fatalf("bad piece of length %d", len(l))
		}
	}
}

func TestTail(t *testing.T) {
	s := New(Config{RingLines: 5})
	defer s.Close()
	capture := func(stream Stream, input string) {
		t.Helper()
		waitFor(t, s.Capture(2, 9, stream, strings.NewReader(input)), 5*time.Second, "capture")
	}
	capture(Stdout, "o1\no2\no3\no4\n")
	capture(Stderr, "e1\ne2\n")
	texts := func(lines []Line) string {
		var b []string
		for _, l := range lines {
			b = append(b, l.Text)
		}
		return strings.Join(b, ",")
	}
	for _, tc := range []struct {
		n       int
		streams []Stream
		want    string
	}{
		{3, nil, "o4,e1,e2"},
		{10, nil, "o2,o3,o4,e1,e2"},
		{10, []Stream{Stdout}, "o2,o3,o4"},
		{2, []Stream{Stdout}, "o3,o4"},
		{1, []Stream{Stderr}, "e2"},
		{10, []Stream{Stdout, Stderr}, "o2,o3,o4,e1,e2"},
		{0, nil, ""},
	} {
		if got := texts(s.Tail(2, tc.n, tc.streams...)); got != tc.want {
			t.Errorf("Tail(2, %d, %v) = %q, want %q", tc.n, tc.streams, got, tc.want)
		}
	}
	l := s.Tail(2, 1)[0]
	if l.Slot != 2 || l.PID != 9 || l.Stream != Stderr || l.Time.IsZero() {
		t.Errorf("line = %+v", l)
	}
	if got := s.Tail(5, 10); got != nil {
		t.Errorf("Tail of unknown slot = %v", got)
	}
	s.Forget(2)
	if got := s.Tail(2, 10); got != nil {
		t.Errorf("Tail after Forget = %v", got)
	}
}

func TestStreamString(t *testing.T) {
	if Stdout.String() != "stdout" || Stderr.String() != "stderr" || Stream(5).String() != "stream(5)" {
		t.Error("bad Stream.String")
	}
}
