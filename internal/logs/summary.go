package logs

import (
	"regexp"
	"sync"
)

// errorLine matches the lines that name an error in the output of the
// usual servers and runtimes: "Error:", Ruby and Python exceptions,
// "[Errno 98]", Go's "panic:" and "fatal error:", "EADDRINUSE". It is
// compiled on first use: every worker process links this package, and
// none of them needs it.
var errorLine = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i:error|exception|fatal|panic|errno|traceback|failed|cannot|can't|unable|denied|refused|not found|in use)|\bE[A-Z]{4,}\b`)
})

// Summary is what to show of a slot's last output when its worker failed:
// the lines that name the error, which a long backtrace pushes out of the
// last lines, then the last lines themselves.
type Summary struct {
	// Head is the first line of the worker's last run of output and the
	// lines before Tail that name an error, oldest first.
	Head []Line
	// Skipped counts the lines between Head and Tail left out.
	Skipped int
	// Tail is the last lines.
	Tail []Line
}

// Summarize returns the Summary of lines, the slot's recent output oldest
// first: up to tail last lines, and before them up to heads lines of the
// last process's output (the lines of the last pid), the first of them
// and those that name an error.
func Summarize(lines []Line, tail, heads int) Summary {
	if len(lines) <= tail {
		return Summary{Tail: lines}
	}
	cut := len(lines) - tail
	s := Summary{Tail: lines[cut:]}
	first := cut
	for first > 0 && lines[first-1].PID == lines[len(lines)-1].PID {
		first--
	}
	for i := first; i < cut && len(s.Head) < heads; i++ {
		if i == first || errorLine().MatchString(lines[i].Text) {
			s.Head = append(s.Head, lines[i])
		}
	}
	if len(s.Head) > 0 {
		last := s.Head[len(s.Head)-1]
		for i := cut - 1; i >= 0 && lines[i].Seq != last.Seq; i-- {
			s.Skipped++
		}
	}
	return s
}
