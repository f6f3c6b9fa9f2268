package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/evidenced/evidenced/internal/service"
)

func fleetCommand() *command {
	return &command{
		name: "fleet", args: "[clear HOST]",
		summary: "at a console: each dock host's last checkpoint, its age, records indexed and flags; each camera's last dock, and the published inventory's cameras that never docked; `clear HOST --reason TEXT` lifts a host's broken or withheld flag once its history verifies again",
		setup: func(fs *flag.FlagSet) runner {
			asJSON := fs.Bool("json", false, "print JSON")
			reason := fs.String("reason", "", "why you are looking, or why the flag may be lifted (recorded in the custody ledger; required by clear)")
			orphans := fs.Bool("orphans", false, "also list stored objects no trusted host's records name (lists the whole store)")
			return func(ctx context.Context, e *env) error {
				switch {
				case fs.NArg() == 0:
				case fs.Arg(0) == "clear" && fs.NArg() == 2:
					return fleetClear(ctx, e, fs.Arg(1), *reason, *asJSON)
				case fs.Arg(0) == "clear":
					return usageErrorf("fleet clear: missing HOST (usage: evidenced fleet clear HOST --reason TEXT)")
				default:
					return usageErrorf("fleet: unknown subcommand %q (usage: evidenced fleet [--json] | evidenced fleet clear HOST --reason TEXT)", fs.Arg(0))
				}
				fleet, err := e.svc.Fleet(ctx, e.caller(), service.FleetOptions{Reason: *reason, Orphans: *orphans})
				if err != nil {
					return err
				}
				if *asJSON {
					return printJSON(e.stdout, fleet)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "HOST\tTRUSTED\tCHECKPOINT\tLAST_RECORD\tAGE\tRECORDS\tITEMS\tNOT_VERIFIED\tOLDEST\tUNVERIFIED\tFLAGS")
				for _, h := range fleet.Hosts {
					last, age := "-", "-"
					if !h.LastRecordAt.IsZero() {
						last, age = h.LastRecordAt.UTC().Format(time.RFC3339), h.Age.String()
					}
					flags := strings.Join(h.Flags, "; ")
					if flags == "" {
						flags = "-"
					}
					oldest := "-"
					if !h.OldestNotVerifiedAt.IsZero() {
						oldest = time.Since(h.OldestNotVerifiedAt).Round(time.Second).String()
					}
					fmt.Fprintf(tw, "%s\t%t\t%d\t%s\t%s\t%d\t%d\t%d\t%s\t%d\t%s\n", h.ID, h.Trusted, h.Checkpoint, last, age, h.Records, h.Items,
						h.NotVerified, oldest, h.Unverified, printable(flags))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintln(e.stdout)
				tw = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "CAMERA\tKIND\tASSIGNED_TO\tSTATE\tLAST_DOCKED\tAT_HOST\tDAYS_SINCE")
				for _, c := range fleet.Cameras {
					last, host, days := "-", "-", "-"
					if c.DaysSinceDock != nil {
						last, host, days = c.LastDockedAt.UTC().Format(time.RFC3339), c.Host, fmt.Sprint(*c.DaysSinceDock)
					}
					if c.HostFlag != "" {
						host += " (" + c.HostFlag + ")"
					}
					state := c.State
					if !c.ListedSince.IsZero() {
						state += " (listed since " + c.ListedSince.UTC().Format(time.DateOnly) + ")"
					}
					if d := c.LastServedDock; d != nil {
						state += " (last served dock at " + d.Host + " " + d.At.UTC().Format(time.RFC3339) + ")"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Serial, c.Kind, printable(c.AssignedTo), state, last, host, days)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if fleet.InventoryProblem != "" {
					fmt.Fprintf(e.stdout, "\nINVENTORY PROBLEM: %s\n", printable(fleet.InventoryProblem))
				}
				if *orphans {
					fmt.Fprintf(e.stdout, "\n%d orphan(s): stored objects no trusted host's records name\n", len(fleet.Orphans))
					for _, o := range fleet.Orphans {
						fmt.Fprintf(e.stdout, "ORPHAN %s (version %s, %s)\n", printable(o.Key), o.VersionID, humanBytes(o.Size))
					}
				}
				return nil
			}
		},
	}
}

// fleetClear lifts HOST's flag (service.ClearHost): the console re-checks
// the host's anchored history first (catalog.Clear) and refuses, naming
// the first problem, when it still does not verify.
func fleetClear(ctx context.Context, e *env, host, reason string, asJSON bool) error {
	if strings.TrimSpace(reason) == "" {
		return usageErrorf("fleet clear: --reason is required (what was investigated)")
	}
	res, err := e.svc.ClearHost(ctx, e.caller(), service.ClearHostOptions{Host: host, Reason: reason})
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, res)
	}
	fmt.Fprintf(e.stdout, "%s cleared: its anchored history verifies up to checkpoint %d (%s, root %s); recorded as HOST_CLEARED (seq %d)\n",
		printable(res.Host), res.Checkpoint, printable(res.Object), res.Root, res.Seq)
	for _, p := range res.Cleared {
		fmt.Fprintf(e.stdout, "  was: %s\n", printable(p))
	}
	return nil
}
