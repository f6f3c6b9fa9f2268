package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/evidenced/evidenced/internal/service"
)

func classifyCommand() *command {
	return &command{
		name: "classify", args: "ID", required: []string{"class", "reason"}, summary: "raise a recording's retention class and extend its Object Lock retention (never shorten)",
		setup: func(fs *flag.FlagSet) runner {
			class := fs.String("class", "", "the new retention class (one of retention.classes)")
			reason := fs.String("reason", "", "why (required; recorded in the custody ledger)")
			return func(ctx context.Context, e *env) error {
				res, err := e.svc.Classify(ctx, e.caller(), service.ClassifyOptions{ID: fs.Arg(0), Class: *class, Reason: *reason})
				if res.ID == "" {
					return err
				}
				until := res.Until.Format(time.RFC3339)
				if res.Already {
					fmt.Fprintf(e.stdout, "%s%s is already class %s (%s until %s)\n", res.ID, ingestedAt(res.Host), res.Class, res.Mode, until)
					if res.TagChanged {
						fmt.Fprintf(e.stdout, "%s: the object's retention_class tag now says %s\n", res.ID, res.Class)
					}
					return err
				}
				fmt.Fprintf(e.stdout, "%s%s: class %s → %s, %s until %s\n", res.ID, ingestedAt(res.Host), res.OldClass, res.Class, res.Mode, until)
				return err
			}
		},
	}
}
