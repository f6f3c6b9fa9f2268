package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/evidenced/evidenced/internal/service"
)

func keyCommand() *command {
	return &command{
		name: "key", args: "[rotate]", summary: "print the host's public signing key (PEM) or its fingerprint, for anyone who checks its custody records; key rotate replaces it (owner only)",
		setup: func(fs *flag.FlagSet) runner {
			public := fs.Bool("public", false, "print the public key (the only form ever printed)")
			fingerprint := fs.Bool("fingerprint", false, "print the fingerprint (SHA256:…) of every host key of the ledger, oldest first: what the custodian writes on the certificate and verify-export --key-fingerprint takes")
			reason := fs.String("reason", "", "key rotate: why (required; recorded in the KEY_ROTATED record)")
			keep := fs.Bool("keep-retired", false, "key rotate: keep the old private key as <key file>.retired-<key id>, mode 0400 (default: it is removed)")
			asJSON := fs.Bool("json", false, "key rotate: print the result as JSON (old, new, seq, retired, published, key_object)")
			return func(ctx context.Context, e *env) error {
				if fs.NArg() == 1 {
					if fs.Arg(0) != "rotate" {
						return usageErrorf("key: unknown subcommand %q (usage: evidenced key --public | --fingerprint | rotate --reason TEXT)", fs.Arg(0))
					}
					if *public || *fingerprint {
						return usageErrorf("key rotate takes neither --public nor --fingerprint")
					}
					return keyRotate(ctx, e, service.KeyRotateOptions{Reason: *reason, KeepRetired: *keep}, *asJSON)
				}
				if *reason != "" || *keep || *asJSON {
					return usageErrorf("--reason, --keep-retired and --json are for key rotate")
				}
				if *public == *fingerprint {
					return usageErrorf("key needs --public or --fingerprint (the private key is never printed)")
				}
				if *fingerprint {
					keys, err := e.svc.KeyFingerprints(ctx)
					if err != nil {
						return err
					}
					for _, k := range keys {
						if k.FromSeq == 0 {
							fmt.Fprintf(e.stdout, "%s\n", k.Fingerprint)
							continue
						}
						fmt.Fprintf(e.stdout, "%s from record %d\n", k.Fingerprint, k.FromSeq)
					}
					return nil
				}
				k := e.svc.HostKey()
				fmt.Fprintf(e.stderr, "host %s, key id %s (SHA-256 of the DER public key), fingerprint %s, note key %s\n",
					k.HostID(), k.KeyID(), e.svc.HostKeyFingerprint(), k.VerifierKey())
				_, err := e.stdout.Write(k.PublicPEM())
				return err
			}
		},
	}
}

// keyRotate runs key rotate and says what changed: both fingerprints (the
// custodian's certificate names the new one from the record after the
// rotation on), and whether the store has the new key yet.
func keyRotate(ctx context.Context, e *env, o service.KeyRotateOptions, asJSON bool) error {
	res, err := e.svc.RotateKey(ctx, e.caller(), o, e.inDaemon)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, res)
	}
	fmt.Fprintf(e.stdout, "host key rotated by KEY_ROTATED record %d\n  old %s (signs records up to %d)\n  new %s (signs records from %d)\n",
		res.Seq, res.Old, res.Seq, res.New, res.Seq+1)
	if res.Retired != "" {
		fmt.Fprintf(e.stdout, "  old private key kept at %s (mode 0400)\n", res.Retired)
	} else {
		fmt.Fprintf(e.stdout, "  old private key removed\n")
	}
	switch {
	case res.Published:
		fmt.Fprintf(e.stdout, "  anchored: the rotation and the new public key (%s) are in the object store\n", res.KeyObject)
	case res.PublishErr != "":
		fmt.Fprintf(e.stderr, "evidenced: warning: the rotation is not anchored yet (the next anchor publishes it): %s\n", res.PublishErr)
	}
	return nil
}
