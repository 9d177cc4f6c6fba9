package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/herd-cluster/herd"
)

// startFunc starts and runs a cluster; tests replace runCluster with one
// that records the Config.
type startFunc func(ctx context.Context, cfg herd.Config) error

const rootLong = `herd is a cluster manager for network servers on Linux.

A primary process owns the listening sockets and supervises N worker
processes that serve traffic from them. It starts the workers one by one,
waits until each is ready, respawns the ones that crash (and disables a slot
that keeps crashing), replaces them one at a time without dropping a
connection, scales them up and down, and stops them gracefully.

Any server in any language can be a worker: the sockets are passed with the
systemd socket-activation protocol (LISTEN_FDS, fds from 3), which most
servers and frameworks already speak. Go programs can also use herd as a
library and be their own primary and workers.

Run "herd run --help" for the options, the signals herd handles, the
environment workers get, the config file and the exit status.`

const rootExample = `  herd run --workers 4 --listen :8080 -- ./server
  herd run --listen http=:8080 --ready notify -- python3 app.py
  herd run --config /etc/herd/app.yaml`

// execute runs the herd command line args with start as the cluster
// runner, prints any error as one line on stderr and returns the exit
// status.
func execute(args []string, stdout, stderr io.Writer, start startFunc) int {
	root := newRootCmd(start)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err != nil {
		printError(stderr, err)
	}
	return exitCode(err)
}

// newRootCmd returns the herd command with its subcommands run, demo,
// version and the clients of a running primary; run starts clusters with
// start.
func newRootCmd(start startFunc) *cobra.Command {
	root := &cobra.Command{
		Use:           "herd",
		Short:         "Run a network server as a supervised cluster of worker processes",
		Long:          rootLong,
		Example:       rootExample,
		Version:       version,
		Args:          noArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(flagError)
	root.SetVersionTemplate("herd {{.Version}}\n")
	root.AddCommand(newRunCmd(start), newDemoCmd(), newMemberCmd(), newVersionCmd(), newDashboardCmd())
	root.AddCommand(newClientCmds()...)
	return root
}

// newVersionCmd returns the version command.
func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print herd's version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "herd %s\n", version)
			return err
		},
	}
}

// noArgs refuses positional arguments, as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return usageErrorf("unknown command %q (see herd --help)", args[0])
	}
	return usageErrorf("%s: unexpected argument %q", cmd.Name(), args[0])
}

// flagError turns a flag parsing error into a usage error that names the
// flag and the value.
func flagError(_ *cobra.Command, err error) error {
	var iv *pflag.InvalidValueError
	if errors.As(err, &iv) {
		return usageErrorf("--%s: invalid value %q: %w", iv.GetFlag().Name, iv.GetValue(), iv.Unwrap())
	}
	return &usageError{err}
}
