package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
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
			Details: e.withBehalf(map[string]string{"request": "classify", "reason": reason, "refusal": refusal, "class": to.Name, "peer": e.peer}),
		}, nil); aerr != nil {
			return fmt.Errorf("%s (and recording the refusal failed: %v)", refusal, aerr)
		}
		return errors.New(refusal)
	}
	if it.RetentionClass == to.Name && it.RetainUntil.Equal(until) {
		// A run whose tag update failed is finished by running it again.
		changed, err := retagClass(ctx, e.svc.Store, it, to.Name)
		if err != nil {
			return fmt.Errorf("%s is class %s, but its object's retention_class tag could not be updated: %w", id, to.Name, err)
		}
		fmt.Fprintf(e.stdout, "%s is already class %s (%s until %s)\n", id, to.Name, to.Mode, until.Format(time.RFC3339))
		if changed {
			fmt.Fprintf(e.stdout, "%s: the object's retention_class tag now says %s\n", id, to.Name)
		}
		return nil
	}
	// The store first: the ledger must never claim a retention the object
	// does not have. A crash before the record leaves the object retained
	// longer than recorded; running classify again records it.
	if err := r.PutRetention(ctx, it.ObjectKey, it.VersionID, to.Mode, until); err != nil {
		return fmt.Errorf("extend retention of %s (version %s): %w", it.ObjectKey, it.VersionID, err)
	}
	// Then the label: the lock is what protects the footage; the tag only
	// has to stop contradicting the ledger. Its failure is recorded and
	// reported, never hidden, and does not undo the extension.
	tagState := "updated"
	changed, tagErr := retagClass(ctx, e.svc.Store, it, to.Name)
	switch {
	case tagErr != nil:
		tagState = "not updated: " + tagErr.Error()
	case !changed:
		tagState = "unchanged"
	}
	old := it
	it.RetentionClass, it.RetainUntil = to.Name, until
	if _, err := e.svc.Ledger.Append(ctx, custody.Event{
		Type: custody.RetentionChanged, Actor: e.actor, Camera: it.Camera, Item: id,
		Details: e.withBehalf(map[string]string{
			"reason": reason, "old_class": old.RetentionClass, "new_class": to.Name,
			"old_mode": from.Mode, "new_mode": to.Mode,
			"old_retain_until": old.RetainUntil.UTC().Format(time.RFC3339), "new_retain_until": until.Format(time.RFC3339),
			"key": it.ObjectKey, "version_id": it.VersionID, "peer": e.peer, "retention_class_tag": tagState,
		}),
	}, &it); err != nil {
		return fmt.Errorf("record retention change of %s: %w", id, err)
	}
	fmt.Fprintf(e.stdout, "%s: class %s → %s, %s until %s\n", id, old.RetentionClass, to.Name, to.Mode, until.Format(time.RFC3339))
	if tagErr != nil {
		return fmt.Errorf("%s: retention extended and recorded, but the object's retention_class tag still says %s: %w (run classify again to retry the tag)", id, old.RetentionClass, tagErr)
	}
	return nil
}

// retagClass makes the object version's retention_class tag say class,
// keeping its other tags. It reports whether it changed anything; a store
// without tagging support changes nothing.
func retagClass(ctx context.Context, store objstore.Store, it custody.Item, class string) (bool, error) {
	tg, ok := store.(objstore.Tagger)
	if !ok {
		return false, nil
	}
	info, err := store.Stat(ctx, it.ObjectKey, it.VersionID)
	if err != nil {
		return false, fmt.Errorf("read tags of %s (version %s): %w", it.ObjectKey, it.VersionID, err)
	}
	if info.Tags["retention_class"] == class {
		return false, nil
	}
	tags := maps.Clone(info.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	tags["retention_class"] = class
	if err := tg.PutTags(ctx, it.ObjectKey, it.VersionID, tags); err != nil {
		return false, fmt.Errorf("tag %s (version %s): %w", it.ObjectKey, it.VersionID, err)
	}
	return true, nil
}
