package catalog_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
)

// Changed names exactly the items whose records were indexed after a
// position (a host whose name is a prefix of another's included), nothing
// once read up to End, and a withheld host's items again once its mark is
// kept; a position taken under another pin starts that host again.
func TestChangedNamesWhatCameAfterThePosition(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	a, b := newDock(t, "dock-1"), newDock(t, "dock-10")
	idA := a.ingest(t, "BWC-1", "officer-1", "A.MP4", 1)
	idB := b.ingest(t, "BWC-2", "officer-2", "B.MP4", 2)
	a.anchor(t, s)
	b.anchor(t, s)
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, a.trusted(), b.trusted())
	sync(t, c)

	ids, pos, err := c.Changed(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if want := []string{idA, idB}; !slices.Equal(ids, want) {
		t.Fatalf("from the beginning: %v, want %v", ids, want)
	}
	end, err := c.End(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if asJSON(t, end) != asJSON(t, pos) {
		t.Errorf("End %s, the position after every record %s", asJSON(t, end), asJSON(t, pos))
	}
	if ids, again, err := c.Changed(ctx, pos); err != nil || len(ids) != 0 || asJSON(t, again) != asJSON(t, pos) {
		t.Errorf("nothing new: %v %s %v", ids, asJSON(t, again), err)
	}

	idA2 := a.ingest(t, "BWC-1", "officer-1", "C.MP4", 3)
	a.anchor(t, s)
	sync(t, c)
	ids, pos2, err := c.Changed(ctx, pos)
	if err != nil || !slices.Equal(ids, []string{idA2}) {
		t.Fatalf("after one more recording at dock-1: %v %v", ids, err)
	}
	if pos2["dock-10"] != pos["dock-10"] || pos2["dock-1"].Next <= pos["dock-1"].Next {
		t.Errorf("marks: before %s, after %s", asJSON(t, pos), asJSON(t, pos2))
	}

	other := pos2
	other["dock-10"] = catalog.Mark{Pinned: "another key", Next: pos2["dock-10"].Next}
	if ids, _, err := c.Changed(ctx, other); err != nil || !slices.Equal(ids, []string{idB}) {
		t.Errorf("a mark under another pin: %v %v", ids, err)
	}

	// dock-1 withheld by the audit: its records after pos are not named
	// and its mark stays where it was, so they are named once it is cleared.
	put(t, s, anchor.CheckpointKey("dock-1", 6), []byte("not the checkpoint\n"))
	if breaks, err := c.Audit(ctx); err != nil || len(breaks) != 1 {
		t.Fatalf("audit: %+v %v", breaks, err)
	}
	ids, held, err := c.Changed(ctx, pos)
	if err != nil || len(ids) != 0 || held["dock-1"] != pos["dock-1"] {
		t.Errorf("withheld: %v %s %v (from %s)", ids, asJSON(t, held), err, asJSON(t, pos))
	}
	if end, err := c.End(ctx); err != nil || len(end) != 1 {
		t.Errorf("End with dock-1 withheld: %s %v", asJSON(t, end), err)
	}
}
