package wipe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/evidenced/evidenced/internal/custody"
)

// ErrVaultFull: a dock was refused because its new footage would not fit in
// the vault with the configured free space left.
var ErrVaultFull = errors.New("vault is too full to take this camera")

// AdmitDock decides, before any copy starts, whether the vault can take the
// camera at root: need, the bytes of its files not yet held (ingest's walk of
// the camera says which, by item identity), must fit in the vault's free
// space with max(vault.min_free, vault_reserve) left over. A refusal is
// recorded as REFUSED for the camera (reason, bytes needed, bytes free) and
// returned wrapping ErrVaultFull, with a sentence fit for the bay status.
// Nothing is touched either way. It is ingest.Admitter: the wipe rule never
// walks a camera itself.
//
// serial is the camera as its dock session resolved it (ingest asks only
// for a camera it found in the inventory, UNKNOWN_DEVICE being refused
// before): the inventory in force now is not consulted again. A USB
// session opened at arrival continues with the camera as it was then, so
// a camera dropped from the inventory before the copy pass is still
// copied, and must still fit.
//
// A dock refused with via "watch" is remembered: Run retries it (through
// the function given to RetryDocks) once the vault has room for what it
// needed, unless its folder is gone by then; the retried dock walks the
// camera afresh and is admitted or refused again on what it finds.
func (w *Wiper) AdmitDock(ctx context.Context, serial, root, actor, via string, need uint64) error {
	keep, free, err := w.room(serial)
	if err != nil {
		return err
	}
	if need+keep <= free {
		w.mu.Lock()
		delete(w.waiting, serial)
		w.mu.Unlock()
		return nil
	}
	if via == "watch" {
		w.mu.Lock()
		w.waiting[serial] = waitingDock{root: root, need: need}
		w.mu.Unlock()
	}
	reason := fmt.Sprintf("vault full: this camera needs %s for new footage and %s must stay free, but only %s is free; nothing was copied — free space (verified copies are released after vault.grace) and dock again",
		human(need), human(keep), human(free))
	if _, aerr := w.ledger.Append(ctx, custody.Event{
		Type: custody.Refused, Actor: actor, Camera: serial,
		Details: map[string]string{
			"reason": reason, "via": via, "source": root,
			"need_bytes": strconv.FormatUint(need, 10), "free_bytes": strconv.FormatUint(free, 10),
			"keep_free_bytes": strconv.FormatUint(keep, 10),
		},
	}, nil); aerr != nil {
		return fmt.Errorf("record refusal of %s: %w (%s)", serial, aerr, reason)
	}
	w.log.Error("dock refused: vault full", "camera", serial, "need_bytes", need, "free_bytes", free, "keep_free_bytes", keep)
	return fmt.Errorf("camera %s: %s: %w", serial, reason, ErrVaultFull)
}

// waitingDock is a watched dock refused for space: where its camera is and
// how many bytes of new footage it needed room for.
type waitingDock struct {
	root string
	need uint64
}

// room is what must stay free in the vault and what is free now.
func (w *Wiper) room(serial string) (keep, free uint64, err error) {
	keep = uint64(max(int64(w.cfg.Vault.MinFree), int64(w.cfg.VaultReserve), 0))
	free, err = w.vault.Free()
	if err != nil {
		return 0, 0, fmt.Errorf("space check for %s: %w", serial, err)
	}
	return keep, free, nil
}

// RetryDocks sets fn, which Run calls (in a goroutine of its own) for a
// watched dock refused for space once the vault has room for it: the
// daemon passes its dock handler, so the dock resumes without the officer
// re-docking.
func (w *Wiper) RetryDocks(fn func(serial, root string)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.retry = fn
}

// retryDocks re-docks every waiting dock that fits now; a dock whose folder
// is gone (undocked) is forgotten.
func (w *Wiper) retryDocks(ctx context.Context) {
	w.mu.Lock()
	fn := w.retry
	waiting := make(map[string]waitingDock, len(w.waiting))
	for k, v := range w.waiting {
		waiting[k] = v
	}
	w.mu.Unlock()
	if fn == nil {
		return
	}
	for serial, d := range waiting {
		if _, err := os.Stat(d.root); err != nil {
			w.mu.Lock()
			delete(w.waiting, serial)
			w.mu.Unlock()
			continue
		}
		keep, free, err := w.room(serial)
		if err != nil || d.need+keep > free {
			continue
		}
		w.mu.Lock()
		delete(w.waiting, serial)
		w.mu.Unlock()
		w.log.Info("vault has room again; resuming refused dock", "camera", serial)
		go fn(serial, d.root)
	}
}

func human(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
