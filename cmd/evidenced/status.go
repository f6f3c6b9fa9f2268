package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/evidenced/evidenced/internal/custody"
)

func statusCommand() *command {
	return &command{
		name: "status", summary: "each dock bay's state (copying, safe to undock, problem) and the upload queue",
		setup: func(fs *flag.FlagSet) runner {
			asJSON := fs.Bool("json", false, "print as JSON")
			return func(ctx context.Context, e *env) error {
				out, err := e.svc.Status(ctx, e.inDaemon)
				if err != nil {
					return err
				}
				if *asJSON {
					return printJSON(e.stdout, out)
				}
				if !e.inDaemon {
					fmt.Fprintln(e.stdout, "daemon: not running (no bays are being watched)")
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "CAMERA\tBAY\tSTATE\tPROGRESS\tDETAIL")
				for _, b := range out.Bays {
					detail := printable(b.Problem)
					if detail == "" {
						detail = printable(b.Current)
					}
					progress := "-" // nothing listed (yet, or ever): no percentage to give
					if b.HasProgress() {
						progress = fmt.Sprintf("%.0f%% of %s", b.Percent(), humanBytes(b.Bytes))
					}
					bay := printable(b.Bay)
					if bay == "" {
						bay = "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", printable(b.Camera), bay, b.State, progress, detail)
				}
				tw.Flush()
				fmt.Fprintf(e.stdout, "items: %d vaulted (awaiting upload), %d uploaded (awaiting verification), %d verified\n",
					out.Queue[custody.StateVaulted], out.Queue[custody.StateUploaded], out.Queue[custody.StateVerified])
				if out.Failed > 0 {
					fmt.Fprintf(e.stdout, "PROBLEM: %d item(s) failed permanently and are not retried until the next start (see last_error in `evidenced find --json`)\n", out.Failed)
				}
				return nil
			}
		},
	}
}
