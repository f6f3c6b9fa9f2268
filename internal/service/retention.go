package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore"
)

// ClassifyOptions raise one item's retention class.
type ClassifyOptions struct {
	ID, Class, Reason string
}

// ClassifyResult is what classify did.
type ClassifyResult struct {
	ID       string
	OldClass string
	Class    string
	Mode     string
	Until    time.Time
	// Already: the item was of this class; nothing but (maybe) its tag
	// changed.
	Already bool
	// TagChanged: the object's retention_class tag was rewritten.
	TagChanged bool
	// Host is the dock host that ingested the item, at a console (the
	// change is recorded in the console's ledger); "" on a dock host.
	Host string
}

// retainUntil is the retention a class gives an item: counted from ingest,
// as the uploader counts it, so a class always means the same date.
func retainUntil(it custody.Item, days int) time.Time {
	return it.IngestedAt.UTC().AddDate(0, 0, days).Truncate(time.Second).Add(time.Second)
}

// needVerified is the one rule for classify and hold: both change what
// protects the item's object version, and both wait until that version is
// verified in the store. Before then the version is not proven to hold the
// evidence with its retention (a multipart upload's lock and tags are only
// settled on the way to VERIFIED), and the uploader rewrites the item when
// it records UPLOADED and VERIFIED, so a change made under it would be lost
// or land on a version that is not the evidence. Waiting risks nothing: an
// item not yet verified is kept in the vault and never wiped from the
// camera, and the uploader keeps it queued until it is verified.
func needVerified(it custody.Item, what string) error {
	if it.State == custody.StateVerified {
		return nil
	}
	return &kindError{kind: ErrNotVerified, err: fmt.Errorf(
		"item %s is %s, not yet verified in the object store: %s it once it is verified (wait for the upload and its verification; `evidenced find` shows the state)",
		it.ID, it.State, what)}
}

// lockedItem loads an item that has an object version, holding the wiper's
// item lock, and the records its hold state is read from; the caller calls
// unlock. At a console the item is the one a trusted dock host recorded
// (fleetItem), and the records are the merged ones: a hold or a class
// change made at the console is recorded in the console's own ledger,
// the item keeps the host that ingested it, and the change is applied to
// the object that host recorded.
func (s *Service) lockedItem(ctx context.Context, id string) (custody.Item, []custody.Event, objstore.Retainer, func(), error) {
	unlock := s.wiper.LockItem(id)
	var it custody.Item
	var evs []custody.Event
	var err error
	if s.catalog != nil {
		it, evs, err = s.fleetItem(ctx, id)
	} else if it, err = s.item(ctx, id); err == nil {
		if evs, err = s.ledger.Custody(ctx, id); err != nil {
			err = fmt.Errorf("custody of %s: %w", id, err)
		}
	}
	if err != nil {
		unlock()
		return it, nil, nil, nil, err
	}
	r, ok := s.store.(objstore.Retainer)
	if s.store == nil || !ok {
		unlock()
		return it, nil, nil, nil, fmt.Errorf("item %s: no object store with Object Lock is configured", id)
	}
	return it, evs, r, unlock, nil
}

// recordedItem is the item a retention record updates in this host's
// ledger: the item on a dock host; nil at a console, whose ledger holds no
// items (the record names the item and its host, and the console reads the
// retention back from its records: retentionAsRecorded).
func (s *Service) recordedItem(it *custody.Item) *custody.Item {
	if s.catalog != nil {
		return nil
	}
	return it
}

// withHost adds, at a console, the host that ingested the item to a
// record's details.
func (s *Service) withHost(it custody.Item, d map[string]string) map[string]string {
	if s.catalog != nil {
		d["host"] = it.Host
	}
	return d
}

