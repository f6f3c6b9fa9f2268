package main

import (
	"context"
	"flag"
	"fmt"
)

func storeInitCommand() *command {
	return &command{
		name: "store-init", creates: true, summary: "create the configured bucket with versioning and Object Lock, or check an existing one",
		setup: func(fs *flag.FlagSet) runner {
			return func(ctx context.Context, e *env) error {
				bucket, err := e.svc.StoreInit(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "bucket %s: versioning and Object Lock enabled\n", bucket)
				return nil
			}
		},
	}
}
