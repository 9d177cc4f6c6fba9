package logs

import (
	"fmt"
	"strings"
	"testing"
)

func texts(ls []Line) string {
	var b []string
	for _, l := range ls {
		b = append(b, l.Text)
	}
	return strings.Join(b, "|")
}

// TestSummarize checks that a backtrace longer than the tail does not hide
// the line that names the error.
func TestSummarize(t *testing.T) {
	var lines []Line
	add := func(pid int, text string) {
		lines = append(lines, Line{PID: pid, Text: text, Seq: uint64(len(lines) + 1)})
	}
	add(1, "earlier worker: listening")
	add(2, "/app/config/puma.rb:3: cannot load such file -- missing_gem (LoadError)")
	for i := range 30 {
		add(2, fmt.Sprintf("\tfrom /gems/puma/lib/frame%d.rb:%d:in `load'", i, i))
	}
	s := Summarize(lines, 10, 3)
	if texts(s.Head) != lines[1].Text {
		t.Errorf("Head = %q; want the error line %q alone", texts(s.Head), lines[1].Text)
	}
	if len(s.Tail) != 10 || s.Tail[9].Text != lines[len(lines)-1].Text {
		t.Errorf("Tail = %q; want the last 10 lines", texts(s.Tail))
	}
	if s.Skipped != 20 {
		t.Errorf("Skipped = %d; want the 20 frames between", s.Skipped)
	}

	short := lines[:5]
	if s := Summarize(short, 10, 3); len(s.Head) != 0 || len(s.Tail) != 5 || s.Skipped != 0 {
		t.Errorf("Summarize of 5 lines = %+v; want them all as the tail", s)
	}

	lines = nil
	add(3, "starting every event")
	add(3, "Error: listen EADDRINUSE: address already in use :::8080")
	for i := range 12 {
		add(3, fmt.Sprintf("    at Everything.frame%d (node:net:%d)", i, i))
	}
	if got := texts(Summarize(lines, 10, 3).Head); got != "starting every event|"+lines[1].Text {
		t.Errorf("Head = %q; want the first line and the error", got)
	}
}
