package catalog_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
)

func TestSliceSize(t *testing.T) {
	day := 24 * time.Hour
	for _, c := range []struct {
		total int
		cycle time.Duration
		want  int
	}{{0, 90 * day, 0}, {1, 90 * day, 1}, {90, 90 * day, 1}, {91, 90 * day, 2}, {5, day, 5}, {5, time.Hour, 5}} {
		if got := catalog.SliceSize(c.total, c.cycle); got != c.want {
			t.Errorf("SliceSize(%d, %s) = %d, want %d", c.total, c.cycle, got, c.want)
		}
	}
}

// Slices walk every stored item once per round, in order, wrapping; a
// re-hash tells the bytes recorded from bytes changed in the store and
// from a version that is gone.
func TestScrubSlicesAndRehash(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	a, b := newDock(t, "dock-01"), newDock(t, "dock-02")
	a.objects, b.objects = s, s
	var ids []string
	for i := range 3 {
		ids = append(ids, a.ingest(t, "BWC-1", "officer-1", string(rune('A'+i))+".MP4", i))
	}
	ids = append(ids, b.ingest(t, "BWC-2", "officer-2", "D.MP4", 4))
	a.anchor(t, s)
	b.anchor(t, s)
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, a.trusted(), b.trusted())
	sync(t, c)

	var seen []string
	cur := catalog.Cursor{}
	for range 3 {
		items, total, err := c.ScrubSlice(ctx, cur, 2)
		if err != nil || total != 4 || len(items) != 2 {
			t.Fatalf("slice after %+v: %d items of %d, %v", cur, len(items), total, err)
		}
		for _, it := range items {
			seen = append(seen, it.Host+"/"+it.ID)
			r, err := catalog.RehashItem(ctx, s, it)
			if err != nil || !r.OK {
				t.Errorf("rehash %s: %+v %v", it.ID, r, err)
			}
		}
		last := items[len(items)-1]
		cur = catalog.Cursor{Host: last.Host, ID: last.ID}
	}
	want := []string{"dock-01/" + ids[0], "dock-01/" + ids[1], "dock-01/" + ids[2], "dock-02/" + ids[3], "dock-01/" + ids[0], "dock-01/" + ids[1]}
	for i := range want {
		if i >= len(seen) || seen[i] != want[i] {
			t.Fatalf("scrub order %v, want %v", seen, want)
		}
	}

	// Orphans: a version no trusted host's records name (a stranger's
	// upload, a second version put by hand) is listed; the named ones and
	// the custody objects are not.
	if o, err := c.Orphans(ctx); err != nil || len(o) != 0 {
		t.Fatalf("orphans of a clean store: %+v %v", o, err)
	}
	put(t, s, "evidence/stray.mp4", []byte("stray"))
	put(t, s, "evidence/"+ids[0], []byte("a second version"))
	o, err := c.Orphans(ctx)
	if err != nil || len(o) != 2 || o[0].Key != "evidence/"+ids[0] || o[1].Key != "evidence/stray.mp4" || o[1].Size != 5 {
		t.Errorf("orphans: %+v %v", o, err)
	}

	items, _ := c.Find(ctx, catalog.Filter{Host: "dock-02"})
	it := items[0]
	if !s.Corrupt(it.ObjectKey) {
		t.Fatal("nothing to corrupt")
	}
	if r, err := catalog.RehashItem(ctx, s, it); err != nil || r.OK || r.Missing || r.SHA256 == it.SHA256 {
		t.Errorf("rehash of a changed object: %+v %v", r, err)
	}
	it.VersionID = "no-such-version"
	if r, err := catalog.RehashItem(ctx, s, it); err != nil || r.OK || !r.Missing {
		t.Errorf("rehash of a missing version: %+v %v", r, err)
	}
}
