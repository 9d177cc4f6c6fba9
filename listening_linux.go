package herd

import (
	"context"
	"time"

	"github.com/herd-cluster/herd/internal/sockets"
)

// listenCheckInterval is how often the primary checks that its TCP
// sockets still listen. A check is one getsockopt(2) per socket, and no
// part of any request's path.
const listenCheckInterval = 50 * time.Millisecond

// keepListening puts back to listening, until ctx ends, every TCP socket of
// set that a worker shut down: one shutdown(2) on a worker's copy of the
// shared socket stops it for every worker, so without this the cluster
// would refuse every connection from then on. Each repair is logged at
// error level, and a socket that cannot listen again is reported once
// until it does.
func (c *Cluster) keepListening(ctx context.Context, set *sockets.Set) {
	t := time.NewTicker(listenCheckInterval)
	defer t.Stop()
	failing := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, r := range set.Repair() {
			if r.Err != nil {
				if !failing[r.Name] {
					c.cfg.Logger.Error("a worker shut down a listening socket and it cannot listen again",
						"listener", r.Name, "addr", r.Addr, "err", r.Err)
				}
				failing[r.Name] = true
				continue
			}
			delete(failing, r.Name)
			c.cfg.Logger.Error("a worker shut down a listening socket (shutdown(2) on its inherited fd); it listens again",
				"listener", r.Name, "addr", r.Addr)
		}
	}
}
