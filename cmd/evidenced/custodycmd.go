package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

func custodyCommand() *command {
	return &command{
		name: "custody", args: "ID", summary: "print the ordered custody events of one item",
		setup: func(fs *flag.FlagSet) runner {
			asJSON := fs.Bool("json", false, "print a JSON array")
			reason := fs.String("reason", "", "why you are looking (recorded in the custody ledger)")
			return func(ctx context.Context, e *env) error {
				evs, err := e.svc.Custody(ctx, e.caller(), fs.Arg(0), *reason)
				if err != nil {
					return err
				}
				if *asJSON {
					return printJSON(e.stdout, evs)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tAT\tTYPE\tHOST\tACTOR\tSHA256\tDETAILS")
				for _, ev := range evs {
					sha := ev.SHA256
					if len(sha) > 16 {
						sha = sha[:16] + "…"
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.Seq, ev.At.UTC().Format(time.RFC3339), ev.Type, printable(ev.Host), printable(ev.Actor), printable(sha), detailsText(ev.Details))
				}
				return tw.Flush()
			}
		},
	}
}

// detailsText shows an event's details as k=v pairs in key order, made
// printable, leaving out the keys already shown in their own column.
func detailsText(d map[string]string, shown ...string) string {
	var out []string
	for _, k := range sortedKeys(d) {
		if !slices.Contains(shown, k) {
			out = append(out, printable(k)+"="+printable(d[k]))
		}
	}
	return strings.Join(out, " ")
}
