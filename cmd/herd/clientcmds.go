package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd/internal/control"
)

// newStatusCmd returns herd status: the worker table, or --json.
func newStatusCmd() *cobra.Command {
	var asJSON bool
	cmd, _ := clientCommand("status", "Show the workers of a running cluster", noArgs,
		func(cmd *cobra.Command, c *control.Client, _ []string) error {
			doc, err := c.Stats(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONLine(cmd.OutOrStdout(), doc)
			}
			return writeStatus(cmd.OutOrStdout(), doc)
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "Print the GET /stats document.")
	return cmd
}

// writeStatus writes the cluster line and the worker table, pm2 ls style.
func writeStatus(w io.Writer, doc control.StatsDoc) error {
	p, c := doc.Primary, doc.Cluster
	fmt.Fprintf(w, "%s: primary pid %d, up %s, %d workers (%d active, %d crashed, %d disabled), %d restarts, %d crashes",
		p.Name, p.PID, shortDuration(p.UptimeSeconds), c.Workers, c.Active, c.Crashed, c.Disabled, p.TotalRestarts, p.TotalCrashes)
	if c.RestartInProgress {
		fmt.Fprint(w, ", rolling restart in progress")
	}
	if c.ShutdownRequested {
		fmt.Fprint(w, ", stopping")
	}
	fmt.Fprintln(w)
	if m := doc.Membership; m != nil {
		fmt.Fprintf(w, "cluster: instance %s, %s of %d, epoch %d\n", m.Instance, heldIndices(m), m.Total, m.Epoch)
	}
	for _, l := range doc.Listeners {
		writeListener(w, l)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "SLOT\tPID\tGEN\tSTATUS\tUPTIME\tRESTARTS\tCPU\tMEMORY"
	if doc.Membership != nil {
		header += "\tINDEX"
	}
	fmt.Fprintln(tw, header)
	for _, ws := range doc.Workers {
		pid, up, cpu, mem := "-", "-", "-", "-"
		if ws.PID > 0 {
			pid, up = strconv.Itoa(ws.PID), shortDuration(ws.UptimeSeconds)
			cpu, mem = strconv.FormatFloat(ws.CPUPercent, 'f', 1, 64)+"%", control.FormatBytes(ws.RSSBytes)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%d\t%s\t%s", ws.Slot, pid, ws.Generation, ws.Status, up, ws.CrashCount, cpu, mem)
		if doc.Membership != nil && ws.ClusterIndex != nil {
			fmt.Fprintf(tw, "\t%d", *ws.ClusterIndex)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// writeListener writes the accept-queue line of one listener: "listener
// web: 3 of 2048 connections waiting, 0 dropped", with the slots that hold
// connections for reuseport, and a warning while none is accepted.
func writeListener(w io.Writer, l control.ListenerStats) {
	fmt.Fprintf(w, "listener %s: %d of %d connections waiting, %d dropped", l.Name, l.QueueDepth, l.QueueLimit, l.Overflows)
	var busy []string
	for _, s := range l.Slots {
		if s.QueueDepth > 0 {
			busy = append(busy, fmt.Sprintf("%d on slot %d", s.QueueDepth, s.Slot))
		}
	}
	if len(busy) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(busy, ", "))
	}
	if l.Stuck {
		fmt.Fprint(w, "; STUCK: none accepted for 2s or more")
	}
	fmt.Fprintln(w)
}

// heldIndices describes the indices a node holds: "indices 3-6",
// "index 2", or "no index" while it holds none.
func heldIndices(m *control.MembershipStats) string {
	switch {
	case m.Index < 0 || m.Threads == 0:
		return "no index"
	case m.Threads == 1:
		return fmt.Sprintf("index %d", m.Index)
	}
	return fmt.Sprintf("indices %d-%d", m.Index, m.Index+m.Threads-1)
}

// shortDuration formats seconds like pm2: 45s, 12m, 3h, 2D.
func shortDuration(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 24*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h"
	}
	return strconv.Itoa(int(d.Hours()/24)) + "D"
}

// newReloadCmd returns herd reload: a rolling restart, followed until it
// finished or failed.
func newReloadCmd() *cobra.Command {
	var slot int
	cmd, _ := clientCommand("reload", "Replace the workers one by one (a rolling restart) and wait for the outcome", noArgs,
		func(cmd *cobra.Command, c *control.Client, _ []string) error {
			if err := checkSlotFlag(cmd, slot); err != nil {
				return err
			}
			ctx, cancel := clientContext(cmd)
			defer cancel()
			return clientReload(ctx, cmd.OutOrStdout(), c, slot)
		})
	cmd.Flags().IntVar(&slot, "slot", -1, "Replace only the worker of slot `N`.")
	cmd.Flags().Lookup("slot").DefValue = "every slot"
	return cmd
}

// newScaleCmd returns herd scale N|+N|-N. Its flags are parsed by hand so
// that -1 is a number, not a flag.
func newScaleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:                "scale N|+N|-N",
		Short:              "Set the number of workers, or change it by N",
		DisableFlagParsing: true,
	}
	f := addClientFlags(cmd)
	cmd.Flags().BoolP("help", "h", false, "Show this help.")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var nums, rest []string
		for _, a := range args {
			if _, _, err := control.ParseScaleArg(a); err == nil && len(nums) == 0 {
				nums = append(nums, a)
				continue
			}
			rest = append(rest, a)
		}
		if err := cmd.Flags().Parse(rest); err != nil {
			return flagError(cmd, err)
		}
		if help, _ := cmd.Flags().GetBool("help"); help {
			return cmd.Help()
		}
		if len(nums) != 1 || cmd.Flags().NArg() > 0 {
			return usageErrorf("scale: want one number of workers: N, +N or -N")
		}
		c, err := f.client(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		return clientScale(cmd, c, nums[0])
	}
	return cmd
}

// clientScale sets the number of workers from arg, computing +N and -N from
// the current number.
func clientScale(cmd *cobra.Command, c *control.Client, arg string) error {
	n, relative, _ := control.ParseScaleArg(arg) // checked by the caller
	if relative {
		doc, err := c.Stats(cmd.Context())
		if err != nil {
			return err
		}
		n += doc.Cluster.Workers
		if n < 0 {
			return fmt.Errorf("cannot scale %d workers by %s", doc.Cluster.Workers, arg)
		}
	}
	if err := c.Scale(cmd.Context(), n); err != nil {
		return err
	}
	_, err := fmt.Fprintf(cmd.OutOrStdout(), "scaled to %d workers\n", n)
	return err
}

// newStopCmd returns herd stop: a graceful stop, waited for.
func newStopCmd() *cobra.Command {
	var timeout time.Duration
	cmd, _ := clientCommand("stop", "Stop the workers gracefully and the primary with them", noArgs,
		func(cmd *cobra.Command, c *control.Client, _ []string) error {
			if timeout < 0 {
				return usageErrorf("--timeout: %s is negative", timeout)
			}
			ctx, cancel := clientContext(cmd)
			defer cancel()
			return clientStop(ctx, cmd.OutOrStdout(), c, timeout)
		})
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "Kill the workers still running after `DURATION`. Default: the cluster's --shutdown-timeout.")
	return cmd
}

