package vault

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
)

// Unclaimed returns the paths of every entry under items/ that is not the
// complete copy of an id claimed reports true for: a copy the ledger knows
// nothing of (a ledger replaced or lost), a file with a name no id has, or
// anything but a regular file. `verify` names them: footage the custody
// record does not account for is as much a finding as a record without
// its footage. Nothing is opened or removed.
func (v *Vault) Unclaimed(ctx context.Context, claimed func(id string) bool) ([]string, error) {
	var out []string
	err := filepath.WalkDir(v.items, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(v.items, p)
		switch {
		case p == v.items:
			return nil
		case d.IsDir() && len(rel) == 2 && filepath.Dir(rel) == ".":
			return nil // a shard
		case d.IsDir():
			out = append(out, p)
			return fs.SkipDir
		}
		id := d.Name()
		if !d.Type().IsRegular() || !ValidID(id) || v.Path(id) != p || !claimed(id) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("vault %s: list items: %w", v.dir, err)
	}
	return out, nil
}
