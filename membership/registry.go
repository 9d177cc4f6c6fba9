package membership

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// layout names the keys of one cluster, all under /herd/<key>/<env>/:
//
//	acks/<plan-rev>/<id>  an instance's acknowledgement of a plan
//	commit                the committed plan: the current assignment
//	epoch                 the registry's base: what epochs count from
//	members/<id>          an instance's member record, on its lease
//	plan                  the sequencer's latest plan
//	sequencer/            the sequencer election
//
// A node watches from commit to plan, which covers commit, epoch,
// members/ and plan and nothing else.
type layout struct{ prefix string }

// newLayout returns the key layout of cluster key in env.
func newLayout(key, env string) layout { return layout{prefix: "/herd/" + key + "/" + env + "/"} }

func (l layout) member(id string) string    { return l.prefix + "members/" + id }
func (l layout) members() string            { return l.prefix + "members/" }
func (l layout) plan() string               { return l.prefix + "plan" }
func (l layout) commit() string             { return l.prefix + "commit" }
func (l layout) epoch() string              { return l.prefix + "epoch" }
func (l layout) election() string           { return l.prefix + "sequencer/" }
func (l layout) acks() string               { return l.prefix + "acks/" }
func (l layout) watchEnd() string           { return l.plan() + "\x00" }
func (l layout) ackPrefix(rev int64) string { return l.acks() + strconv.FormatInt(rev, 10) + "/" }
func (l layout) ack(rev int64, id string) string {
	return l.ackPrefix(rev) + id
}

// memberRecord is the value of a member key, and what is known of its key.
type memberRecord struct {
	Threads int    `json:"threads"`
	Addr    string `json:"addr,omitempty"`
	PID     int    `json:"pid"`
	Version string `json:"version"`
	// TTLMillis is the instance's TTL: how long a sequencer waits for its
	// acknowledgement before committing without it.
	TTLMillis int64 `json:"ttl_ms"`
	// Reg is the id of the registry base the record was written under.
	Reg string `json:"reg"`

	createRev int64
	lease     int64
}

// ttl returns the record's TTL, or def if it has none.
func (m memberRecord) ttl(def time.Duration) time.Duration {
	if m.TTLMillis <= 0 {
		return def
	}
	return time.Duration(m.TTLMillis) * time.Millisecond
}

// plan is the value of the plan and commit keys.
type plan struct {
	// EpochPrev is the revision of the commit the plan changes.
	EpochPrev   int64      `json:"epoch_prev"`
	Assignments assignment `json:"assignments"`
	Total       int        `json:"total"`
	// PlanRev is, in a commit, the revision of the plan it commits.
	PlanRev int64 `json:"plan_rev,omitempty"`
	// Reg is the id of the registry base the plan was written under.
	Reg string `json:"reg"`

	rev int64 // the key's ModRevision
}

// decodeMember decodes a member key's value.
func decodeMember(value []byte, createRev, lease int64) (memberRecord, error) {
	var m memberRecord
	if err := json.Unmarshal(value, &m); err != nil {
		return m, fmt.Errorf("member record: %w", err)
	}
	if m.Threads < 1 {
		return m, fmt.Errorf("member record: thread count %d", m.Threads)
	}
	m.createRev, m.lease = createRev, lease
	return m, nil
}

// decodePlan decodes a plan or commit key's value.
func decodePlan(value []byte, rev int64) (*plan, error) {
	p := &plan{}
	if err := json.Unmarshal(value, p); err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	p.rev = rev
	return p, nil
}

// encode returns v as JSON; the types encoded here cannot fail.
func encode(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "{}"
	}
	return string(b)
}
