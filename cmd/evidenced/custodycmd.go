package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
)

func custodyCommand() *command {
	return &command{
		name: "custody", args: "ID", summary: "print the ordered custody events of one item",
		setup: func(fs *flag.FlagSet) runner {
			asJSON := fs.Bool("json", false, "print a JSON array")
			reason := fs.String("reason", "", "why you are looking (recorded in the custody ledger)")
			return func(ctx context.Context, e *env) error {
				if fs.NArg() != 1 {
					return usageErrorf("custody needs exactly one item ID")
				}
				id := fs.Arg(0)
				it, err := e.svc.Ledger.Item(ctx, id)
				if errors.Is(err, custody.ErrNotFound) {
					return fmt.Errorf("item %q: not in the ledger", id)
				}
				if err != nil {
					return fmt.Errorf("custody of %s: %w", id, err)
				}
				// The viewing is itself custody, so it is recorded first and
				// appears in what is shown.
				if err := recordAccess(ctx, e, "custody", *reason, &it, nil); err != nil {
					return err
				}
				evs, err := e.svc.Ledger.Custody(ctx, id)
				if err != nil {
					return fmt.Errorf("custody of %s: %w", id, err)
				}
				if *asJSON {
					enc := json.NewEncoder(e.stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(evs)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tAT\tTYPE\tHOST\tACTOR\tSHA256\tDETAILS")
				for _, ev := range evs {
					var d []string
					for _, k := range sortedKeys(ev.Details) {
						d = append(d, printable(k)+"="+printable(ev.Details[k]))
					}
					sha := ev.SHA256
					if len(sha) > 16 {
						sha = sha[:16] + "…"
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.Seq, ev.At.UTC().Format(time.RFC3339), ev.Type, printable(ev.Host), printable(ev.Actor), printable(sha), strings.Join(d, " "))
				}
				return tw.Flush()
			}
		},
	}
}
