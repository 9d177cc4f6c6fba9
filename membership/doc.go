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
// value is JSON {threads, addr, pid, version, ttl_ms, reg}. Instances are
// ordered by when they joined (the key's CreateRevision), so a newcomer
// goes last and shifts no one, or by id with WithOrder(OrderID). Changes
// are learnt by watches from the listed revision + 1, never by polling; a
// compaction or a closed watch makes the session list again. The
// registry's state lives under /herd/<key>/<env>/state/ (the base, the
// plan and the commit), which every instance watches; the member list is
// watched in eventual consistency and, in strict, by the sequencer alone.
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
//     commits the plan, and only then do instances take up new indices.
//
// A plan carries what it changes in the commit it builds on, and a
// commit names the plan it commits; the whole assignment is written with
// each commit to a snapshot key that instances read when they list and no
// one watches. So a rebalance sends each instance its changes, not the
// whole assignment. One plan is in flight at a time. The sequencer
// gathers changes before it plans (until the member list has been quiet for 25ms, for at most
// 200ms plus 1ms per instance), so that a hundred instances joining at
// once make one or a few plans, not a hundred. Every plan and commit is an
// etcd transaction conditional on the sequencer's election key still
// having the revision it won with, on the commit the plan builds on being
// the latest, and on the registry's base (below) being unchanged, so a
// deposed or stale sequencer cannot write.
//
// An instance that cannot reach etcd must not keep its indices while the
// others move on. Each instance's own loop renews its lease every sixth
// of the TTL; nothing else renews it, so an instance whose loop is stuck
// (a callback that never returns) stops renewing and etcd expires it a TTL
// later. With each renewal the instance compares the revisions of its
// member key, the commit and the plan with the ones it knows, and reads
// only those that changed: in steady state a renewal costs the same few
// dozen bytes in a cluster of three or of a thousand. If no renewal sent
// in the last two thirds of the TTL has succeeded, the instance fences
// itself: it gives up its indices, before etcd can expire its lease (etcd
// expires a lease a full TTL after the last renewal it received, which
// was sent no earlier than ours). Once etcd is reachable it revokes the
// old lease and re-joins with a new lease and key, last in join order.
// libcluster never re-registered after an expiry.
//
// The sequencer waits for the acknowledgements of the instances a plan
// concerns, drops those whose member key has gone (they gave up their
// indices before leaving, or before their lease could expire), and
// commits without an instance that stays silent for its TTL after the plan
// was written. That is safe: an instance that has not seen the plan has
// had no success with a renewal sent after the plan was written, because
// such a renewal finds the plan's revision changed and reads it, so it
// fenced itself within two thirds of its TTL of the write; one that has
// seen the plan gave up its indices before calling OnPrepare.
//
// # What strict rests on
//
// The promise rests on assumptions, as every lease does: callbacks return
// promptly (OnRebalance within a third of the TTL, OnPrepare before its
// context ends); clocks run at the same rate within that margin; and no
// one deletes herd's keys or revokes its leases by hand. Above all, a
// process must not be frozen while it holds indices: an instance paused
// (SIGSTOP, a long garbage collection, a suspended VM) for about a TTL or
// longer is dropped by the others, and its indices are given to others,
// while it cannot run to notice; when it wakes up it still believes it
// holds them until its loop runs and fences. No lease protocol can
// prevent that: a paused process cannot act on a deadline. Fence writes
// with the epoch (below) to make the promise hold for what the indices
// guard.
//
// # The epoch
//
// Every committed view has an epoch that grows with every rebalance:
// views with the same epoch agree on Total and Members on every
// instance, and a view with a higher epoch is newer. The epoch is a
// fencing token: an application that writes to a shared store under its
// index includes the epoch, and the store refuses a write whose epoch is
// older than the newest it has seen for that index. In SQL, UPDATE ...
// SET epoch = $e ... WHERE idx = $i AND epoch <= $e; in etcd, a
// transaction that compares the stored epoch (see the fenced write
// example). A paused process that wakes up still believing in an old view
// then cannot do harm.
//
// Epochs count from the registry's base, the key /herd/<key>/<env>/epoch:
// a view's epoch is the base plus the etcd revision of its commit (strict)
// or of its member list (eventual), less the revision the base was
// written at. The base is written when the cluster first lists the
// registry: the time in microseconds, or one more than the highest epoch
// the writer has seen if that is larger. Epochs are therefore large
// numbers (about 1.8e15), but below 2^53, exact in a float64 and in
// JavaScript.
//
// # When etcd loses its data
//
// An etcd restarted with an empty data directory, or restored from a
// backup, goes back: its revision is lower than before, keys are missing
// or older. An instance finds out when a response to a request carries a
// revision below the highest it saw before sending it, or another cluster
// id, or when its member key, the commit, the plan or the base are older
// than it knew them or gone, or when a view would have an epoch below one
// it has seen. It then treats the registry as new: it fences, forgets the
// members, commit and plan it knew, lists and watches again and joins
// with a new lease. The first instance to list a new registry writes a
// new base, above every epoch it has seen; the others see the base change
// and do the same. Keys written under another base are ignored. So the
// epochs any instance sees never go back, and a store fencing by epoch
// keeps accepting the new views' writes.
//
// A restored etcd whose revision has caught up with what an instance saw,
// under the same base, can show none of these signs; the instance's
// renewals, which count the member keys and read the latest change to
// them, then find what its watches missed, and it lists again.
//
// A sequencer that finds no commit under the base waits for the largest
// TTL of the instances it knows, and its own, before its first commit, so
// that instances still holding indices of the registry's previous life
// have fenced themselves first. A new cluster's first commit waits the
// same: nothing tells a new registry from one that lost its data.
//
// # Eventual consistency
//
// WithConsistency(Eventual) skips the two phases: each instance computes
// its view straight from the member list it watches. It is faster, but
// during a rebalance two instances may briefly both believe they hold an
// index, as with libcluster: treat the index as should-be unique there,
// or fence writes with the epoch. After a restore from a backup, an
// instance that joins before the others found out may briefly see an
// epoch that meant another member list before the restore.
//
// # etcd
//
// The client is go.etcd.io/etcd/client/v3, reaching etcd at host:port,
// http:// or https:// endpoints (ParseRegistry, WithTLS). The tests run
// an embedded etcd server of the same version (v3.7) and pass against
// etcd 3.4 (set MEMBERSHIP_ETCD_BINARY to the etcd binary, or
// MEMBERSHIP_ETCD_ENDPOINTS to any server). etcd grants no lease under 2s,
// so MinTTL is 2s.
package membership
