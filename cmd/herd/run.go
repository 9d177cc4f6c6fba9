package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd"
)

const runLong = `herd run starts a primary process that binds the --listen sockets, then
starts N copies of COMMAND (the workers) and supervises them while they serve
traffic from those sockets. It keeps running until it is told to stop.

SOCKETS
  The primary binds every --listen address once, before any worker starts,
  and keeps it open for its whole life: a worker that crashes or is replaced
  never takes a socket, or the connections queued on it, with it. Workers
  inherit the sockets as file descriptors 3, 4, ... in --listen order, with
    LISTEN_FDS       the number of sockets passed
    LISTEN_FDNAMES   their names joined by ":" (NAME= from --listen, else
                     listen0, listen1, ... by position)
    LISTEN_PID       the worker's own pid
  the systemd socket-activation protocol, so sd_listen_fds(3), go-systemd's
  activation package, python-systemd and the like work unchanged. If herd
  was itself socket-activated by systemd, it passes on the sockets it was
  given instead of binding.

  A worker that shuts a shared TCP socket down (shutdown(2) on its copy
  stops it for every process) is caught at once: herd makes the socket listen
  again and logs an error.

KNOWN SERVERS
  herd warns at start, one line each, when the command is a server it knows
  run with a setting known to be wrong: nginx without NGINX="3;", SIGQUIT or
  daemon off; gunicorn, puma, uvicorn or hypercorn told to bind the port
  themselves; puma without bind_to_activated_sockets; uWSGI without
  --protocol http; lighttpd without SIGINT, -D or socket activation;
  waitress-serve. docs/servers.md has a tested recipe for each.

READINESS
  With --ready notify a worker is ready when it sends READY=1 to
  NOTIFY_SOCKET (the sd_notify(3) protocol): a unix datagram socket at a
  plain path in a directory only herd's user can enter, set only with
  --ready notify or --watchdog. Only the worker and its descendants are
  heard. With --ready delay, the default
  for commands, it is ready once it has stayed alive for --ready-delay. A
  worker not ready within --ready-timeout is killed and counted as a crash.
  A rolling restart stops an old worker only once its replacement is ready.

HEALTH AND RECYCLING
  Go workers send heartbeats to the primary over their IPC channel; with
  --watchdog, commands get WATCHDOG_USEC and send WATCHDOG=1 on
  NOTIFY_SOCKET. A worker silent for two intervals is hung: it is replaced
  and killed. A worker is recycled (replaced, its successor ready first, one
  at a time) after --max-requests requests, past --memory-limit of resident
  memory, or at --max-age; the jitters keep workers from recycling together.
  --max-requests needs commands that report their requests over HERD_IPC:
  herd logs an error once when one does not.

AUTOSCALING
  With --autoscale, herd adds a worker while their average CPU use stays
  above --scale-up-cpu for --scale-up-after, and removes one while it stays
  below --scale-down-cpu for --scale-down-after, within --min-workers and
  --max-workers and never during a rolling restart. With --scale-up-queue N
  it also adds one while N or more connections keep waiting in the accept
  queues for --scale-up-after.

MULTI-NODE CLUSTER
  Workers can hold a cluster-wide index. Static: with --cluster-base B and
  --cluster-total T, slot s holds index B+s of T. Dynamic: with --registry
  etcd://HOST:PORT the node joins cluster --cluster-key on etcd; a node's
  base is the sum of the worker counts of the nodes before it (--order),
  and with --consistency strict no index is ever held twice at once. When
  its index or the total changes, a command worker is restarted, signalled
  or left alone (--on-rebalance). Restarted in strict consistency, a
  command worker holds its index from its start until its exit is reaped:
  a worker losing its index is stopped, and the node acknowledges the
  rebalance only once it has exited; its replacement gets its new index
  only after the rebalance is committed. A rebalance that comes during a
  rolling restart is never dropped: the workers end on the latest view.
  herd member shows a cluster's views.

SIGNALS
  TERM, INT    Graceful stop: workers get --stop-signal and have
               --shutdown-timeout to finish before SIGKILL; herd exits when
               all are gone. A second TERM or INT kills them at once.
  USR2         Rolling restart: slot by slot, start a new worker, wait until
               it is ready, stop the old one (--max-surge at a time).
  HUP          Forwarded to every worker, or a rolling restart with
               --hup reload.
  TTIN, TTOU   One worker more or less, within --min-workers and
               --max-workers.
  USR1, WINCH  Forwarded to every worker; --forward chooses the signals.

ENVIRONMENT
  Workers inherit herd's environment, plus each --env, and get:
    HERD_WORKER_ID     their slot, 0 to N-1, kept across respawns
    HERD_WORKER_COUNT  the number of slots when they were started
    HERD_GENERATION    how many times the slot has been started, from 1
    HERD_PRIMARY_PID   the primary's pid
    HERD_PORT          the port of the first TCP listener
    HERD_NAME          the cluster name (--name)
    HERD_IPC           the fd of their channel to the primary (heartbeats,
                       stats, delegation; see docs/PROTOCOL.md)
    WATCHDOG_USEC      with --watchdog, its interval in microseconds: send
                       WATCHDOG=1 on NOTIFY_SOCKET at least this often
    HERD_CLUSTER_INDEX with --registry or --cluster-total, their
                       cluster-wide index (-1: do no work)
    HERD_CLUSTER_TOTAL the number of indices in the whole cluster
    HERD_CLUSTER_EPOCH the epoch of that assignment (0 when static)
    LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID, NOTIFY_SOCKET (see above)

CONFIGURATION
  Every flag can also be given as an environment variable, HERD_ and the
  flag name in capitals with _ for - (HERD_READY_TIMEOUT=90s; lists are
  comma-separated: HERD_LISTEN=:8080,admin=unix:/run/app.sock), or in the
  YAML file named by --config or HERD_CONFIG, one key per flag, plus the
  command to run when none follows --:
      workers: 4
      listen: [":8080", "admin=unix:/run/app.sock"]
      ready-timeout: 90s
      respawn: true
      command: [./server, --verbose]
  A flag beats its environment variable, which beats the file, which beats
  the default. Unknown keys and unknown HERD_ variables are errors. HERD_NAME
  and HERD_CLUSTER_TOTAL are ignored when herd itself runs in a herd worker
  (HERD_WORKER_ID is set): they are the outer cluster's.

EXIT STATUS
  0    the cluster was stopped gracefully
  1    failure
  2    bad usage: flag, argument, environment variable or config file
  98   a --listen address is already in use
  127  COMMAND could not be executed`

