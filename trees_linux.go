package herd

import (
	"sync/atomic"

	"github.com/herd-cluster/herd/internal/proctree"
)

// groupTreesOnly, when set, makes primaries track their workers' trees by
// process group even where they could make cgroups, so tests reach that
// mode on any machine.
var groupTreesOnly atomic.Bool

// openTrees ends what a dead primary of the same name left running (it
// would hold the ports this primary is about to bind), then prepares the
// tracking of the workers' process trees.
func (c *Cluster) openTrees() *proctree.Trees {
	log := c.cfg.Logger
	left, err := proctree.EndLeftovers(c.cfg.Name)
	if left.Found() {
		log.Warn("ended the processes a primary of this name left running when it died",
			"name", c.cfg.Name, "dead_primaries", left.Primaries, "pids", left.PIDs, "cgroups", left.Cgroups)
	}
	if err != nil {
		log.Warn("ending what a dead primary left", "err", err)
	}
	return proctree.Open(proctree.Options{Name: c.cfg.Name, NoCgroups: groupTreesOnly.Load(), Logger: log})
}
