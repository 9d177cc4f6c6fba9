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
//	members/<id>          an instance's member record, on its lease
//	sequencer/            the sequencer election
//	state/commit          the committed plan: the current assignment
//	state/epoch           the registry's base: what epochs count from
//	state/plan            the sequencer's latest plan
//	snapshot              the whole committed assignment, read when listing
//
// Every node watches state/; members/ is watched in eventual consistency
// and by the sequencer.
type layout struct{ prefix string }

// newLayout returns the key layout of cluster key in env.
func newLayout(key, env string) layout { return layout{prefix: "/herd/" + key + "/" + env + "/"} }

func (l layout) member(id string) string    { return l.prefix + "members/" + id }
func (l layout) members() string            { return l.prefix + "members/" }
func (l layout) state() string              { return l.prefix + "state/" }
func (l layout) plan() string               { return l.prefix + "state/plan" }
func (l layout) commit() string             { return l.prefix + "state/commit" }
func (l layout) epoch() string              { return l.prefix + "state/epoch" }
func (l layout) snapshot() string           { return l.prefix + "snapshot" }
func (l layout) election() string           { return l.prefix + "sequencer/" }
func (l layout) acks() string               { return l.prefix + "acks/" }
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

// plan is the value of the plan key: what a rebalance changes in the
// commit it builds on, so that a rebalance sends each instance the
// changes, not the whole assignment.
type plan struct {
	// EpochPrev is the revision of the commit the plan changes; 0 for the
	// first.
	EpochPrev int64 `json:"epoch_prev"`
	// Set holds the new and changed slots; Drop the instances that go.
	Set   assignment `json:"set,omitempty"`
	Drop  []string   `json:"drop,omitempty"`
	Total int        `json:"total"`
	// Reg is the id of the registry base the plan was written under.
	Reg string `json:"reg"`

	rev int64 // the key's ModRevision
}

// commit is the value of the commit key: the plan committed.
type commit struct {
	PlanRev int64  `json:"plan_rev"`
	Total   int    `json:"total"`
	Reg     string `json:"reg"`

	rev int64 // the key's ModRevision
}

// snapshot is the value of the snapshot key, written with every commit
// and read when listing: the whole committed assignment. No one watches
// it, so a rebalance does not send it to every instance.
type snapshot struct {
	Assignments assignment `json:"assignments"`
	Total       int        `json:"total"`
	Reg         string     `json:"reg"`
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

// decode decodes a plan, commit or snapshot value into v.
func decode[T any](what string, value []byte) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(value, v); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return v, nil
}

// encode returns v as JSON; the types encoded here cannot fail.
func encode(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "{}"
	}
	return string(b)
}
