package herd

import (
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/herd-cluster/herd/internal/logs"
)

// guardOutput wraps stdout and stderr so that a failing destination drops
// and counts lines instead of returning errors; a failure of stdout is
// reported on stderr. Writers that already are guarded keep their settings.
func guardOutput(stdout, stderr io.Writer, asJSON bool) (io.Writer, io.Writer) {
	_, given := stdout.(*logs.Dest)
	out, errw := logs.Guard(stdout, "stdout", asJSON), logs.Guard(stderr, "stderr", asJSON)
	if !given && out != errw {
		out.SetReport(errw)
	}
	return out, errw
}

// outputDrops returns the lines of output lost to write errors, on stdout
// and stderr (counted once when they are one destination).
func (c *Cluster) outputDrops() uint64 {
	var n uint64
	seen := map[*logs.Dest]bool{}
	for _, w := range []io.Writer{c.cfg.Stdout, c.cfg.Stderr} {
		if d, ok := w.(*logs.Dest); ok && !seen[d] {
			seen[d] = true
			n += d.Dropped()
		}
	}
	return n
}

var catchPipe sync.Once

// catchSIGPIPE keeps a closed stdout or stderr (herd run … | head -1)
// from killing the primary, and with it every worker: the Go runtime ends
// a program that writes to a broken fd 1 or 2 unless SIGPIPE is notified.
// The signal is caught and discarded, not ignored: an ignored disposition
// would pass to every worker across exec, while a caught one is reset to
// the default there. It stays caught for the life of the process.
func catchSIGPIPE() {
	catchPipe.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGPIPE)
		go func() {
			for range ch {
			}
		}()
	})
}
