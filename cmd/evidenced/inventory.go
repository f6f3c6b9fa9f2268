package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/evidenced/evidenced/internal/service"
)

const inventoryUsage = "usage: evidenced inventory import FILE | assign SERIAL WHO [--effective T] | retire SERIAL [--effective T] | show [--json]"

func inventoryCommand() *command {
	return &command{
		name: "inventory", args: "import|publish|assign|retire|show ARG...", pathArg: true, pathSubs: []string{"import", "publish"},
		summary: "at a console: import the camera inventory (CSV, YAML or JSON), hand a camera to another officer or retire it, each published to the dock hosts through the store as the next signed version; show the inventory (on a dock host: the version in force)",
		setup: func(fs *flag.FlagSet) runner {
			asJSON := fs.Bool("json", false, "print the result as JSON")
			effective := fs.String("effective", "", "assign/retire: from when (RFC 3339 or a date, UTC; default now)")
			return func(ctx context.Context, e *env) error {
				args := fs.Args()
				want := map[string]int{"import": 2, "publish": 2, "assign": 3, "retire": 2, "show": 1}
				if len(args) == 0 {
					return usageErrorf("inventory: no subcommand (%s)", inventoryUsage)
				}
				n, ok := want[args[0]]
				if !ok || len(args) != n {
					return usageErrorf("inventory %s: %s", args[0], inventoryUsage)
				}
				var when time.Time
				if *effective != "" {
					if args[0] != "assign" && args[0] != "retire" {
						return usageErrorf("inventory %s: --effective is for assign and retire", args[0])
					}
					var err error
					if when, err = parseTime("effective", *effective); err != nil {
						return err
					}
				}
				var res service.InventoryPublication
				var err error
				switch args[0] {
				case "show":
					v, err := e.svc.ShowInventory(ctx)
					if err != nil {
						return err
					}
					if *asJSON {
						return printJSON(e.stdout, v)
					}
					printInventory(e, v)
					if v.Warning != "" {
						fmt.Fprintf(e.stderr, "warning: %s\n", v.Warning)
					}
					return nil
				case "import", "publish":
					res, err = e.svc.ImportInventory(ctx, e.caller(), args[1])
				case "assign":
					res, err = e.svc.AssignInventory(ctx, e.caller(), args[1], args[2], when)
				case "retire":
					res, err = e.svc.RetireInventory(ctx, e.caller(), args[1], when)
				}
				if err != nil {
					return err
				}
				if *asJSON {
					return printJSON(e.stdout, res)
				}
				fmt.Fprintf(e.stdout, "inventory version %d published (%s): %d camera(s), %s (version %s), sha256 %s, %d bytes\n",
					res.Version, res.Change["change"], res.Cameras, res.Object, res.VersionID, res.SHA256, res.Bytes)
				if res.Warning != "" {
					fmt.Fprintf(e.stderr, "warning: %s\n", res.Warning)
				}
				if res.Change["change"] == "import" {
					fmt.Fprintf(e.stdout, "added %s, handed over %s, newly retired %s, kept though not in the file %s\n",
						res.Change["added"], res.Change["handed_over"], res.Change["newly_retired"], res.Change["kept_absent"])
					if s := res.Change["kept_absent_serials"]; s != "" {
						fmt.Fprintf(e.stdout, "not in the file, kept as they were (retire any that left service): %s\n", printable(s))
					}
				}
				return nil
			}
		},
	}
}

// printInventory prints the inventory as a table: its version and origin,
// then one camera a line with its retirement and history.
func printInventory(e *env, v service.InventoryView) {
	fmt.Fprintf(e.stdout, "inventory version %d from %s", v.Version, v.Source)
	if v.SHA256 != "" {
		fmt.Fprintf(e.stdout, ", sha256 %s", v.SHA256)
	}
	if v.PublishedAt != nil {
		fmt.Fprintf(e.stdout, ", published %s", v.PublishedAt.Format(time.RFC3339))
	}
	fmt.Fprintln(e.stdout)
	for _, c := range v.Cameras {
		fmt.Fprintf(e.stdout, "%s\t%s\t%s", c.Serial, c.Kind, c.AssignedTo)
		if c.Retired != nil {
			fmt.Fprintf(e.stdout, "\tretired %s", c.Retired.Format(time.RFC3339))
		}
		for _, a := range c.Assignments {
			if a.From.IsZero() {
				fmt.Fprintf(e.stdout, "\t%s", a.To)
			} else {
				fmt.Fprintf(e.stdout, "\t→ %s from %s", a.To, a.From.Format(time.RFC3339))
			}
		}
		fmt.Fprintln(e.stdout)
	}
}
