// Package membership gives every worker of a multi-node cluster an index
// and the total, the job of libcluster, on etcd v3 and with a guarantee
// libcluster could not make: in strict consistency no index is ever held by
// two live instances at the same time.
//
// # Instances, indices and views
//
// An instance (one herd primary, or any process) has a thread count N and
// holds N consecutive indices: its base to base+N-1. The total is the sum
// of all thread counts. In libcluster's example three instances with 2, 1
// and 4 threads get bases 0, 2 and 3 of a total of 7. An instance learns
// its share as a View: Index (its base, or -1 for "hold nothing, do no
// work"), Threads, Total, Epoch and the Members list.
//
// A static session (WithStatic) is told its base and the total and
// coordinates with no one; its epoch is 0. A dynamic session
// (WithEndpoints or WithClient) registers in etcd: a member key
// /herd/<key>/<env>/members/<id> on a lease of the session's TTL, whose
// value is JSON {threads, addr, pid, version, ttl_ms}. Instances are
// ordered by when they joined (the key's CreateRevision), so a newcomer
// goes last and shifts no one, or by id with WithOrder(OrderID). Changes
// are learnt by a watch from the listed revision + 1, never by polling; a
// compaction or a closed watch makes the session list again.
//
// A graceful Leave gives up the indices, resigns and revokes the lease:
// the others rebalance within milliseconds. A crashed instance's key goes
// when etcd expires its lease, a TTL after its last renewal.
//
// # Strict uniqueness
//
// In strict consistency, the default, the promise is: at no moment do two
// live instances anywhere hold the same index. "Hold" means from the
// rebalance callback (WithOnRebalance) that gave the index until the
// callback that took it away has returned. Rebalances go in two phases
// through one elected instance, the sequencer (an etcd
// concurrency.Election):
//
//  1. Prepare: the sequencer publishes a plan, the new assignment. Every
//     instance whose current indices the plan does not keep gives them up
//     at once (a view with Index -1), runs WithOnPrepare's function to
//     quiesce its workers, then acknowledges. Instances whose indices stay
//     keep working.
//  2. Commit: once every such instance has acknowledged, the sequencer
//     commits the plan. Its revision is the new epoch, and only then do
//     instances take up new indices.
//
// Every plan and commit is an etcd transaction conditional on the
// sequencer's election key still having the revision it won with, and on
// the commit the plan builds on being the latest, so a deposed or stale
// sequencer cannot write.
//
// An instance that cannot reach etcd must not keep its indices while the
// others move on. Each instance renews its lease itself every sixth of
// the TTL, and with each renewal reads the plan and commit. If no renewal
// sent in the last two thirds of the TTL has succeeded, it fences itself:
// it gives up its indices, before etcd can expire its lease (etcd expires
// a lease a full TTL after the last renewal it received, which was sent no
// earlier than ours). Once etcd is reachable it revokes the old lease and
// re-joins with a new lease and key, last in join order. libcluster never
// re-registered after an expiry.
//
// The sequencer waits for the acknowledgements of the instances a plan
// concerns, drops those whose member key has gone (they gave up their
// indices before leaving, or before their lease could expire), and
// commits without an instance that stays silent for its TTL after the plan
// was written. That is safe: an instance that has not seen the plan has
// had no success with a renewal sent after the plan was written, because
// each renewal reads the plan, so it fenced itself within two thirds of
// its TTL of the write; one that has seen the plan gave up its indices before
// calling OnPrepare.
//
// The promise rests on assumptions, as every lease does: callbacks return
// promptly (within a third of the TTL); clocks run at the same rate within
// that margin; a process is not frozen (SIGSTOP, a long pause, a
// suspended VM) for longer than the margin while it holds indices; and no
// one deletes herd's keys or revokes its leases by hand.
//
// # The epoch
//
// Every committed view has an epoch, an etcd revision that grows with
// every rebalance. Views with the same epoch agree on Total and Members on
// every instance. Use the epoch to make the promise hold even when the
// assumptions fail: fence writes with it. An application that writes to a
// shared store under its index includes the epoch, and the store refuses a
// write whose epoch is older than the newest it has seen for that index —
// in SQL, UPDATE ... SET epoch = $e ... WHERE idx = $i AND epoch <= $e; in
// etcd, a transaction comparing the stored epoch. A paused process that
// wakes up still believing in an old view then cannot do harm.
//
// # Eventual consistency
//
// WithConsistency(Eventual) skips the two phases: each instance computes
// its view straight from the member list it watches, and its epoch is the
// revision of that list. It is faster, but during a rebalance two
// instances may briefly both believe they hold an index, as with
// libcluster: treat the index as should-be unique there, or fence writes
// with the epoch.
//
// # etcd
//
// The client is go.etcd.io/etcd/client/v3. The tests run an embedded
// etcd server of the same version (v3.7) and pass against etcd 3.4 (set
// MEMBERSHIP_ETCD_ENDPOINTS to run them against any server). etcd grants
// no lease under 2s, so MinTTL is 2s.
package membership
