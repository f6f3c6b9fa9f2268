package wipe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/evidenced/evidenced/internal/custody"
)

// ErrNotYet: the item's vault copy is still within its grace (or not
// verified, or a wipe of it is open); Release did nothing.
var ErrNotYet = errors.New("vault copy not due for release")

// Release removes item id's vault copy once the item has been VERIFIED for
// at least vault.grace (a grace of 0 means never): VAULT_RELEASED is
// recorded first, with the item's vault_path cleared, then the file is
// removed and its directory fsynced. A copy left behind by a crash between
// the two is removed by the next call. Where the wipe rule is on for the
// item's camera, the copy also stays until the camera file is WIPED (or
// the wipe is given up). It returns nil when the copy is gone (now or
// before) and ErrNotYet when it must stay for now.
func (w *Wiper) Release(ctx context.Context, id string) error {
	grace := w.cfg.Vault.Grace.Duration
	if grace <= 0 {
		return fmt.Errorf("release %s: vault.grace is 0 (keep every copy): %w", id, ErrNotYet)
	}
	lock := w.itemLock(id)
	lock.Lock()
	defer lock.Unlock()
	it, err := w.ledger.Item(ctx, id)
	if err != nil {
		return fmt.Errorf("release %s: %w", id, err)
	}
	if it.State != custody.StateVerified {
		return fmt.Errorf("release %s: %s, not verified: %w", id, it.State, ErrNotYet)
	}
	if it.VaultPath == "" {
		return w.removeCopy(id)
	}
	evs, err := w.ledger.Custody(ctx, id)
	if err != nil {
		return fmt.Errorf("release %s: %w", id, err)
	}
	h := readHistory(evs, it)
	switch {
	case h.verifiedAt.IsZero():
		return fmt.Errorf("release %s: no VERIFIED record: %w", id, ErrNotYet)
	case w.o.Now().Sub(h.verifiedAt) < grace:
		return fmt.Errorf("release %s: verified %s ago, grace %s: %w", id, w.o.Now().Sub(h.verifiedAt).Round(time.Second), grace, ErrNotYet)
	case w.cfg.WipePolicy(it.Camera).Enabled && !h.wiped && h.gaveUp == "":
		// The wipe must read the vault copy back (condition b): keep it
		// until the camera file is wiped or the wipe is given up, even
		// past the grace. A camera that never comes back keeps its copies
		// here, which shows as a fuller vault, never as a lost check.
		return fmt.Errorf("release %s: the camera file is not wiped yet: %w", id, ErrNotYet)
	}
	path := it.VaultPath
	it.VaultPath = ""
	if _, err := w.ledger.Append(ctx, custody.Event{
		Type: custody.VaultReleased, Actor: w.o.Actor, Camera: it.Camera, Item: id,
		Details: map[string]string{
			"vault_path": path, "verified_at": h.verifiedAt.UTC().Format(time.RFC3339Nano),
			"grace": grace.String(), "key": it.ObjectKey, "version_id": it.VersionID,
		},
	}, &it); err != nil {
		return fmt.Errorf("release %s: record: %w", id, err)
	}
	w.log.Info("vault copy released", "item", id)
	return w.removeCopy(id)
}

// removeCopy removes the vault file of id (already recorded as released)
// and syncs its directory; an absent file is fine.
func (w *Wiper) removeCopy(id string) error {
	p := w.vault.Path(id)
	if p == "" {
		return fmt.Errorf("release %s: invalid vault id", id)
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("release %s: remove vault copy: %w", id, err)
	}
	if d, err := os.Open(filepath.Dir(p)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("release %s: sync vault directory: %w", id, err)
		}
	}
	return nil
}
