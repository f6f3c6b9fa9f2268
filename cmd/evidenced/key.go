package main

import (
	"context"
	"flag"
	"fmt"
)

func keyCommand() *command {
	return &command{
		name: "key", summary: "print the host's public signing key (PEM) or its fingerprint, for anyone who checks its custody records",
		setup: func(fs *flag.FlagSet) runner {
			public := fs.Bool("public", false, "print the public key (the only form ever printed)")
			fingerprint := fs.Bool("fingerprint", false, "print the fingerprint (SHA256:…) of every host key of the ledger, oldest first: what the custodian writes on the certificate and verify-export --key-fingerprint takes")
			return func(ctx context.Context, e *env) error {
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
