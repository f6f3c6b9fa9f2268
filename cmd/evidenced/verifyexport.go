package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/evidenced/evidenced/internal/service"
)

func verifyExportCommand() *command {
	return &command{
		name: "verify-export", args: "DIR", noConfig: true,
		summary: "check an export package against the host key you trust (no config, ledger or network)",
		setup: func(fs *flag.FlagSet) runner {
			keyFile := fs.String("key", "", "PEM file of the host public key(s) you trust, obtained out of band (`evidenced key --public`); several hosts' keys may be in one file")
			fs.StringVar(keyFile, "keys", "", "the same as --key: for a console's package, one PEM file of the public keys of every host whose records it holds, the console's included")
			var fingerprints []string
			fs.Func("key-fingerprint", "fingerprint SHA256:… of a host key you trust, obtained out of band (the custodian's signed certificate, `evidenced key --fingerprint`); repeatable", func(s string) error {
				fingerprints = append(fingerprints, s)
				return nil
			})
			packageKey := fs.Bool("trust-package-key", false, "check against the package's own first key: proves the package is consistent, NOT who made it")
			tsaCA := fs.String("tsa-ca", "", "PEM file of the time-stamping authority's CA, obtained from the TSA (the package's own copy is informational)")
			allowUnsigned := fs.Bool("allow-unsigned", false, "accept an unsigned checkpoint and records no trusted signature covers")
			return func(ctx context.Context, e *env) error {
				dir := fs.Arg(0)
				res, err := service.VerifyExport(ctx, dir, service.ExportTrust{
					KeyFile: *keyFile, Fingerprints: fingerprints, PackageKey: *packageKey,
					TSACAFile: *tsaCA, AllowUnsigned: *allowUnsigned,
				})
				if errors.Is(err, service.ErrNoTrust) {
					return usageErrorf("verify-export: which host key do you trust? A package carries its own keys, so checking it against them proves nothing about who made it.\n" +
						"  --key FILE                 the host's public key (evidenced key --public), obtained out of band\n" +
						"  --key-fingerprint SHA256:… the fingerprint on the custodian's signed certificate (evidenced key --fingerprint)\n" +
						"  --trust-package-key        check against the package's own key, and say so")
				}
				if err != nil {
					return fmt.Errorf("verify-export: %w", err)
				}
				if res.PackageKeyTrusted {
					fmt.Fprintf(e.stdout, "UNTRUSTED KEY: checked against the package's own host key (--trust-package-key); this shows the package is consistent, not that the host you think made it\n")
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
				if res.Fleet != nil {
					printFleetVerified(e, dir, res)
					return nil
				}
				printVerified(e, dir, res)
				return nil
			}
		},
	}
}

// printVerified is the report of a package that checked out.
func printVerified(e *env, dir string, res *service.ExportCheck) {
	in := res.Info
	signed := "unsigned"
	if in.Signed {
		signed = "signed"
	}
	fmt.Fprintf(e.stdout, "OK %s\n", dir)
	fmt.Fprintf(e.stdout, "  exported %s by %s from host %s: %q\n", in.ExportedAt.Format("2006-01-02 15:04:05 UTC"), printable(in.ExportedBy), printable(in.Host), printable(in.Reason))
	fmt.Fprintf(e.stdout, "  %d file(s) match MANIFEST.sha256\n", res.Files)
	fmt.Fprintf(e.stdout, "  %d item(s); %d record(s) hash-chained where consecutive; %d signature(s) verified; %d footage file(s) match their SHA-256\n",
		res.Items, res.Records, res.Signatures, res.Footage)
	printFactsVerified(e, res)
	fmt.Fprintf(e.stdout, "  %d inclusion proof(s) against the %s checkpoint: tree size %d, root %s\n", res.Proofs, signed, in.TreeSize, in.Root)
	if res.Unsigned > 0 {
		fmt.Fprintf(e.stdout, "  %d record(s) without a signature of their own (written before the host had a key), held by the trusted checkpoint\n", res.Unsigned)
	}
	if a := in.Anchored; a != nil && res.Anchored {
		fmt.Fprintf(e.stdout, "  anchored checkpoint %s (%s): tree size %d, root %s; the export's checkpoint extends it\n", a.Checkpoint, a.Object, a.TreeSize, a.Root)
		if a.Timestamp != "" {
			how := "checked against its checkpoint only (no --tsa-ca given)"
			if res.Timestamped {
				how = "verified with the TSA CA given"
			}
			fmt.Fprintf(e.stdout, "  RFC 3161 time-stamp %s at %s: %s\n", a.Timestamp, a.TimestampTime.UTC().Format("2006-01-02 15:04:05 UTC"), how)
		}
	} else if in.Anchored == nil {
		fmt.Fprintf(e.stdout, "  no anchored checkpoint in the package\n")
	}
	for _, k := range res.Keys {
		how := "a key you trust"
		switch k.How {
		case "package":
			how = "the package's own key, NOT checked against a key you trust"
		case "rotation":
			how = fmt.Sprintf("introduced by KEY_ROTATED record %d, signed by the key before it", k.RotationSeq)
		}
		fmt.Fprintf(e.stdout, "  host key %s from record %d: %s\n", k.Fingerprint, k.FromSeq, how)
	}
	fmt.Fprintf(e.stdout, "  MANIFEST.sha256 sha256 %s\n", res.ManifestSHA256)
}

// printFleetVerified is the report of a console's package that checked
// out: which key vouched for which host.
func printFleetVerified(e *env, dir string, res *service.ExportCheck) {
	in := res.Fleet
	fmt.Fprintf(e.stdout, "OK %s\n", dir)
	fmt.Fprintf(e.stdout, "  exported %s by %s at console %s: %q\n", in.ExportedAt.Format("2006-01-02 15:04:05 UTC"), printable(in.ExportedBy), printable(in.Console), printable(in.Reason))
	fmt.Fprintf(e.stdout, "  %d file(s) match MANIFEST.sha256\n", res.Files)
	fmt.Fprintf(e.stdout, "  %d item(s); %d record(s) from %d host(s), each proven in its host's signed checkpoint\n", res.Items, res.Records, len(in.Hosts))
	for _, h := range in.Hosts {
		fmt.Fprintf(e.stdout, "  host %s: checkpoint tree size %d, root %s", printable(h.ID), h.TreeSize, h.Root)
		if h.Object != "" {
			fmt.Fprintf(e.stdout, " (anchored as %s)", printable(h.Object))
		}
		fmt.Fprintln(e.stdout)
	}
	printFactsVerified(e, res)
	for _, k := range res.Keys {
		fmt.Fprintf(e.stdout, "  host %s signed with %s: a key you trust\n", printable(k.Host), k.Fingerprint)
	}
	fmt.Fprintf(e.stdout, "  MANIFEST.sha256 sha256 %s\n", res.ManifestSHA256)
}

// printFactsVerified is the line of a package's facts, a dock host's or a
// console's, when it has any.
func printFactsVerified(e *env, res *service.ExportCheck) {
	if res.Facts > 0 {
		fmt.Fprintf(e.stdout, "  %d plate read(s) / GPS fix(es) in facts.jsonl, each found at its stated line of its source file; %d sidecar file(s) and crop image(s) match their SHA-256\n",
			res.Facts, res.Carried)
	}
}
