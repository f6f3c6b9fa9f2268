package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
)

func reindexCommand() *command {
	return &command{
		name: "reindex", summary: "rebuild the sidecar facts index (plate reads, GPS tracks, recording spans) from the vaulted files",
		setup: func(fs *flag.FlagSet) runner {
			asJSON := fs.Bool("json", false, "print the report as JSON")
			return func(ctx context.Context, e *env) error {
				rep, err := e.svc.Reindex(ctx, e.caller())
				if err != nil {
					return err
				}
				if *asJSON {
					return printJSON(e.stdout, rep)
				}
				names := make([]string, 0, len(rep.Entries))
				for k := range rep.Entries {
					names = append(names, k)
				}
				sort.Strings(names)
				fmt.Fprintf(e.stdout, "reindex: %d sidecar file(s) parsed, %d failed, %d parse record(s) new to the ledger\n", rep.Files, rep.Failed, rep.Recorded)
				for _, k := range names {
					fmt.Fprintf(e.stdout, "  %s: %d\n", k, rep.Entries[k])
				}
				return nil
			}
		},
	}
}
