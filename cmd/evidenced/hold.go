package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/evidenced/evidenced/internal/custody"
)

func holdCommand() *command {
	return &command{
		name: "hold", args: "ID", summary: "place a recording on legal hold for a case (S3 legal hold; one hold per case)",
		setup: func(fs *flag.FlagSet) runner {
			kase := fs.String("case", "", "the case that holds it (required)")
			reason := fs.String("reason", "", "why (required; recorded in the custody ledger)")
			return func(ctx context.Context, e *env) error {
				if fs.NArg() != 1 || *kase == "" || *reason == "" {
					return usageErrorf("hold needs one item ID, --case and --reason")
				}
				return runHold(ctx, e, fs.Arg(0), *kase, *reason, true)
			}
		},
	}
}

func releaseCommand() *command {
	return &command{
		name: "release", args: "ID", summary: "release a case's legal hold; the object's hold ends when no case holds it",
		setup: func(fs *flag.FlagSet) runner {
			kase := fs.String("case", "", "the case whose hold ends (required)")
			reason := fs.String("reason", "", "why (required; recorded in the custody ledger)")
			return func(ctx context.Context, e *env) error {
				if fs.NArg() != 1 || *kase == "" || *reason == "" {
					return usageErrorf("release needs one item ID, --case and --reason")
				}
				return runHold(ctx, e, fs.Arg(0), *kase, *reason, false)
			}
		},
	}
}

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

// runHold sets (on) or releases a case's hold. Setting turns the object's
// legal hold on before recording HOLD_SET (a crash leaves it held, never
// recorded as held but not). Releasing records HOLD_RELEASED first and
// turns the object's hold off only when no other case holds it (a crash
// leaves the object held longer, never released unrecorded); a release
// whose store call failed is completed by running it again.
func runHold(ctx context.Context, e *env, id, kase, reason string, on bool) error {
	if err := custodyText("--case", kase); err != nil {
		return err
	}
	it, r, unlock, err := lockedItem(ctx, e, id)
	if err != nil {
		return err
	}
	defer unlock()
	if it.ObjectKey == "" || it.VersionID == "" {
		return fmt.Errorf("item %s is %s: a legal hold applies to the object version, which does not exist yet", id, it.State)
	}
	evs, err := e.svc.Ledger.Custody(ctx, id)
	if err != nil {
		return err
	}
	cases := holdingCases(evs)
	details := e.withBehalf(map[string]string{"case": kase, "reason": reason, "key": it.ObjectKey, "version_id": it.VersionID, "peer": e.peer})
	if on {
		if err := r.PutLegalHold(ctx, it.ObjectKey, it.VersionID, true); err != nil {
			return fmt.Errorf("legal hold on %s (version %s): %w", it.ObjectKey, it.VersionID, err)
		}
		if slices.Contains(cases, kase) {
			fmt.Fprintf(e.stdout, "%s is already held by case %s (held by: %s)\n", id, kase, strings.Join(cases, ", "))
			return nil
		}
		cases = append(cases, kase)
		details["legal_hold"], details["held_by"] = "on", strings.Join(cases, ",")
		if _, err := e.svc.Ledger.Append(ctx, custody.Event{Type: custody.HoldSet, Actor: e.actor, Camera: it.Camera, Item: id, Details: details}, nil); err != nil {
			return fmt.Errorf("record hold of %s: %w", id, err)
		}
		fmt.Fprintf(e.stdout, "%s: legal hold ON (held by: %s)\n", id, strings.Join(cases, ", "))
		return nil
	}
	if !slices.Contains(cases, kase) {
		if len(cases) == 0 && lastHoldOff(evs) {
			// A release recorded before a failed store call: finish it.
			if err := r.PutLegalHold(ctx, it.ObjectKey, it.VersionID, false); err != nil {
				return fmt.Errorf("legal hold off on %s (version %s): %w", it.ObjectKey, it.VersionID, err)
			}
		}
		return fmt.Errorf("item %s is not held by case %q (held by: %s)", id, kase, strings.Join(cases, ", "))
	}
	cases = slices.DeleteFunc(cases, func(x string) bool { return x == kase })
	details["legal_hold"], details["held_by"] = "on", strings.Join(cases, ",")
	if len(cases) == 0 {
		details["legal_hold"] = "off"
	}
	if _, err := e.svc.Ledger.Append(ctx, custody.Event{Type: custody.HoldReleased, Actor: e.actor, Camera: it.Camera, Item: id, Details: details}, nil); err != nil {
		return fmt.Errorf("record release of %s: %w", id, err)
	}
	if len(cases) > 0 {
		fmt.Fprintf(e.stdout, "%s: case %s released; legal hold stays ON (held by: %s)\n", id, kase, strings.Join(cases, ", "))
		return nil
	}
	if err := r.PutLegalHold(ctx, it.ObjectKey, it.VersionID, false); err != nil {
		return fmt.Errorf("release recorded, but turning the legal hold off on %s (version %s) failed (run release again): %w", it.ObjectKey, it.VersionID, err)
	}
	fmt.Fprintf(e.stdout, "%s: case %s released; legal hold OFF (no case holds it)\n", id, kase)
	return nil
}

// custodyText refuses a flag value the ledger cannot hold as is.
func custodyText(flag, v string) error {
	if len(v) > 256 || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ',' }) {
		return usageErrorf("%s %q: at most 256 characters, no control characters or commas", flag, v)
	}
	return nil
}

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
