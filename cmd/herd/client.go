package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/herd-cluster/herd/internal/control"
)

// clientFlags are the flags that find the primary a client command talks
// to.
type clientFlags struct {
	name        string
	control     string
	controlAddr string
	tokenFile   string
}

// addClientFlags registers --name, --control, --control-addr and
// --token-file on cmd.
func addClientFlags(cmd *cobra.Command) *clientFlags {
	f := &clientFlags{}
	fs := cmd.Flags()
	fs.StringVar(&f.name, "name", "", "Cluster `NAME` (as herd run --name): its socket is in the default directory. Env HERD_NAME. Default: the only cluster running there.")
	fs.StringVar(&f.control, "control", "", "Unix socket `PATH` of the primary (as herd run --control). Env HERD_CONTROL.")
	fs.StringVar(&f.controlAddr, "control-addr", "", "TCP `HOST:PORT` of the primary (as herd run --control-addr). Env HERD_CONTROL_ADDR.")
	fs.StringVar(&f.tokenFile, "token-file", "", "`FILE` holding the bearer token for --control-addr. Env HERD_TOKEN_FILE.")
	return f
}

// fromEnv fills the flags not given from their HERD_ variables.
func (f *clientFlags) fromEnv(fs *pflag.FlagSet) {
	for _, v := range []struct {
		flag string
		p    *string
	}{{"name", &f.name}, {"control", &f.control}, {"control-addr", &f.controlAddr}, {"token-file", &f.tokenFile}} {
		if !fs.Changed(v.flag) && *v.p == "" {
			*v.p = os.Getenv(envName(v.flag))
		}
	}
}

// target finds the primary: --control-addr, else --control, else the
// socket of --name, else the only socket in the default directory.
func (f *clientFlags) target(fs *pflag.FlagSet) (control.Target, error) {
	f.fromEnv(fs)
	switch {
	case f.controlAddr != "":
		if f.tokenFile == "" {
			return control.Target{}, usageErrorf("--control-addr needs --token-file")
		}
		tok, err := control.ReadTokenFile(f.tokenFile)
		if err != nil {
			return control.Target{}, usageErrorf("--token-file: %s", strings.TrimPrefix(err.Error(), "control: token file"))
		}
		return control.Target{Addr: f.controlAddr, Token: tok}, nil
	case f.control == control.Off:
		return control.Target{}, usageErrorf("--control -: no socket to talk to")
	case f.control != "":
		return control.Target{Socket: f.control}, nil
	case f.name != "":
		if err := checkName(f.name); err != nil {
			return control.Target{}, usageErrorf("--name: %w", err)
		}
		return control.Target{Socket: namedSocket(f.name)}, nil
	}
	return onlySocket()
}

// namedSocket returns the socket of the cluster name: the first that
// exists in the default directories, else the default one.
func namedSocket(name string) string {
	for _, dir := range control.SocketDirs() {
		path := filepath.Join(dir, name+".sock")
		if _, err := os.Lstat(path); err == nil {
			return path
		}
	}
	return control.DefaultSocket(name)
}

// onlySocket returns the only socket in the default directories.
func onlySocket() (control.Target, error) {
	var socks []string
	for _, dir := range control.SocketDirs() {
		found, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
		socks = append(socks, found...)
	}
	switch len(socks) {
	case 0:
		return control.Target{}, fmt.Errorf("no herd primary is running here (no socket in %s); give --name or --control",
			strings.Join(control.SocketDirs(), " or "))
	case 1:
		return control.Target{Socket: socks[0]}, nil
	}
	names := make([]string, len(socks))
	for i, s := range socks {
		names[i] = strings.TrimSuffix(filepath.Base(s), ".sock")
	}
	return control.Target{}, usageErrorf("several herd primaries run here (%s): choose one with --name", strings.Join(names, ", "))
}

// client returns a client of the primary the flags find.
func (f *clientFlags) client(cmd *cobra.Command) (*control.Client, error) {
	t, err := f.target(cmd.Flags())
	if err != nil {
		return nil, err
	}
	return control.NewClient(t)
}

// clientContext returns a context that ends on SIGINT or SIGTERM, so that
// following commands end cleanly on Ctrl-C.
func clientContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// newClientCmds returns the commands that talk to a running primary.
func newClientCmds() []*cobra.Command {
	return []*cobra.Command{
		newStatusCmd(), newReloadCmd(), newScaleCmd(), newStopCmd(), newSignalCmd(),
		newLogsCmd(), newEventsCmd(), newECVCmd(),
	}
}

// clientCommand builds a client command: use, short help and a run
// function given the client and the positional arguments.
func clientCommand(use, short string, args cobra.PositionalArgs, run func(cmd *cobra.Command, c *control.Client, args []string) error) (*cobra.Command, *clientFlags) {
	cmd := &cobra.Command{Use: use, Short: short, Args: args}
	f := addClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		c, err := f.client(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		return run(cmd, c, a)
	}
	return cmd, f
}

// exactArgs requires n positional arguments, named by what in the message.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s: want %s (see herd %s --help)", cmd.Name(), what, cmd.Name())
		}
		return nil
	}
}
