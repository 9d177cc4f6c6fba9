// Package proctree keeps track of every process a worker starts, so that
// none outlives it, and reaps the orphans that come back to the primary.
//
// A worker's main process is only the root of what it runs: shells start
// helpers, servers fork workers, daemons leave their process group with
// setsid and double fork. When the main process ends, the primary ends the
// rest of its tree (Tree.Signal, then Tree.Kill). How a tree is known
// depends on what the system allows:
//
//   - cgroup mode: on cgroup v2 where the primary may create cgroups (as
//     root, or in a delegated subtree), each worker starts straight into a
//     cgroup of its own, under one cgroup per primary. Every descendant
//     stays in it whatever it does, cgroup.kill ends them all at once, and
//     the cgroup is removed once empty.
//   - group mode, otherwise: a worker's tree is its process group, plus the
//     processes that left it but carry the worker's marks in their
//     environment (HERD_PRIMARY_PID, HERD_WORKER_ID, HERD_GENERATION). The
//     primary becomes a child subreaper, so such processes come back to it
//     when their parent dies, where it finds, kills and reaps them. A
//     process that both leaves the group and clears its environment
//     escapes this mode; cgroup mode has no such gap.
//
// As PID 1, or as a subreaper, the primary also reaps every zombie child
// that nothing else waits for (Reaper).
//
// EndLeftovers ends what a primary of the same name that died (SIGKILL, OOM)
// left behind, before a new one binds its ports.
package proctree
