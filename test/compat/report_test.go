package compat

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// result is what the suite measured of one recipe.
type result struct {
	Server, Variant string
	Recipe          string
	Bound           [2]int  // documented most failed requests: keep-alive, close
	Serves          bool    // answered through the inherited socket
	Loads           [2]load // the reloads under wrk: keep-alive, close
	WorkerRespawn   time.Duration
	MasterRespawn   time.Duration // zero: the server has no master of its own
	Stopped         bool
	Left            int  // processes left after herd stop
	ShutSocket      bool // a worker shut the shared socket down and herd made it listen again
}

// results collects the results of a run.
type results struct {
	mu   sync.Mutex
	list []*result
}

// report is this run's results.
var report results

// add records r; the test fills it in as it goes.
func (rs *results) add(r *result) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.list = append(rs.list, r)
}

// reportPath is where write puts the report.
func reportPath() string {
	if p := os.Getenv("COMPAT_REPORT"); p != "" {
		return p
	}
	return filepath.Join(os.TempDir(), "herd-compat-report.md")
}

// write writes the report as a Markdown table, when any server ran.
func (rs *results) write() error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.list) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# herd compatibility suite, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "2 workers; one `herd reload` during %v of wrk -t%s -c%s (keep-alive, then `Connection: close`).\n\n",
		wrkDuration, wrkThreads, wrkConnections)
	b.WriteString("| server | variant | serves | reload, keep-alive | reload, Connection: close | bound | kill -9 worker → new | kill -9 master → new | left after stop | shut socket down |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rs.list {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d / %d | %s | %s | %s | %s |\n",
			r.Server, r.Variant, yes(r.Serves), loadCell(r.Serves, r.Loads[0]), loadCell(r.Serves, r.Loads[1]),
			r.Bound[0], r.Bound[1], dur(r.WorkerRespawn), dur(r.MasterRespawn), leftCell(r), yes(r.ShutSocket))
	}
	b.WriteString("\nRecipes:\n\n")
	for _, r := range rs.list {
		fmt.Fprintf(&b, "- %s %s: `%s`\n", r.Server, r.Variant, r.Recipe)
	}
	path := reportPath()
	fmt.Fprintf(os.Stderr, "compat report: %s\n", path)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

func loadCell(ran bool, l load) string {
	if !ran || l.Requests == 0 {
		return "–"
	}
	return fmt.Sprintf("%d of %d", l.Errors(), l.Requests)
}

func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "–"
	case d < 0:
		return "never"
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func leftCell(r *result) string {
	if !r.Stopped {
		return "–"
	}
	return fmt.Sprint(r.Left)
}
