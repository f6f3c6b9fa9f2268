package main

import (
	"context"
	"flag"
	"fmt"
)

func inventoryCommand() *command {
	return &command{
		name: "inventory", args: "publish FILE", pathArg: true,
		summary: "at a console: sign the camera inventory in FILE (YAML or JSON cameras: serial, kind, assigned_to) and publish it to the dock hosts through the store",
		setup: func(fs *flag.FlagSet) runner {
			asJSON := fs.Bool("json", false, "print what was published as JSON")
			return func(ctx context.Context, e *env) error {
				if fs.Arg(0) != "publish" {
					return usageErrorf("inventory: unknown subcommand %q (usage: evidenced inventory publish FILE)", fs.Arg(0))
				}
				res, err := e.svc.PublishInventory(ctx, e.caller(), fs.Arg(1))
				if err != nil {
					return err
				}
				if *asJSON {
					return printJSON(e.stdout, res)
				}
				fmt.Fprintf(e.stdout, "inventory version %d published: %d camera(s), %s (version %s), sha256 %s\n",
					res.Version, res.Cameras, res.Object, res.VersionID, res.SHA256)
				return nil
			}
		},
	}
}
