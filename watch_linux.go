package herd

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/herd-cluster/herd/internal/supervisor"
	"github.com/herd-cluster/herd/internal/watch"
)

// startWatch watches Config.Watch and restarts pool's workers, one by one,
// whenever what is watched changes. A change during a rolling restart
// starts another once it is over. The returned stop ends the watch.
func (c *Cluster) startWatch(pool *supervisor.Pool) (stop func(), err error) {
	if len(c.cfg.Watch) == 0 {
		return func() {}, nil
	}
	w, err := watch.New(c.cfg.Watch, watch.Options{})
	if err != nil {
		return nil, fmt.Errorf("herd: %w", err)
	}
	log := c.cfg.Logger
	log.Info("watching for changes", "paths", c.cfg.Watch, "dirs", w.Dirs())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := w.Run(ctx, func(paths []string) {
			log.Info("files changed: rolling restart", "changed", summary(paths))
			if err := pool.Restart(ctx, -1); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("rolling restart after a change failed", "err", err)
			}
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			log.Error("watching for changes stopped", "err", err)
		}
	}()
	return func() { cancel(); <-done; w.Close() }, nil
}

// summary names up to three paths and how many more there are.
func summary(paths []string) string {
	if len(paths) <= 3 {
		return strings.Join(paths, " ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(paths[:3], " "), len(paths)-3)
}
