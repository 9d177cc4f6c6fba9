package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd/internal/control"
)

const dashboardLong = `Serve the live dashboard of a running cluster to a browser on this machine.

herd dashboard finds the primary as the other client commands do (--name,
--control, or --control-addr with --token-file), listens on a loopback port
and forwards the page and the API to the primary. It prints a link with a
one-time token: the first browser to open it gets a session (an HttpOnly,
SameSite=Strict cookie) and the link is spent; run herd dashboard again for
another browser. The bearer token of --token-file stays in this process:
the browser never sees it. Changes made from the page carry a CSRF token.

The dashboard shows the workers live (status, pid, generation, uptime,
restarts by reason, CPU and memory over the last 15 minutes), the timeline
of lifecycle events, each slot's output, the load-balancer state and what
runs; it can restart, scale, signal and take the node out of rotation.

It runs until interrupted (Ctrl-C).`

// newDashboardCmd returns herd dashboard.
func newDashboardCmd() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:     "dashboard",
		Short:   "Open the live dashboard of a running cluster in a browser",
		Long:    dashboardLong,
		Example: "  herd dashboard --name app\n  herd dashboard --control-addr 10.0.0.5:9000 --token-file ~/.herd-token --addr 127.0.0.1:8099",
		Args:    noArgs,
	}
	f := addClientFlags(cmd)
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:0", "Loopback `HOST:PORT` to serve the dashboard on (port 0: any free port).")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		t, err := f.target(cmd.Flags())
		if err != nil {
			return err
		}
		if err := checkLoopback(addr); err != nil {
			return usageErrorf("--addr: %w", err)
		}
		ctx, cancel := clientContext(cmd)
		defer cancel()
		return serveDashboard(ctx, cmd, t, addr)
	}
	return cmd
}

// checkLoopback accepts only host:port addresses of this machine's
// loopback: the dashboard's link is the only key, and it must not travel.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("must be host:port, such as 127.0.0.1:8099")
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address: the dashboard serves this machine only (reach a remote primary with --control-addr)", host)
	}
	return nil
}

// serveDashboard checks that the primary answers, then serves its
// dashboard on addr until ctx ends.
func serveDashboard(ctx context.Context, cmd *cobra.Command, t control.Target, addr string) error {
	c, err := control.NewClient(t)
	if err != nil {
		return err
	}
	doc, err := c.Stats(ctx)
	c.Close()
	if err != nil {
		return err
	}
	d, err := control.NewDashboard(t)
	if err != nil {
		return err
	}
	defer d.Close()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	base, stop := context.WithCancel(context.Background())
	defer stop()
	srv := &http.Server{
		Handler:           d,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug),
	}
	fmt.Fprintf(cmd.OutOrStdout(), "dashboard of %s (%s); open this link, which works once:\n%s\n",
		doc.Primary.Name, t, d.LoginURL("http://"+l.Addr().String()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err = <-errc:
		return err
	case <-ctx.Done():
	}
	stop() // ends the streams, so that Shutdown does not wait for them
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return nil
}