const runExample = `  # Four workers of ./server sharing port 8080.
  herd run --workers 4 --listen :8080 -- ./server

  # One worker per CPU; the app says READY=1 on NOTIFY_SOCKET when serving.
  herd run --listen http=:8080 --ready notify -- python3 app.py

  # An HTTP and an admin socket; SIGHUP reloads the workers one by one.
  herd run --listen http=:80 --listen admin=unix:/run/app.sock,mode=0660 \
      --hup reload -- ./server --config /etc/app.conf

  # Recycle workers past 512MiB; scale from 2 to 16 workers with the CPU load.
  herd run --listen :8080 --workers 4 --min-workers 2 --max-workers 16 \
      --memory-limit 512MiB --autoscale -- ./server

  # Join cluster api on etcd; each worker reads its HERD_CLUSTER_INDEX.
  herd run --listen :8080 --registry etcd://10.0.0.1:2379,10.0.0.2:2379 \
      --cluster-key api -- ./server`

// newRunCmd returns the run command, which starts clusters with start.
func newRunCmd(start startFunc) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "run [flags] -- COMMAND [ARGS...]",
		Short:   "Run COMMAND as a cluster of workers sharing the listening sockets",
		Long:    runLong,
		Example: runExample,
	}
	f := addClusterFlags(cmd)
	// Flags end at COMMAND even without "--": herd run ./server -v.
	cmd.Flags().SetInterspersed(false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		defer f.ctl.closeLog()
		cfg, err := f.runConfig(cmd, args)
		if err != nil {
			return err
		}
		return start(context.Background(), cfg)
	}
	return cmd
}

// runConfig returns the Config of herd run: the cluster flags, with
// Command from args or else the config file's command, checked to be
// executable.
func (f *clusterFlags) runConfig(cmd *cobra.Command, args []string) (herd.Config, error) {
	cfg, err := f.config(cmd)
	if err != nil {
		return herd.Config{}, err
	}
	if len(args) > 0 {
		cfg.Command = args
	}
	if len(cfg.Command) == 0 {
		return herd.Config{}, usageErrorf("no command to run: give it after --, as in herd run --listen :8080 -- ./server, or as command: in the config file")
	}
	// The command changes defaults (the name, the ready mode): check again.
	if err := cfg.Validate(); err != nil {
		return herd.Config{}, &usageError{err}
	}
	if err := checkCommand(cfg); err != nil {
		if len(args) == 0 {
			err = fmt.Errorf("%s: %w", f.fileCommandAt, err)
		}
		return herd.Config{}, &execError{err}
	}
	for _, msg := range serverWarnings(cfg) {
		cfg.Logger.Warn(msg)
	}
	return cfg, nil
}

// checkCommand reports a Command that workers could not execute: a path
// (relative to Dir) that is no executable file, or a name not in PATH.
func checkCommand(cfg herd.Config) error {
	name := cfg.Command[0]
	if !strings.Contains(name, "/") {
		for _, kv := range cfg.Env {
			if strings.HasPrefix(kv, "PATH=") {
				return nil // the workers' PATH is not ours
			}
		}
		if _, err := exec.LookPath(name); err != nil && !errors.Is(err, exec.ErrDot) {
			return fmt.Errorf("command %s: not found in PATH", name)
		}
		return nil
	}
	path := name
	if !filepath.IsAbs(path) && cfg.Dir != "" {
		path = filepath.Join(cfg.Dir, path)
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Errorf("command %s: %w", name, errors.Unwrap(err))
	case fi.IsDir():
		return fmt.Errorf("command %s: is a directory", name)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("command %s: not executable", name)
	}
	return nil
}

// runCluster starts the cluster described by cfg and runs it until it
// stops. The library handles the signals itself.
func runCluster(ctx context.Context, cfg herd.Config) error {
	c, err := herd.New(cfg, nil)
	if err != nil {
		return err
	}
	return c.Run(ctx)
}
