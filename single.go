package herd

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/herd-cluster/herd/internal/sockets"
)

// runSingle runs the work in this process, with no primary: cluster2's
// "cluster: false", for development and debugging.
func (c *Cluster) runSingle(ctx context.Context) error {
	specs, err := sockets.ParseAll(c.cfg.Listen)
	if err != nil {
		return fmt.Errorf("herd: %w", err)
	}
	set, err := sockets.Bind(specs, sockets.Balance(BalanceShared), 1, c.cfg.Backlog)
	if err != nil {
		return fmt.Errorf("herd: %w", err)
	}
	defer set.Close()
	w := &Worker{count: 1, gen: 1, primaryPID: os.Getpid(), port: set.Port(), name: c.cfg.Name, idleTimeout: c.cfg.IdleTimeout, local: c}
	files, names := set.Files(0)
	for i, f := range files {
		// Dup so that the worker closing its copies leaves the set's own.
		nf, err := dupFile(f)
		if err != nil {
			return err
		}
		w.files = append(w.files, nf)
		w.names = append(w.names, names[i])
	}
	w.initMaps()
	defer w.closeAll()
	c.cfg.Logger.Info("single-process mode", "name", c.cfg.Name, "pid", os.Getpid(), "listen", set.Addrs())
	ctx, stop := signal.NotifyContext(ctx, c.cfg.StopSignal, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return c.work(ctx, w)
}
