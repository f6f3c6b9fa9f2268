package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/evidenced/evidenced/internal/service"
)

// errDoctorFailed: at least one check failed (exit 1); the lines above say
// which and how to fix it.
var errDoctorFailed = errors.New("doctor: some checks failed; see the fixes above")

func doctorCommand() *command {
	return &command{
		name: "doctor", summary: "check this host: config, state_dir, host key, object store, clock, USB access",
		// noConfig: doctor loads the config itself, so that a config that
		// does not load is one failed check, not the end of the report.
		noConfig: true,
		setup: func(fs *flag.FlagSet) runner {
			asJSON := fs.Bool("json", false, "print as JSON")
			return func(ctx context.Context, e *env) error {
				rep := service.Doctor(ctx, fs.Lookup("config").Value.String())
				if *asJSON {
					if err := printJSON(e.stdout, rep); err != nil {
						return err
					}
				} else {
					for _, c := range rep.Checks {
						fmt.Fprintf(e.stdout, "%-4s  %s: %s\n", c.Status, c.Name, c.Detail)
						if c.Fix != "" {
							fmt.Fprintf(e.stdout, "      fix: %s\n", c.Fix)
						}
					}
					for _, n := range rep.NotChecked {
						fmt.Fprintf(e.stdout, "not checked: %s\n", n)
					}
				}
				if rep.Failed() {
					return errDoctorFailed
				}
				return nil
			}
		},
	}
}
