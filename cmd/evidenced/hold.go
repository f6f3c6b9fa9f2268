package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/evidenced/evidenced/internal/service"
)

func holdCommand() *command {
	return &command{
		name: "hold", args: "ID", required: []string{"case", "reason"}, summary: "place a recording on legal hold for a case (S3 legal hold; one hold per case)",
		setup: func(fs *flag.FlagSet) runner {
			kase := fs.String("case", "", "the case that holds it (required)")
			reason := fs.String("reason", "", "why (required; recorded in the custody ledger)")
			return func(ctx context.Context, e *env) error {
				res, err := e.svc.Hold(ctx, e.caller(), service.HoldOptions{ID: fs.Arg(0), Case: *kase, Reason: *reason})
				if err != nil {
					return err
				}
				held := strings.Join(res.HeldBy, ", ")
				if res.Unchanged {
					fmt.Fprintf(e.stdout, "%s%s is already held by case %s (held by: %s)\n", res.ID, ingestedAt(res.Host), res.Case, held)
					return nil
				}
				fmt.Fprintf(e.stdout, "%s%s: legal hold ON (held by: %s)\n", res.ID, ingestedAt(res.Host), held)
				return nil
			}
		},
	}
}

func releaseCommand() *command {
	return &command{
		name: "release", args: "ID", required: []string{"case", "reason"}, summary: "release a case's legal hold; the object's hold ends when no case holds it",
		setup: func(fs *flag.FlagSet) runner {
			kase := fs.String("case", "", "the case whose hold ends (required)")
			reason := fs.String("reason", "", "why (required; recorded in the custody ledger)")
			return func(ctx context.Context, e *env) error {
				res, err := e.svc.Release(ctx, e.caller(), service.HoldOptions{ID: fs.Arg(0), Case: *kase, Reason: *reason})
				if err != nil {
					return err
				}
				if res.On() {
					fmt.Fprintf(e.stdout, "%s%s: case %s released; legal hold stays ON (held by: %s)\n", res.ID, ingestedAt(res.Host), res.Case, strings.Join(res.HeldBy, ", "))
					return nil
				}
				fmt.Fprintf(e.stdout, "%s%s: case %s released; legal hold OFF (no case holds it)\n", res.ID, ingestedAt(res.Host), res.Case)
				return nil
			}
		},
	}
}

// ingestedAt names, at a console, the dock host that ingested the item a
// retention command acted on ("" on a dock host).
func ingestedAt(host string) string {
	if host == "" {
		return ""
	}
	return " (ingested at " + printable(host) + ")"
}
