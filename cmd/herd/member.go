package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd/membership"
)

// memberLeaveTimeout bounds the graceful leave on SIGINT or SIGTERM.
const memberLeaveTimeout = 5 * time.Second

const memberLong = `herd member joins a cluster as one instance, prints every view it gets and
leaves on SIGINT or SIGTERM. It does no work: it shows how the cluster hands
out indices, like libcluster's cluster-test.

An instance with COUNT threads holds COUNT consecutive indices, from its base
to base+COUNT-1, out of the cluster's total.

  Static (-I INDEX -T TOTAL): the instance's base and the total are given;
  nothing is coordinated and the epoch is 0.

  Dynamic (-r etcd://HOST:PORT[,HOST:PORT...], or http:// or https://
  endpoints as etcd takes them, with --registry-ca, --registry-cert and
  --registry-key for TLS): the instance registers under
  /herd/KEY/ENV/members/ID on an etcd v3 lease of --ttl. Bases follow join
  order (--order join: a newcomer never shifts the others) or instance id
  (--order id). With --consistency strict (the default) an elected
  sequencer rebalances in two phases and no index is ever held by two
  instances at once; each committed view has a new epoch. With eventual,
  views come straight from the member list. While etcd cannot be reached
  herd member retries with backoff and says so on stderr.

Each view is one line on stdout:
  index=I threads=N total=T epoch=E members=ID:BASE+N,...
or, with --json, one object with index, threads, total, epoch and members.
Index -1 means the instance holds no index.

EXIT STATUS
  0    left the cluster after SIGINT or SIGTERM
  1    failure
  2    bad usage, such as a registry URI that is not etcd://, http:// or
       https:// host:port endpoints`

const memberExample = `  herd member -k mycluster -e dev -i node1 -n 2 -r etcd://127.0.0.1:2379
  herd member -k mycluster -r http://127.0.0.1:2379/
  herd member -I 3 -T 7 -n 4
  herd member -r etcd://10.0.0.1:2379,10.0.0.2:2379 --consistency eventual --json
  herd member -r https://etcd.example:2379 --registry-ca ca.pem --registry-cert node.pem --registry-key node-key.pem`

// memberFlags are the values of herd member's flags.
type memberFlags struct {
	key, env, id, registry string
	tls                    registryTLS
	threads, index, total  int
	verbose, json, static  bool
	ttl                    time.Duration
	consistency, order     string
}

// newMemberCmd returns herd member, the libcluster cluster-test
// equivalent.
func newMemberCmd() *cobra.Command {
	f := &memberFlags{env: membership.DefaultEnv, threads: 1, ttl: membership.DefaultTTL,
		consistency: string(membership.Strict), order: string(membership.OrderJoin), key: "herd-member"}
	cmd := &cobra.Command{
		Use:     "member [flags]",
		Short:   "Join a cluster's membership and print every rebalance",
		Long:    memberLong,
		Example: memberExample,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.static = cmd.Flags().Changed("index") || cmd.Flags().Changed("total")
			opts, err := f.options(cmd.ErrOrStderr(), cmd.OutOrStdout())
			if err != nil {
				return err
			}
			return runMember(f.key, opts)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVarP(&f.key, "key", "k", f.key, "Cluster key, typically the application's name.")
	fs.StringVarP(&f.env, "env", "e", f.env, "Cluster environment.")
	fs.StringVarP(&f.id, "id", "i", "", "Instance identifier. Default: a random UUID.")
	fs.IntVarP(&f.threads, "threads", "n", f.threads, "Thread count: the number of indices this instance holds.")
	fs.StringVarP(&f.registry, "registry", "r", "", "etcd registry, etcd://HOST:PORT[,HOST:PORT...] (or http://, https://): a dynamic cluster.")
	fs.StringVar(&f.tls.ca, "registry-ca", "", "PEM file of the authorities an https:// registry is checked against. Default: the system's.")
	fs.StringVar(&f.tls.cert, "registry-cert", "", "PEM file of a client certificate for an https:// registry, with --registry-key.")
	fs.StringVar(&f.tls.key, "registry-key", "", "PEM file of the key of --registry-cert.")
	fs.IntVarP(&f.index, "index", "I", f.index, "This instance's base index in a static cluster (with -T).")
	fs.IntVarP(&f.total, "total", "T", f.total, "The total of indices in a static cluster (with -I).")
	fs.VarP(&durationValue{p: &f.ttl}, "ttl", "", "Lease TTL: how long after a crash the others drop this instance (2s at least).")
	fs.Var(&enumValue{&f.consistency, []string{"strict", "eventual"}}, "consistency", "strict or eventual.")
	fs.Var(&enumValue{&f.order, []string{"join", "id"}}, "order", "Order of the bases: join or id.")
	fs.BoolVar(&f.json, "json", false, "Print each view as a JSON object.")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "Log what the membership does (debug level) on stderr.")
	return cmd
}

