package membership

import (
	"cmp"
	"slices"
)

// View is what an instance knows of the cluster at one time: which indices
// it holds and how many there are in all.
type View struct {
	// Index is this instance's first index: its threads hold Index to
	// Index+Threads-1. -1 means hold no index and do no work.
	Index int `json:"index"`
	// Threads is this instance's thread count in this view.
	Threads int `json:"threads"`
	// Total is the number of indices in the cluster; 0 when unknown.
	Total int `json:"total"`
	// Epoch identifies the cluster state the view comes from: an etcd
	// revision that grows with every rebalance. Views with the same epoch
	// agree on Total and Members on every instance. It is 0 in a static
	// cluster and in a fence (Index -1 with no Members: this instance holds
	// nothing until a new view).
	Epoch int64 `json:"epoch"`
	// Members lists the instances in base order.
	Members []Member `json:"members"`
}

// Member is one instance in a View.
type Member struct {
	// ID is the instance identifier.
	ID string `json:"id"`
	// Base is the instance's first index.
	Base int `json:"base"`
	// Threads is the instance's thread count.
	Threads int `json:"threads"`
	// Addr is the address the instance published, if any.
	Addr string `json:"addr,omitempty"`
}

// Holds reports whether the view gives this instance index i.
func (v View) Holds(i int) bool {
	return v.Index >= 0 && i >= v.Index && i < v.Index+v.Threads
}

// equal reports whether two views are the same in every field.
func (v View) equal(w View) bool {
	return v.Index == w.Index && v.Threads == w.Threads && v.Total == w.Total &&
		v.Epoch == w.Epoch && slices.Equal(v.Members, w.Members)
}

// fenceView is the view of an instance that holds nothing and knows no
// committed state.
func fenceView(threads int) View { return View{Index: -1, Threads: threads} }

// slot is one instance's share of the indices in an assignment.
type slot struct {
	Base    int    `json:"base"`
	Threads int    `json:"threads"`
	Lease   int64  `json:"lease"`
	Addr    string `json:"addr,omitempty"`
}

// contains reports whether s's indices include all of t's.
func (s slot) contains(t slot) bool {
	return t.Threads == 0 || (s.Base <= t.Base && t.Base+t.Threads <= s.Base+s.Threads)
}

// assignment maps instance ids to their slots.
type assignment map[string]slot

// ordered returns the members in the given order, with their ids.
func ordered(members map[string]memberRecord, order Order) []entry {
	es := make([]entry, 0, len(members))
	for id, m := range members {
		es = append(es, entry{id, m})
	}
	slices.SortFunc(es, func(a, b entry) int {
		if order == OrderJoin {
			if c := cmp.Compare(a.m.createRev, b.m.createRev); c != 0 {
				return c
			}
		}
		return cmp.Compare(a.id, b.id)
	})
	return es
}

// entry is a member and its id.
type entry struct {
	id string
	m  memberRecord
}

// listView returns the view of instance id on lease, with threads and
// epoch, that the member list gives in eventual consistency: the same as
// assign's view, in one pass over the ordered members.
func listView(members map[string]memberRecord, order Order, id string, lease int64, threads int, epoch int64) View {
	es := ordered(members, order)
	v := View{Index: -1, Threads: threads, Epoch: epoch, Members: make([]Member, len(es))}
	for i, e := range es {
		v.Members[i] = Member{ID: e.id, Base: v.Total, Threads: e.m.Threads, Addr: e.m.Addr}
		if e.id == id && e.m.lease == lease {
			v.Index, v.Threads = v.Total, e.m.Threads
		}
		v.Total += e.m.Threads
	}
	return v
}

// assign gives each member its base, in the given order: the sum of the
// thread counts before it. It returns the slots and the total.
func assign(members map[string]memberRecord, order Order) (assignment, int) {
	es := ordered(members, order)
	as := make(assignment, len(es))
	total := 0
	for _, e := range es {
		as[e.id] = slot{Base: total, Threads: e.m.Threads, Lease: e.m.lease, Addr: e.m.Addr}
		total += e.m.Threads
	}
	return as, total
}

// view returns the view of instance id with lease from assignment as with
// total and epoch: Index -1 unless as has id's slot on that lease.
func (as assignment) view(id string, lease int64, threads, total int, epoch int64) View {
	v := View{Index: -1, Threads: threads, Total: total, Epoch: epoch, Members: as.members()}
	if s, ok := as[id]; ok && s.Lease == lease {
		v.Index, v.Threads = s.Base, s.Threads
	}
	return v
}

// slotOf returns id's slot on lease, or the empty slot.
func (as assignment) slotOf(id string, lease int64) slot {
	if s, ok := as[id]; ok && s.Lease == lease {
		return s
	}
	return slot{}
}

// members returns the assignment as a list in base order.
func (as assignment) members() []Member {
	ms := make([]Member, 0, len(as))
	for id, s := range as {
		ms = append(ms, Member{ID: id, Base: s.Base, Threads: s.Threads, Addr: s.Addr})
	}
	slices.SortFunc(ms, func(a, b Member) int { return cmp.Compare(a.Base, b.Base) })
	return ms
}

// equal reports whether two assignments give the same slots.
func (as assignment) equal(bs assignment) bool {
	if len(as) != len(bs) {
		return false
	}
	for id, s := range as {
		if t, ok := bs[id]; !ok || t != s {
			return false
		}
	}
	return true
}