// Classify raises an item's retention class and extends its Object Lock
// retention; it never shortens one (a refusal is recorded as REFUSED).
// The result is valid (and the change recorded) even when the error says
// only the object's retention_class tag could not be rewritten.
func (s *Service) Classify(ctx context.Context, c Caller, o ClassifyOptions) (ClassifyResult, error) {
	if err := needReason(o.Reason); err != nil {
		return ClassifyResult{}, err
	}
	id := o.ID
	to, ok := s.config.Class(o.Class)
	if !ok {
		return ClassifyResult{}, invalidf("--class %q is not one of the configured retention classes", o.Class)
	}
	it, _, r, unlock, err := s.lockedItem(ctx, id)
	if err != nil {
		return ClassifyResult{}, err
	}
	defer unlock()
	if err := needVerified(it, "classify"); err != nil {
		return ClassifyResult{}, err
	}
	from, _ := s.config.Class(it.RetentionClass)
	until := retainUntil(it, to.Days)
	res := ClassifyResult{ID: id, OldClass: it.RetentionClass, Class: to.Name, Mode: to.Mode, Until: until, Host: it.Host}
	if s.catalog == nil {
		res.Host = ""
	}
	if err := objstore.CheckExtension(from.Mode, it.RetainUntil, to.Mode, until); err != nil {
		refusal := fmt.Sprintf("classify %s as %s (%s until %s) refused: %v; the class of %s is %s (%s until %s)",
			id, to.Name, to.Mode, until.Format(time.RFC3339), err, id, it.RetentionClass, from.Mode, it.RetainUntil.UTC().Format(time.RFC3339))
		if _, aerr := s.ledger.Append(ctx, custody.Event{
			Type: custody.Refused, Actor: c.Actor, Camera: it.Camera, Item: id,
			Details: c.details(s.withHost(it, map[string]string{"request": "classify", "reason": o.Reason, "refusal": refusal, "class": to.Name, "peer": c.Peer})),
		}, nil); aerr != nil {
			return ClassifyResult{}, fmt.Errorf("%s (and recording the refusal failed: %v)", refusal, aerr)
		}
		return ClassifyResult{}, errors.New(refusal)
	}
	if it.RetentionClass == to.Name && it.RetainUntil.Equal(until) {
		// A run whose tag update failed is finished by running it again.
		res.Already = true
		res.TagChanged, err = retagClass(ctx, s.store, it, to.Name)
		if err != nil {
			return ClassifyResult{}, fmt.Errorf("%s is class %s, but its object's retention_class tag could not be updated: %w", id, to.Name, s.storeErr(err))
		}
		return res, nil
	}
	// The store first: the ledger must never claim a retention the object
	// does not have. A crash before the record leaves the object retained
	// longer than recorded; running classify again records it.
	if err := r.PutRetention(ctx, it.ObjectKey, it.VersionID, to.Mode, until); err != nil {
		return ClassifyResult{}, fmt.Errorf("extend retention of %s (version %s): %w", it.ObjectKey, it.VersionID, s.storeErr(err))
	}
	// Then the label: the lock is what protects the footage; the tag only
	// has to stop contradicting the ledger. Its failure is recorded and
	// reported, never hidden, and does not undo the extension.
	tagState := "updated"
	changed, tagErr := retagClass(ctx, s.store, it, to.Name)
	tagErr = s.storeErr(tagErr)
	switch {
	case tagErr != nil:
		tagState = "not updated: " + tagErr.Error()
	case !changed:
		tagState = "unchanged"
	}
	res.TagChanged = changed
	old := it
	it.RetentionClass, it.RetainUntil = to.Name, until
	if _, err := s.ledger.Append(ctx, custody.Event{
		Type: custody.RetentionChanged, Actor: c.Actor, Camera: it.Camera, Item: id,
		Details: c.details(s.withHost(it, map[string]string{
			"reason": o.Reason, "old_class": old.RetentionClass, "new_class": to.Name,
			"old_mode": from.Mode, "new_mode": to.Mode,
			"old_retain_until": old.RetainUntil.UTC().Format(time.RFC3339), "new_retain_until": until.Format(time.RFC3339),
			"key": it.ObjectKey, "version_id": it.VersionID, "peer": c.Peer, "retention_class_tag": tagState,
		})),
	}, s.recordedItem(&it)); err != nil {
		return ClassifyResult{}, fmt.Errorf("record retention change of %s: %w", id, err)
	}
	if tagErr != nil {
		return res, fmt.Errorf("%s: retention extended and recorded, but the object's retention_class tag still says %s: %w (run classify again to retry the tag)", id, old.RetentionClass, tagErr)
	}
	return res, nil
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

// HoldOptions name one case's hold on one item.
type HoldOptions struct {
	ID, Case, Reason string
}

// HoldResult is an item's legal hold after hold or release.
type HoldResult struct {
	ID   string
	Case string
	// HeldBy are the cases that hold the item now.
	HeldBy []string
	// Unchanged: the case already held it (hold); nothing was recorded.
	Unchanged bool
	// Host is the dock host that ingested the item, at a console (the
	// hold is recorded in the console's ledger); "" on a dock host.
	Host string
}

// On reports whether the object's legal hold is on.
func (r HoldResult) On() bool { return len(r.HeldBy) > 0 }

// holdingCases reads which cases hold an item from its custody events.
func holdingCases(evs []custody.Event) []string {
	var cases []string
	for _, ev := range evs {
		c := ev.Details["case"]
		switch ev.Type {
		case custody.HoldSet:
			if !slices.Contains(cases, c) {
				cases = append(cases, c)
			}
		case custody.HoldReleased:
			cases = slices.DeleteFunc(cases, func(x string) bool { return x == c })
		}
	}
	return cases
}

// Hold places a case's legal hold on an item. The object's legal hold is
// turned on before HOLD_SET is recorded: a crash leaves it held, never
// recorded as held but not.
func (s *Service) Hold(ctx context.Context, c Caller, o HoldOptions) (HoldResult, error) {
	return s.hold(ctx, c, o, true)
}

// Release ends a case's hold. HOLD_RELEASED is recorded first and the
// object's hold turned off only when no other case holds it (a crash leaves
// the object held longer, never released unrecorded); a release whose store
// call failed is completed by running it again.
func (s *Service) Release(ctx context.Context, c Caller, o HoldOptions) (HoldResult, error) {
	return s.hold(ctx, c, o, false)
}

func (s *Service) hold(ctx context.Context, c Caller, o HoldOptions, on bool) (HoldResult, error) {
	if err := needReason(o.Reason); err != nil {
		return HoldResult{}, err
	}
	id, kase := o.ID, o.Case
	if err := custodyText("--case", kase); err != nil {
		return HoldResult{}, err
	}
	it, evs, r, unlock, err := s.lockedItem(ctx, id)
	if err != nil {
		return HoldResult{}, err
	}
	defer unlock()
	if on {
		if err := needVerified(it, "hold"); err != nil {
			return HoldResult{}, err
		}
	} else if it.ObjectKey == "" || it.VersionID == "" {
		return HoldResult{}, fmt.Errorf("item %s is %s: it has no object version, so no legal hold to release", id, it.State)
	}
	cases := holdingCases(evs)
	res := HoldResult{ID: id, Case: kase}
	details := c.details(s.withHost(it, map[string]string{"case": kase, "reason": o.Reason, "key": it.ObjectKey, "version_id": it.VersionID, "peer": c.Peer}))
	res.Host = details["host"]
	if on {
		if err := r.PutLegalHold(ctx, it.ObjectKey, it.VersionID, true); err != nil {
			return HoldResult{}, fmt.Errorf("legal hold on %s (version %s): %w", it.ObjectKey, it.VersionID, s.storeErr(err))
		}
		if slices.Contains(cases, kase) {
			res.HeldBy, res.Unchanged = cases, true
			return res, nil
		}
		cases = append(cases, kase)
		details["legal_hold"], details["held_by"] = "on", joinCases(cases)
		if _, err := s.ledger.Append(ctx, custody.Event{Type: custody.HoldSet, Actor: c.Actor, Camera: it.Camera, Item: id, Details: details}, nil); err != nil {
			return HoldResult{}, fmt.Errorf("record hold of %s: %w", id, err)
		}
		res.HeldBy = cases
		return res, nil
	}
	if !slices.Contains(cases, kase) {
		if len(cases) == 0 && lastHoldOff(evs) {
			// A release recorded before a failed store call: finish it.
			if err := r.PutLegalHold(ctx, it.ObjectKey, it.VersionID, false); err != nil {
				return HoldResult{}, fmt.Errorf("legal hold off on %s (version %s): %w", it.ObjectKey, it.VersionID, s.storeErr(err))
			}
		}
		return HoldResult{}, fmt.Errorf("item %s is not held by case %q (held by: %s)", id, kase, strings.Join(cases, ", "))
	}
	cases = slices.DeleteFunc(cases, func(x string) bool { return x == kase })
	details["legal_hold"], details["held_by"] = "on", joinCases(cases)
	if len(cases) == 0 {
		details["legal_hold"] = "off"
	}
	if _, err := s.ledger.Append(ctx, custody.Event{Type: custody.HoldReleased, Actor: c.Actor, Camera: it.Camera, Item: id, Details: details}, nil); err != nil {
		return HoldResult{}, fmt.Errorf("record release of %s: %w", id, err)
	}
	res.HeldBy = cases
	if len(cases) > 0 {
		return res, nil
	}
	if err := r.PutLegalHold(ctx, it.ObjectKey, it.VersionID, false); err != nil {
		return HoldResult{}, fmt.Errorf("release recorded, but turning the legal hold off on %s (version %s) failed (run release again): %w", it.ObjectKey, it.VersionID, s.storeErr(err))
	}
	return res, nil
}

func joinCases(cases []string) string { return strings.Join(cases, ",") }

// lastHoldOff reports whether the item's last hold event released the last
// case (so the object's legal hold is meant to be off).
func lastHoldOff(evs []custody.Event) bool {
	for i := len(evs) - 1; i >= 0; i-- {
		switch evs[i].Type {
		case custody.HoldSet:
			return false
		case custody.HoldReleased:
			return evs[i].Details["legal_hold"] == "off"
		}
	}
	return false
}
