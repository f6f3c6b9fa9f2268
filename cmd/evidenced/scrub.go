package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/evidenced/evidenced/internal/service"
)

func scrubCommand() *command {
	return &command{
		name: "scrub", summary: "at a console: audit the hosts' anchored histories, re-read one day's slice of the stored recordings (all with --all) and check each SHA-256",
		setup: func(fs *flag.FlagSet) runner {
			all := fs.Bool("all", false, "re-read every stored recording now")
			asJSON := fs.Bool("json", false, "print the report as JSON")
			return func(ctx context.Context, e *env) error {
				rep, err := e.svc.Scrub(ctx, e.caller(), service.ScrubOptions{All: *all})
				if err != nil {
					return err
				}
				if *asJSON {
					if err := printJSON(e.stdout, rep); err != nil {
						return err
					}
				} else {
					for _, w := range rep.Withheld {
						fmt.Fprintf(e.stdout, "WITHHELD %s: %s\n", w.Host, w.Problem)
					}
					for _, f := range rep.Failures {
						fmt.Fprintf(e.stdout, "FAILED %s (version %s), item %s of %s: %s\n", f.Object, f.VersionID, f.Item, f.Host, f.What)
					}
					fmt.Fprintf(e.stdout, "scrub: %d of %d stored recording(s) re-read, %d failed\n", rep.Checked, rep.Total, len(rep.Failures))
				}
				if !rep.OK() {
					return &exitError{code: exitIntegrity, err: errReported}
				}
				return nil
			}
		},
	}
}