// checkSlotFlag refuses a negative --slot. Without the flag slot is -1,
// every slot; given on the command line, -1 is as wrong as -2 (the API
// refuses negative slots too), and must not widen the command to every
// worker.
func checkSlotFlag(cmd *cobra.Command, slot int) error {
	if slot < 0 && cmd.Flags().Changed("slot") {
		return usageErrorf("--slot: %d is negative", slot)
	}
	return nil
}

// newSignalCmd returns herd signal SIG [--slot N].
func newSignalCmd() *cobra.Command {
	var slot int
	cmd, _ := clientCommand("signal SIGNAL", "Send a signal to every worker, or to one", exactArgs(1, "one signal such as USR1"),
		func(cmd *cobra.Command, c *control.Client, args []string) error {
			sig, err := control.ParseSignal(args[0])
			if err != nil {
				return usageErrorf("signal: %w", err)
			}
			if err := checkSlotFlag(cmd, slot); err != nil {
				return err
			}
			if err := c.Signal(cmd.Context(), control.SignalName(sig), slot); err != nil {
				return err
			}
			to := "every worker"
			if slot >= 0 {
				to = "the worker of slot " + strconv.Itoa(slot)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "sent %s to %s\n", control.SignalName(sig), to)
			return err
		})
	cmd.Flags().IntVar(&slot, "slot", -1, "Send it only to the worker of slot `N`.")
	cmd.Flags().Lookup("slot").DefValue = "every worker"
	return cmd
}

// newECVCmd returns herd ecv enable|disable|status.
func newECVCmd() *cobra.Command {
	var path string
	cmd, _ := clientCommand("ecv enable|disable|status", "Take the node into or out of load-balancer rotation, or show its ECV",
		exactArgs(1, "enable, disable or status"),
		func(cmd *cobra.Command, c *control.Client, args []string) error {
			out := cmd.OutOrStdout()
			switch args[0] {
			case "enable", "disable":
				if err := c.SetECV(cmd.Context(), path, args[0] == "enable"); err != nil {
					return err
				}
				_, err := fmt.Fprintf(out, "ecv %sd\n", args[0])
				return err
			case "status":
				code, body, err := c.ECV(cmd.Context(), path)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(out, "%d %s\n", code, body)
				return err
			}
			return usageErrorf("ecv: %q is not enable, disable or status", args[0])
		})
	cmd.Flags().StringVar(&path, "ecv-path", control.DefaultECVPath, "The primary's --ecv-path.")
	return cmd
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
