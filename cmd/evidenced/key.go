package main

import (
	"context"
	"flag"
	"fmt"
)

func keyCommand() *command {
	return &command{
		name: "key", summary: "print the host's public signing key (PEM), for anyone who checks its custody records",
		setup: func(fs *flag.FlagSet) runner {
			public := fs.Bool("public", false, "print the public key (the only form ever printed)")
			return func(ctx context.Context, e *env) error {
				if !*public {
					return usageErrorf("key needs --public (the private key is never printed)")
				}
				k := e.svc.HostKey()
				fmt.Fprintf(e.stderr, "host %s, key id %s (SHA-256 of the DER public key), note key %s\n",
					k.HostID(), k.KeyID(), k.VerifierKey())
				_, err := e.stdout.Write(k.PublicPEM())
				return err
			}
		},
	}
}
