package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/evidenced/evidenced/internal/service"
)

func versionCommand() *command {
	return &command{
		name: "version", summary: "print the version", noConfig: true,
		setup: func(fs *flag.FlagSet) runner {
			return func(ctx context.Context, e *env) error {
				_, err := fmt.Fprintln(e.stdout, "evidenced", service.Version)
				return err
			}
		},
	}
}
