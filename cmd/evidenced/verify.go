package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/evidenced/evidenced/internal/service"
)

func verifyCommand() *command {
	return &command{
		name: "verify", summary: "re-walk the custody chain and re-hash every vault file (and with --remote every object)",
		setup: func(fs *flag.FlagSet) runner {
			remote := fs.Bool("remote", false, "also check every object in the store: exists, size, SHA-256, retention")
			asJSON := fs.Bool("json", false, "print the report as JSON")
			reason := fs.String("reason", "", "why the check is run (recorded in the custody ledger)")
			return func(ctx context.Context, e *env) error {
				rep, err := e.svc.Verify(ctx, e.caller(), service.VerifyOptions{Remote: *remote, Reason: *reason})
				if err != nil {
					// A ledger too damaged to take the record still gets its
					// report and exit 3.
					if rep.OK {
						return err
					}
					fmt.Fprintf(e.stderr, "evidenced: %v\n", err)
				}
				if rep.Pending > 0 {
					fmt.Fprintf(e.stderr, "note: %d item(s) are vaulted but not yet uploaded\n", rep.Pending)
				}
				if *asJSON {
					if err := printJSON(e.stdout, rep); err != nil {
						return err
					}
				} else {
					printVerify(e, rep)
				}
				if !rep.OK {
					if !rep.Complete() {
						fmt.Fprintf(e.stderr, "evidenced: %s\n", rep.Unchecked())
					}
					return &exitError{code: exitIntegrity, err: errReported}
				}
				if !rep.Complete() {
					// Nothing found wrong, but not everything asked for
					// was checked: a failure to check, not a finding.
					return fmt.Errorf("%s; the local checks passed", rep.Unchecked())
				}
				return nil
			}
		},
	}
}

func printVerify(e *env, rep service.VerifyReport) {
	for _, p := range rep.Problems {
		switch p.Kind {
		case "record":
			fmt.Fprintf(e.stdout, "FAIL record %d: %s\n", p.Seq, p.What)
		case "item":
			fmt.Fprintf(e.stdout, "FAIL item %s: %s\n", p.Item, p.What)
		case "checkpoint":
			fmt.Fprintf(e.stdout, "FAIL checkpoint %s: %s\n", p.Object, p.What)
		case "object":
			fmt.Fprintf(e.stdout, "FAIL object %s (item %s): %s\n", p.Object, p.Item, p.What)
		default:
			fmt.Fprintf(e.stdout, "FAIL %s: %s\n", p.Kind, p.What)
		}
	}
	status := "OK"
	switch {
	case !rep.OK:
		status = "INTEGRITY FAILURE"
	case !rep.Complete():
		status = "INCOMPLETE"
	}
	for _, n := range rep.Notices {
		fmt.Fprintf(e.stdout, "note: %s\n", n.What)
	}
	// What was checked and what of it failed, never only what passed.
	objects := fmt.Sprintf("%d objects checked (%d failed", rep.Objects, rep.ObjectsFailed)
	if rep.ObjectsUnchecked > 0 {
		objects += fmt.Sprintf(", %d not checked", rep.ObjectsUnchecked)
	}
	objects += ")"
	fmt.Fprintf(e.stdout, "%s: %d events (%d signed), %d items, %d vault files checked (%d failed), %s, %d anchored checkpoints checked, %d problem(s)\n",
		status, rep.Events, rep.Signed, rep.Items, rep.Vault, rep.VaultFailed, objects, rep.Checkpoints, len(rep.Problems))
}