// options checks the flags and returns the session options, logging to
// stderr and printing views to stdout.
func (f *memberFlags) options(stderr, stdout io.Writer) ([]membership.Option, error) {
	level := "info"
	if f.verbose {
		level = "debug"
	}
	opts := []membership.Option{
		membership.WithEnv(f.env), membership.WithThreads(f.threads), membership.WithTTL(f.ttl),
		membership.WithConsistency(membership.Consistency(f.consistency)),
		membership.WithOrder(membership.Order(f.order)), membership.WithVersion(version),
		membership.WithLogger(newLogger(stderr, "text", level)),
		membership.WithOnRebalance(viewPrinter(stdout, f.json)),
	}
	if f.id != "" {
		opts = append(opts, membership.WithInstanceID(f.id))
	}
	switch {
	case f.static && f.registry != "":
		return nil, usageErrorf("member: give -r for a dynamic cluster or -I and -T for a static one, not both")
	case f.static && (f.index < 0 || f.total < 1):
		return nil, usageErrorf("member: a static cluster needs both -I INDEX (0 or more) and -T TOTAL")
	case f.static && (f.tls != registryTLS{}):
		return nil, usageErrorf("member: --registry-ca, --registry-cert and --registry-key need -r https://")
	case f.static:
		return append(opts, membership.WithStatic(f.index, f.total)), nil
	case f.registry == "":
		return nil, usageErrorf("member: give -r etcd://HOST:PORT for a dynamic cluster, or -I INDEX -T TOTAL for a static one")
	}
	eps, err := membership.ParseRegistry(f.registry)
	if err != nil {
		return nil, &usageError{fmt.Errorf("member: -r: %w", err)}
	}
	if err := f.tls.check(f.registry); err != nil {
		return nil, usageErrorf("member: %v", err)
	}
	opts = append(opts, membership.WithEndpoints(eps...))
	if strings.HasPrefix(f.registry, "https://") {
		cfg, err := membership.TLSConfig(f.tls.ca, f.tls.cert, f.tls.key)
		if err != nil {
			return nil, usageErrorf("member: %v", err)
		}
		opts = append(opts, membership.WithTLS(cfg))
	}
	return opts, nil
}

// runMember joins cluster key and stays until SIGINT or SIGTERM, then
// leaves.
func runMember(key string, opts []membership.Option) error {
	s, err := membership.New(key, opts...)
	if err != nil {
		return &usageError{fmt.Errorf("member: %w", err)}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := s.Join(ctx); err != nil && ctx.Err() == nil {
		s.Close()
		return fmt.Errorf("member: %w", err)
	}
	select {
	case <-ctx.Done():
	case <-s.Done():
		return fmt.Errorf("member: %w", s.Err())
	}
	lctx, cancel := context.WithTimeout(context.Background(), memberLeaveTimeout)
	defer cancel()
	if err := s.Leave(lctx); err != nil {
		return fmt.Errorf("member: %w", err)
	}
	return nil
}

// viewPrinter returns a rebalance callback that prints each view on w as
// a line, or as JSON.
func viewPrinter(w io.Writer, asJSON bool) func(membership.View) {
	enc := json.NewEncoder(w)
	return func(v membership.View) {
		if v.Members == nil {
			v.Members = []membership.Member{}
		}
		if asJSON {
			enc.Encode(v)
			return
		}
		ms := make([]string, len(v.Members))
		for i, m := range v.Members {
			ms[i] = fmt.Sprintf("%s:%d+%d", m.ID, m.Base, m.Threads)
		}
		fmt.Fprintf(w, "index=%d threads=%d total=%d epoch=%d members=%s\n",
			v.Index, v.Threads, v.Total, v.Epoch, strings.Join(ms, ","))
	}
}
