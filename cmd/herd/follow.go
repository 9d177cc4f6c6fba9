package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd/internal/control"
)

// clientReload starts a rolling restart once the event stream is open, and
// follows it until it finished or failed.
func clientReload(ctx context.Context, out io.Writer, c *control.Client, slot int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var startErr error // set by the ready callback, on this goroutine
	err := c.Events(ctx, func() {
		if startErr = c.Restart(ctx, slot); startErr != nil {
			cancel()
		}
	}, func(e control.Event) error {
		switch e.Type {
		case "rollout_started":
			fmt.Fprintf(out, "rolling restart of %d workers started\n", e.Workers)
		case "ready":
			fmt.Fprintf(out, "slot %d: new worker pid %d (generation %d) ready\n", e.Slot, e.PID, e.Gen)
		case "stopping":
			fmt.Fprintf(out, "slot %d: old worker pid %d stopping\n", e.Slot, e.PID)
		case "exited":
			fmt.Fprintf(out, "slot %d: worker pid %d exited\n", e.Slot, e.PID)
		case control.EventDropped:
			fmt.Fprintf(out, "missed %d events: herd reload reads too slowly\n", e.Dropped)
		case "rollout_finished":
			fmt.Fprintln(out, "rolling restart finished")
			return control.ErrStop
		case "rollout_failed":
			return fmt.Errorf("rolling restart failed: %s", e.Err)
		}
		return nil
	})
	switch {
	case startErr != nil:
		return startErr
	case errors.Is(err, io.EOF):
		return errors.New("the primary stopped during the rolling restart")
	}
	return err
}

// clientStop asks the primary to stop once the event stream is open, and waits
// until the primary is gone: the stream ends.
func clientStop(ctx context.Context, out io.Writer, c *control.Client, timeout time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stopErr error
	requested := false
	err := c.Events(ctx, func() {
		requested = true
		if stopErr = c.Stop(ctx, timeout); stopErr != nil {
			cancel()
		}
	}, func(e control.Event) error {
		if e.Type == "shutdown" {
			fmt.Fprintln(out, "all workers stopped")
		}
		return nil
	})
	switch {
	case stopErr != nil:
		return stopErr
	case !requested || (ctx.Err() != nil && !errors.Is(err, io.EOF)):
		return err // no stream, or interrupted
	case err != nil && !streamEnd(err):
		return err
	}
	_, err = fmt.Fprintln(out, "stopped")
	return err
}

// streamEnd reports whether err is how a stream ends when the primary
// exits: end of file, or a connection reset.
func streamEnd(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET)
}

// newLogsCmd returns herd logs [-f] [--slot N] [-n LINES].
func newLogsCmd() *cobra.Command {
	q := control.LogsQuery{Slot: -1, Lines: 100}
	var asJSON bool
	cmd, _ := clientCommand("logs", "Show the last lines the workers wrote, and follow them with -f", noArgs,
		func(cmd *cobra.Command, c *control.Client, _ []string) error {
			if err := checkSlotFlag(cmd, q.Slot); err != nil {
				return err
			}
			if q.Lines < 0 {
				return usageErrorf("--lines: %d is negative", q.Lines)
			}
			ctx, cancel := clientContext(cmd)
			defer cancel()
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			err := c.Logs(ctx, q, func(l control.LogLine) error {
				switch {
				case asJSON:
					return writeJSONLine(out, l)
				case l.Stream == "herd":
					_, err := fmt.Fprintln(errOut, l.Text)
					return err
				}
				_, err := fmt.Fprintf(out, "[%d] %s\n", l.Slot, l.Text)
				return err
			})
			if q.Follow && errors.Is(err, context.Canceled) {
				return nil // Ctrl-C
			}
			return err
		})
	fs := cmd.Flags()
	fs.BoolVarP(&q.Follow, "follow", "f", false, "Keep printing new lines until interrupted.")
	fs.IntVar(&q.Slot, "slot", -1, "Only the worker output of slot `N`.")
	fs.Lookup("slot").DefValue = "every slot, interleaved"
	fs.IntVarP(&q.Lines, "lines", "n", 100, "Show the last `LINES` lines first.")
	fs.BoolVar(&asJSON, "json", false, "Print each line as a JSON object: time, slot, pid, stream, text.")
	return cmd
}

// newEventsCmd returns herd events: every lifecycle event as it happens.
func newEventsCmd() *cobra.Command {
	var asJSON bool
	cmd, _ := clientCommand("events", "Print the cluster's lifecycle events as they happen", noArgs,
		func(cmd *cobra.Command, c *control.Client, _ []string) error {
			ctx, cancel := clientContext(cmd)
			defer cancel()
			out := cmd.OutOrStdout()
			ready := func() { fmt.Fprintln(cmd.ErrOrStderr(), "herd: following events; Ctrl-C to stop") }
			err := c.Events(ctx, ready, func(e control.Event) error {
				if asJSON {
					return writeJSONLine(out, e)
				}
				_, err := fmt.Fprintln(out, eventLine(e))
				return err
			})
			if errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
				return nil // Ctrl-C, or the primary stopped
			}
			return err
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "Print each event as a JSON object.")
	return cmd
}

// eventLine renders e as one human line.
func eventLine(e control.Event) string {
	var b strings.Builder
	b.WriteString(e.Time.Local().Format("15:04:05.000") + " " + e.Type)
	if e.Slot >= 0 {
		fmt.Fprintf(&b, " slot=%d", e.Slot)
	}
	if e.PID != 0 {
		fmt.Fprintf(&b, " pid=%d gen=%d", e.PID, e.Gen)
	}
	if e.Type == "exited" {
		fmt.Fprintf(&b, " status=%d crash=%v", e.Status, e.Crash)
	}
	for _, kv := range [][2]string{{"signal", e.Signal}, {"reason", e.Reason}, {"err", e.Err}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s=%q", kv[0], kv[1])
		}
	}
	if e.Type == "scaled" || e.Type == "rollout_started" {
		fmt.Fprintf(&b, " workers=%d", e.Workers)
	}
	if e.Dropped > 0 {
		fmt.Fprintf(&b, " dropped=%d", e.Dropped)
	}
	return b.String()
}
