package membership

import (
	"slices"
)

// committed is the committed assignment as the node knows it: the
// snapshot it listed, with every plan committed since applied.
type committed struct {
	as      assignment
	total   int
	rev     int64 // the commit's revision, which gives the epoch
	planRev int64 // the plan it committed
	reg     string
}

// apply returns the assignment that plan p makes of as.
func (as assignment) apply(p *plan) assignment {
	out := make(assignment, len(as)+len(p.Set))
	for id, s := range as {
		out[id] = s
	}
	for _, id := range p.Drop {
		delete(out, id)
	}
	for id, s := range p.Set {
		out[id] = s
	}
	return out
}

// diff returns the plan that makes to of from.
func diff(from, to assignment) (set assignment, drop []string) {
	set = assignment{}
	for id, s := range to {
		if t, ok := from[id]; !ok || t != s {
			set[id] = s
		}
	}
	for id := range from {
		if _, ok := to[id]; !ok {
			drop = append(drop, id)
		}
	}
	slices.Sort(drop)
	return set, drop
}

// applyPlanKey applies a value of the plan key at rev.
func (n *node) applyPlanKey(value []byte, rev int64, listing bool) {
	if n.plan != nil && n.plan.rev >= rev {
		return
	}
	p, err := decode[plan]("plan", value)
	if err != nil {
		n.log.Warn("ignoring a bad plan", "rev", rev, "err", err)
		return
	}
	p.rev = rev
	n.ours(p.Reg, listing)
	n.plan = p
}

// applyCommitKey applies a value of the commit key at rev: the plan it
// commits, known and built on the node's committed assignment, gives the
// new one. Otherwise (the node missed a plan) the node lists again, which
// reads the snapshot.
func (n *node) applyCommitKey(value []byte, rev int64, listing bool) {
	if n.commit != nil && n.commit.rev >= rev {
		return
	}
	c, err := decode[commit]("commit", value)
	if err != nil {
		n.log.Warn("ignoring a bad commit", "rev", rev, "err", err)
		return
	}
	c.rev = rev
	n.commit = c
	if !n.ours(c.Reg, listing) || listing {
		return // another base's; or the snapshot listed with it tells
	}
	p := n.plan
	switch {
	case n.committed != nil && n.committed.rev >= rev:
		// known already: the sequencer's own commit
	case p != nil && p.rev == c.PlanRev && (n.committed == nil && p.EpochPrev == 0 || n.committed != nil && p.EpochPrev == n.committed.rev):
		var as assignment
		if n.committed != nil {
			as = n.committed.as
		}
		n.committed = &committed{as: as.apply(p), total: c.Total, rev: rev, planRev: c.PlanRev, reg: c.Reg}
	default:
		n.log.Info("a commit of a plan not seen: listing again", "rev", rev, "plan_rev", c.PlanRev)
		n.state.stop()
	}
}

// applySnapshot applies the snapshot listed with the commit c.
func (n *node) applySnapshot(value []byte, rev int64) {
	c := n.commit
	if c == nil || c.rev != rev || !n.current(c.Reg, c.rev) {
		return // written with another commit, or under another base
	}
	s, err := decode[snapshot]("snapshot", value)
	if err != nil {
		n.log.Warn("ignoring a bad snapshot", "rev", rev, "err", err)
		return
	}
	n.committed = &committed{as: s.Assignments, total: s.Total, rev: rev, planRev: c.PlanRev, reg: s.Reg}
}

// current reports whether a value written under registry base reg at rev
// belongs to the node's registry base.
func (n *node) current(reg string, rev int64) bool {
	return n.reg.base != nil && reg == n.reg.base.ID && rev > n.reg.base.rev
}

// validCommit returns the committed assignment if it was written under
// the current base, or nil: one of another base belongs to the registry's
// previous life.
func (n *node) validCommit() *committed {
	if c := n.committed; c != nil && n.current(c.reg, c.rev) {
		return c
	}
	return nil
}

// pending returns the plan not yet committed, built on the commit the
// node knows, or nil.
func (n *node) pending() *plan {
	p, c := n.plan, n.validCommit()
	switch {
	case p == nil || !n.current(p.Reg, p.rev):
		return nil
	case c == nil:
		if p.EpochPrev != 0 {
			return nil
		}
	case p.EpochPrev != c.rev || p.rev <= c.planRev:
		return nil
	}
	return p
}

// planned returns the slot plan p gives instance id on lease, over the
// committed assignment c (nil for none).
func planned(p *plan, c *committed, id string, lease int64) slot {
	if s, ok := p.Set[id]; ok {
		if s.Lease == lease {
			return s
		}
		return slot{}
	}
	if slices.Contains(p.Drop, id) || c == nil {
		return slot{}
	}
	return c.as.slotOf(id, lease)
}
