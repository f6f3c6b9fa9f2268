package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/service"
)

func findCommand() *command {
	return &command{
		name: "find", summary: "find recordings by camera, officer or vehicle, and recording time",
		setup: func(fs *flag.FlagSet) runner {
			camera := fs.String("camera", "", "camera serial")
			assigned := fs.String("assigned-to", "", "officer or vehicle the camera is issued to")
			since := fs.String("since", "", "recorded at or after (RFC 3339 or YYYY-MM-DD, UTC)")
			until := fs.String("until", "", "recorded before (RFC 3339 or YYYY-MM-DD, UTC)")
			asJSON := fs.Bool("json", false, "print a JSON array")
			reason := fs.String("reason", "", "why you are searching (recorded in the custody ledger)")
			host := fs.String("host", "", "at a console: only the items of this dock host")
			return func(ctx context.Context, e *env) error {
				f := custody.Filter{Camera: *camera, AssignedTo: *assigned}
				var err error
				if f.Since, f.Until, err = parseSpan(*since, *until); err != nil {
					return err
				}
				items, err := e.svc.Find(ctx, e.caller(), service.FindOptions{Filter: f, Reason: *reason, Host: *host, Asked: map[string]string{
					"camera": *camera, "assigned_to": *assigned, "since": *since, "until": *until,
				}})
				if err != nil {
					return err
				}
				if *asJSON {
					return printJSON(e.stdout, items)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				// At a console every item names the dock host that ingested it.
				fleet := e.svc.Config().IsConsole()
				if fleet {
					fmt.Fprint(tw, "HOST\t")
				}
				fmt.Fprintln(tw, "ID\tCAMERA\tASSIGNED_TO\tRECORDED_AT\tSIZE\tSTATE\tSOURCE_PATH")
				for _, it := range items {
					if fleet {
						fmt.Fprintf(tw, "%s\t", printable(it.Host))
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(it.ID), printable(it.Camera), printable(it.AssignedTo),
						it.RecordedAt.UTC().Format(time.RFC3339), humanBytes(it.Size), it.State, printable(it.SourcePath))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "%d item(s)\n", len(items))
				return nil
			}
		},
	}
}

func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, usageErrorf("--%s %q: want RFC 3339 (2026-11-24T08:00:00Z) or a date (2026-11-24)", name, v)
}

// parseSpan reads --since and --until, refusing a span that ends before
// it starts: it would select nothing, silently.
func parseSpan(since, until string) (from, to time.Time, err error) {
	if from, err = parseTime("since", since); err != nil {
		return
	}
	if to, err = parseTime("until", until); err != nil {
		return
	}
	if !from.IsZero() && !to.IsZero() && from.After(to) {
		err = usageErrorf("--since %s is later than --until %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return
}
