package ingest

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
)

// publish puts a console inventory naming BWC-0001 (held by holder,
// retired at retired when not nil) in force as version v.
func publish(f *fixture, v uint64, holder string, retired *time.Time) {
	f.in.cfg.SetPublished(&config.Published{Console: "console-1", Version: v, Cameras: []config.InventoryCamera{
		{Serial: "BWC-0001", Kind: "body", AssignedTo: holder, Retired: retired},
	}})
}

// sessionRecords is what the ledger holds of one dock session: its
// RETIRED_DOCKED alerts and its VAULTED records with their items.
type sessionRecords struct {
	retiredDocked []custody.Event
	vaulted       []custody.Event
	items         []custody.Item
}

func recordsOf(t *testing.T, f *fixture, seq uint64) sessionRecords {
	t.Helper()
	ctx := context.Background()
	var r sessionRecords
	if err := f.ledger.Events(ctx, 0, func(e custody.Event) error {
		switch e.Type {
		case custody.RetiredDocked:
			if e.Details["dock_seq"] == strconv.FormatUint(seq, 10) {
				r.retiredDocked = append(r.retiredDocked, e)
			}
		case custody.Vaulted:
			it, err := f.ledger.Item(ctx, e.Item)
			if err != nil {
				return err
			}
			if it.DockSeq == seq {
				r.vaulted = append(r.vaulted, e)
				r.items = append(r.items, it)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

// agree checks that the session recorded RETIRED_DOCKED exactly when
// wantRetired, and that every VAULTED of it carries never_wipe exactly
// then: the alert and the wipe's promise are one decision.
func agree(t *testing.T, r sessionRecords, res Result, wantRetired bool) {
	t.Helper()
	if len(r.vaulted) == 0 {
		t.Fatal("the session vaulted nothing")
	}
	if got := len(r.retiredDocked) == 1; got != wantRetired || len(r.retiredDocked) > 1 {
		t.Errorf("%d RETIRED_DOCKED records, want retired=%v", len(r.retiredDocked), wantRetired)
	}
	for _, v := range r.vaulted {
		if got := v.Details[custody.NeverWipe] != ""; got != wantRetired {
			t.Errorf("VAULTED %s never_wipe %q, want set=%v (as RETIRED_DOCKED: %d records)", v.Item, v.Details[custody.NeverWipe], wantRetired, len(r.retiredDocked))
		}
	}
	if got := !res.Retired.IsZero(); got != wantRetired {
		t.Errorf("Result.Retired %v, want retired=%v (the bay shows what the session decided)", res.Retired, wantRetired)
	}
}

// TestSessionResolvesTheCameraOnce: a dock session resolves its camera and
// whether it is retired once, when it opens (DOCKED), and every later
// record of it follows that decision, whatever inventory is in force by
// then: RETIRED_DOCKED and each VAULTED's never_wipe agree (a session
// that alerted a retired camera never vaults items a wipe may clear, and
// one that did not alert never marks them), and the items name the holder
// the session's inventory version names.
func TestSessionResolvesTheCameraOnce(t *testing.T) {
	ctx := context.Background()
	past := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	// USB: Arrive when the camera appears, the copy pass later.
	arriveThenDock := func(t *testing.T, f *fixture, between func()) (Session, Result) {
		t.Helper()
		f.write(t, "DCIM/A.MP4", []byte("recording a"))
		f.write(t, "DCIM/B.MP4", []byte("recording b"))
		req := Request{Serial: "BWC-0001", Root: "usb:2-1", Actor: "daemon", Via: "usb"}
		sess, err := f.in.Arrive(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		between()
		req.Root, req.Session = f.cam, sess
		res, err := f.in.Dock(ctx, req, nil)
		if err != nil || res.Vaulted != 2 || res.DockSeq != sess.Seq() {
			t.Fatalf("Dock = %+v, %v", res, err)
		}
		return sess, res
	}

	t.Run("retired at arrival, not when vaulted", func(t *testing.T) {
		f := newFixture(t)
		publish(f, 1, "officer-1", &past)
		sess, res := arriveThenDock(t, f, func() {
			// A newer version that no longer retires it, and hands it over.
			publish(f, 2, "officer-2", nil)
		})
		if sess.Retired().IsZero() {
			t.Fatal("Arrive did not find the retired camera retired")
		}
		r := recordsOf(t, f, sess.Seq())
		agree(t, r, res, true)
		for i, it := range r.items {
			if it.AssignedTo != "officer-1" || r.vaulted[i].Details["inventory_version"] != "1" {
				t.Errorf("item %s assigned to %q by version %q; want officer-1 by version 1, the session's", it.ID, it.AssignedTo, r.vaulted[i].Details["inventory_version"])
			}
		}
	})

	t.Run("retired after arrival, before vaulting", func(t *testing.T) {
		f := newFixture(t)
		publish(f, 1, "officer-1", nil)
		sess, res := arriveThenDock(t, f, func() { publish(f, 2, "officer-2", &past) })
		agree(t, recordsOf(t, f, sess.Seq()), res, false)
	})

	t.Run("retirement takes effect during the pass", func(t *testing.T) {
		// A watched folder: Dock opens the session itself. The retirement's
		// effective time falls after DOCKED and before the first VAULTED.
		f := newFixture(t)
		t0 := time.Now().UTC()
		retire := t0.Add(time.Minute)
		publish(f, 1, "officer-1", &retire)
		var mu sync.Mutex
		calls := 0
		f.in.now = func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls == 1 {
				return t0 // the session opens
			}
			return t0.Add(time.Hour) // every read-back after it
		}
		f.write(t, "DCIM/A.MP4", []byte("recording a"))
		res, err := f.in.Dock(ctx, Request{Serial: "BWC-0001", Root: f.cam, Actor: "daemon", Via: "watch"}, nil)
		if err != nil || res.Vaulted != 1 {
			t.Fatalf("Dock = %+v, %v", res, err)
		}
		agree(t, recordsOf(t, f, res.DockSeq), res, false)
	})

	t.Run("a session of another camera is refused", func(t *testing.T) {
		f := newFixture(t)
		sess, err := f.in.Arrive(ctx, Request{Serial: "BWC-0001", Root: "usb:2-1", Actor: "daemon", Via: "usb"})
		if err != nil {
			t.Fatal(err)
		}
		f.write(t, "DCIM/A.MP4", []byte("recording a"))
		if res, err := f.in.Dock(ctx, Request{Serial: "BWC-0002", Root: f.cam, Actor: "daemon", Via: "usb", Session: sess}, nil); err == nil || res.Vaulted != 0 {
			t.Fatalf("Dock of BWC-0002 in BWC-0001's session = %+v, %v; want refused", res, err)
		}
	})
}
