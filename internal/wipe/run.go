package wipe

import (
	"context"
	"errors"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
)

// Run is the daemon's loop: it works items named by Notify as they come,
// and every Options.Interval (and once at start) rescans the ledger for
// verified items whose wipe or vault release is due, so that nothing
// depends on a notification surviving a restart; on the same tick it
// resumes watched docks refused for space that now fit (RetryDocks). It
// returns when ctx ends.
func (w *Wiper) Run(ctx context.Context) error {
	w.mu.Lock()
	w.running = true
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.running = false
		w.mu.Unlock()
	}()
	settled := map[string]bool{} // nothing more to do for these in this run
	t := time.NewTicker(w.o.Interval)
	defer t.Stop()
	w.scan(ctx, settled)
	for {
		select {
		case <-ctx.Done():
			return nil
		case id := <-w.queue:
			w.one(ctx, id, settled)
		case <-t.C:
			w.scan(ctx, settled)
			w.retryDocks(ctx)
		}
	}
}

// Notify tells the Wiper that item it was just VERIFIED. Inside the daemon
// (Run running) the item is queued and Notify returns at once; in a one-shot
// command (no Run) the wipe runs now, in the caller's goroutine, so that
// `ingest` ends with the camera wiped when the rule allows it.
func (w *Wiper) Notify(ctx context.Context, it custody.Item) {
	if !w.cfg.WipePolicy(it.Camera).Enabled {
		return
	}
	w.mu.Lock()
	running := w.running
	w.mu.Unlock()
	if running {
		select {
		case w.queue <- it.ID:
		default: // full: the next scan finds it
		}
		return
	}
	if err := w.Wipe(ctx, it.ID); err != nil && !errors.Is(err, ErrSourceAbsent) {
		w.log.Warn("camera file not wiped", "item", it.ID, "err", err)
	}
}

func (w *Wiper) one(ctx context.Context, id string, settled map[string]bool) {
	if settled[id] {
		return
	}
	it, err := w.ledger.Item(ctx, id)
	if err != nil {
		w.log.Warn("wipe: load item", "item", id, "err", err)
		return
	}
	done := true
	if w.cfg.WipePolicy(it.Camera).Enabled {
		err := w.Wipe(ctx, id)
		// After a refusal, calling again either starts a new attempt
		// (retry=true) or reports ErrGaveUp (retry=false).
		for i := 0; errors.Is(err, ErrRefused) && i < maxAttempts; i++ {
			err = w.Wipe(ctx, id)
		}
		switch {
		case Settled(err):
		case errors.Is(err, ErrSourceAbsent):
			done = false
		default:
			done = false
			w.log.Warn("camera file not wiped yet", "item", id, "err", err)
		}
	}
	if w.cfg.Vault.Grace.Duration > 0 {
		err := w.Release(ctx, id)
		switch {
		case err == nil:
		case errors.Is(err, ErrNotYet):
			done = false
		default:
			done = false
			w.log.Warn("vault copy not released", "item", id, "err", err)
		}
	}
	if done {
		settled[id] = true
	}
}

func (w *Wiper) scan(ctx context.Context, settled map[string]bool) {
	if !w.cfg.AnyWipe() && w.cfg.Vault.Grace.Duration <= 0 {
		return
	}
	var ids []string
	if err := w.ledger.Items(ctx, custody.Filter{States: []custody.State{custody.StateVerified}}, func(it custody.Item) error {
		if !settled[it.ID] {
			ids = append(ids, it.ID)
		}
		return nil
	}); err != nil {
		if ctx.Err() == nil {
			w.log.Error("wipe: read the ledger", "err", err)
		}
		return
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		w.one(ctx, id, settled)
	}
}

// VerifiedHook wraps a ledger so that fn runs after every VERIFIED event
// with its item is durably appended: the way the uploader's "verified" is
// turned into "now consider the wipe", without the uploader knowing about
// wipes. Every other call passes straight through.
type VerifiedHook struct {
	Ledger
	fn func(context.Context, custody.Item)
}

// OnVerified returns l with fn hooked after VERIFIED appends.
func OnVerified(l Ledger, fn func(context.Context, custody.Item)) *VerifiedHook {
	return &VerifiedHook{Ledger: l, fn: fn}
}

// Append implements Ledger.
func (h *VerifiedHook) Append(ctx context.Context, ev custody.Event, item *custody.Item) (custody.Event, error) {
	out, err := h.Ledger.Append(ctx, ev, item)
	if err == nil && ev.Type == custody.Verified && item != nil && h.fn != nil {
		h.fn(ctx, *item)
	}
	return out, err
}

// LockItem holds the Wiper's lock of item id until the returned function is
// called. Commands that rewrite an item's projection (classify) take it so
// that a vault release running at the same moment cannot write back an
// older copy of the item over theirs.
func (w *Wiper) LockItem(id string) (unlock func()) {
	m := w.itemLock(id)
	m.Lock()
	return m.Unlock
}
