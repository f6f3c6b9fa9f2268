package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/evidenced/evidenced/internal/service"
)

func accessCommand() *command {
	return &command{
		name: "access", summary: "list access events (searches, retrievals, exports, verifies), also those of no single item; the listing is recorded",
		// --actor here selects whose accesses are listed (the OS user who
		// acted, or the name acted on behalf of); nothing is recorded on
		// anyone's behalf.
		ownActor: true,
		setup: func(fs *flag.FlagSet) runner {
			actor := fs.String("actor", "", "only the accesses of this person: the OS user who acted, or whom they acted on behalf of (--actor of the command)")
			since := fs.String("since", "", "at or after (RFC 3339 or YYYY-MM-DD, UTC)")
			until := fs.String("until", "", "before (RFC 3339 or YYYY-MM-DD, UTC)")
			asJSON := fs.Bool("json", false, "print a JSON array of the custody events")
			reason := fs.String("reason", "", "why you are looking (recorded in the custody ledger)")
			return func(ctx context.Context, e *env) error {
				f := service.AccessFilter{Actor: *actor, Reason: *reason}
				var err error
				if f.Since, f.Until, err = parseSpan(*since, *until); err != nil {
					return err
				}
				evs, err := e.svc.Accesses(ctx, e.caller(), f)
				if err != nil {
					return err
				}
				if *asJSON {
					return printJSON(e.stdout, evs)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tAT\tACTOR\tACTION\tITEM\tREASON\tDETAILS")
				for _, ev := range evs {
					item := ev.Item
					if item == "" {
						item = "-"
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.Seq, ev.At.UTC().Format(time.RFC3339), printable(ev.Actor),
						ev.Details["action"], item, printable(ev.Details["reason"]), detailsText(ev.Details, "action", "reason"))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "%d access(es)\n", len(evs))
				return nil
			}
		},
	}
}
