package herd

import (
	"os"
	"path/filepath"

	"github.com/herd-cluster/herd/internal/notify"
)

// listenNotify opens the NOTIFY_SOCKET listener when workers need one: to
// say READY=1 (ReadyNotify) or WATCHDOG=1 (Watchdog). Otherwise it returns
// nil, and workers get no NOTIFY_SOCKET. The socket is a path in a private
// directory under $XDG_RUNTIME_DIR/herd, $XDG_RUNTIME_DIR or the temporary
// directory.
func (c *Cluster) listenNotify() (*notify.Listener, error) {
	if c.cfg.Ready != ReadyNotify && c.cfg.Watchdog <= 0 {
		return nil, nil
	}
	var dirs []string
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		dirs = append(dirs, filepath.Join(d, "herd"), d)
	}
	return notify.Listen(dirs...)
}
