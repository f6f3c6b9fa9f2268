package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/evidenced/evidenced/internal/objstore/s3store"
)

func storeInitCommand() *command {
	return &command{
		name: "store-init", creates: true, summary: "create the configured bucket with versioning and Object Lock, or check an existing one",
		setup: func(fs *flag.FlagSet) runner {
			return func(ctx context.Context, e *env) error {
				st, ok := e.svc.Store.(*s3store.Store)
				if !ok || st == nil {
					return errors.New("no object_store configured")
				}
				if err := st.EnsureBucket(ctx); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "bucket %s: versioning and Object Lock enabled\n", e.svc.Config.ObjectStore.Bucket)
				return nil
			}
		},
	}
}
