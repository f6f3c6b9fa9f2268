package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/evidenced/evidenced/internal/service"
)

func verifyExportCommand() *command {
	return &command{
		name: "verify-export", args: "DIR", noConfig: true,
		summary: "check an export package using only its own content (no config, ledger or network)",
		setup: func(fs *flag.FlagSet) runner {
			return func(ctx context.Context, e *env) error {
				dir := fs.Arg(0)
				res, err := service.VerifyExport(ctx, dir)
				if err != nil {
					return fmt.Errorf("verify-export: %w", err)
				}
				for _, p := range res.Problems {
					fmt.Fprintf(e.stderr, "FAILED %s\n", p)
				}
				for _, n := range res.Notices {
					fmt.Fprintf(e.stderr, "note: %s\n", n)
				}
				if !res.OK() {
					fmt.Fprintf(e.stderr, "verify-export: %s: %d problem(s)\n", dir, len(res.Problems))
					return &exitError{code: exitIntegrity, err: errReported}
				}
				in := res.Info
				signed := "unsigned"
				if in.Signed {
					signed = "signed"
				}
				fmt.Fprintf(e.stdout, "OK %s\n", dir)
				fmt.Fprintf(e.stdout, "  exported %s by %s from host %s: %q\n", in.ExportedAt.Format("2006-01-02 15:04:05 UTC"), in.ExportedBy, in.Host, in.Reason)
				fmt.Fprintf(e.stdout, "  %d file(s) match MANIFEST.sha256\n", res.Files)
				fmt.Fprintf(e.stdout, "  %d item(s); %d record(s) hash-chained where consecutive; %d signature(s) verified; %d footage file(s) match their SHA-256\n",
					res.Items, res.Records, res.Signatures, res.Footage)
				fmt.Fprintf(e.stdout, "  %d inclusion proof(s) against the %s checkpoint: tree size %d, root %s\n", res.Proofs, signed, in.TreeSize, in.Root)
				if a := in.Anchored; a != nil && res.Anchored {
					fmt.Fprintf(e.stdout, "  anchored checkpoint %s (%s): tree size %d, root %s; the export's checkpoint extends it\n", a.Checkpoint, a.Object, a.TreeSize, a.Root)
					if a.Timestamp != "" {
						how := "checked against its checkpoint only (no TSA CA in the package)"
						if res.Timestamped {
							how = "verified with " + a.TSACA
						}
						fmt.Fprintf(e.stdout, "  RFC 3161 time-stamp %s at %s: %s\n", a.Timestamp, a.TimestampTime.UTC().Format("2006-01-02 15:04:05 UTC"), how)
					}
				} else if in.Anchored == nil {
					fmt.Fprintf(e.stdout, "  no anchored checkpoint in the package\n")
				}
				for _, k := range in.Keys {
					fmt.Fprintf(e.stdout, "  host key %s from record %d (compare with the host's key obtained independently)\n", k.KeyID, k.FromSeq)
				}
				fmt.Fprintf(e.stdout, "  MANIFEST.sha256 sha256 %s\n", res.ManifestSHA256)
				return nil
			}
		},
	}
}
