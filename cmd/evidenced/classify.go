package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore"
)

func classifyCommand() *command {
	return &command{
		name: "classify", args: "ID", summary: "raise a recording's retention class and extend its Object Lock retention (never shorten)",
		setup: func(fs *flag.FlagSet) runner {
			class := fs.String("class", "", "the new retention class (one of retention.classes)")
			reason := fs.String("reason", "", "why (required; recorded in the custody ledger)")
			return func(ctx context.Context, e *env) error {
				if fs.NArg() != 1 || *class == "" || *reason == "" {
					return usageErrorf("classify needs one item ID, --class and --reason")
				}
				return runClassify(ctx, e, fs.Arg(0), *class, *reason)
			}
		},
	}
}

// retainUntil is the retention a class gives an item: counted from ingest,
// as the uploader counts it, so a class always means the same date.
func retainUntil(it custody.Item, days int) time.Time {
	return it.IngestedAt.UTC().AddDate(0, 0, days).Truncate(time.Second).Add(time.Second)
}

// lockedItem loads an item that has an object version, holding the wiper's
// item lock; the caller calls unlock.
func lockedItem(ctx context.Context, e *env, id string) (custody.Item, objstore.Retainer, func(), error) {
	unlock := e.svc.Wiper.LockItem(id)
	it, err := e.svc.Ledger.Item(ctx, id)
	if err != nil {
		unlock()
		if errors.Is(err, custody.ErrNotFound) {
			return it, nil, nil, fmt.Errorf("item %q: not in the ledger", id)
		}
		return it, nil, nil, err
	}
	r, ok := e.svc.Store.(objstore.Retainer)
	if e.svc.Store == nil || !ok {
		unlock()
		return it, nil, nil, fmt.Errorf("item %s: no object store with Object Lock is configured", id)
	}
	return it, r, unlock, nil
}

func runClassify(ctx context.Context, e *env, id, className, reason string) error {
	to, ok := e.svc.Config.Class(className)
	if !ok {
		return usageErrorf("--class %q is not one of the configured retention classes", className)
	}
	it, r, unlock, err := lockedItem(ctx, e, id)
	if err != nil {
		return err
	}
	defer unlock()
	if it.State != custody.StateVerified {
		// The uploader rewrites the item when it records UPLOADED and
		// VERIFIED; changing the class under it would be lost.
		return fmt.Errorf("item %s is %s: classify it once it is verified in the object store", id, it.State)
	}
	from, _ := e.svc.Config.Class(it.RetentionClass)
	until := retainUntil(it, to.Days)
	if err := objstore.CheckExtension(from.Mode, it.RetainUntil, to.Mode, until); err != nil {
		refusal := fmt.Sprintf("classify %s as %s (%s until %s) refused: %v; the class of %s is %s (%s until %s)",
			id, to.Name, to.Mode, until.Format(time.RFC3339), err, id, it.RetentionClass, from.Mode, it.RetainUntil.UTC().Format(time.RFC3339))
		if _, aerr := e.svc.Ledger.Append(ctx, custody.Event{
			Type: custody.Refused, Actor: e.actor, Camera: it.Camera, Item: id,
			Details: map[string]string{"request": "classify", "reason": reason, "refusal": refusal, "class": to.Name, "peer": e.peer},
		}, nil); aerr != nil {
			return fmt.Errorf("%s (and recording the refusal failed: %v)", refusal, aerr)
		}
		return errors.New(refusal)
	}
	if it.RetentionClass == to.Name && it.RetainUntil.Equal(until) {
		fmt.Fprintf(e.stdout, "%s is already class %s (%s until %s)\n", id, to.Name, to.Mode, until.Format(time.RFC3339))
		return nil
	}
	// The store first: the ledger must never claim a retention the object
	// does not have. A crash before the record leaves the object retained
	// longer than recorded; running classify again records it.
	if err := r.PutRetention(ctx, it.ObjectKey, it.VersionID, to.Mode, until); err != nil {
		return fmt.Errorf("extend retention of %s (version %s): %w", it.ObjectKey, it.VersionID, err)
	}
	old := it
	it.RetentionClass, it.RetainUntil = to.Name, until
	if _, err := e.svc.Ledger.Append(ctx, custody.Event{
		Type: custody.RetentionChanged, Actor: e.actor, Camera: it.Camera, Item: id,
		Details: map[string]string{
			"reason": reason, "old_class": old.RetentionClass, "new_class": to.Name,
			"old_mode": from.Mode, "new_mode": to.Mode,
			"old_retain_until": old.RetainUntil.UTC().Format(time.RFC3339), "new_retain_until": until.Format(time.RFC3339),
			"key": it.ObjectKey, "version_id": it.VersionID, "peer": e.peer,
		},
	}, &it); err != nil {
		return fmt.Errorf("record retention change of %s: %w", id, err)
	}
	fmt.Fprintf(e.stdout, "%s: class %s → %s, %s until %s\n", id, old.RetentionClass, to.Name, to.Mode, until.Format(time.RFC3339))
	return nil
}
