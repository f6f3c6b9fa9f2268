package catalog_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
)

// EachItem walks, a small batch at a time, exactly the items Find serves,
// each id once, as the host that uploaded it; batches of 2 make the walk
// cross many batch ends, one of them between two hosts' copies of an id.
func TestEachItemIsEveryServedItemOnceAcrossBatches(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	a, b := newDock(t, "dock-01"), newDock(t, "dock-02")
	n := 0
	for i := range 5 {
		n++
		a.ingest(t, "BWC-1", "officer-1", fmt.Sprintf("A%02d.MP4", i), n)
		n++
		b.ingest(t, "BWC-2", "officer-2", fmt.Sprintf("B%02d.MP4", i), n)
	}
	// The same recordings ingested at both hosts: only dock-02 uploaded
	// the first (served as dock-02's), both the second (as dock-01's).
	a.vaultOnly = true
	a.ingest(t, "BWC-3", "officer-3", "SHARED1.MP4", n+1)
	b.ingest(t, "BWC-3", "officer-3", "SHARED1.MP4", n+2)
	a.vaultOnly = false
	a.ingest(t, "BWC-3", "officer-3", "SHARED2.MP4", n+3)
	b.ingest(t, "BWC-3", "officer-3", "SHARED2.MP4", n+4)
	a.anchor(t, s)
	b.anchor(t, s)
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, a.trusted(), b.trusted())
	sync(t, c)

	all, err := c.Find(ctx, catalog.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]custody.Item{}
	for _, it := range all { // Find's order is by host: the first uploaded copy wins
		if prev, ok := want[it.ID]; !ok || (prev.ObjectKey == "" && it.ObjectKey != "") {
			want[it.ID] = it
		}
	}
	if len(want) != 12 || want["BWC-3-SHARED1.MP4"].Host != "dock-02" || want["BWC-3-SHARED2.MP4"].Host != "dock-01" {
		t.Fatalf("the fleet is not what the test builds: %d ids, %+v", len(want), want)
	}
	for _, size := range []int{1, 2, 5, 1024} {
		restore := catalog.SetEachItemBatch(size)
		got := map[string]custody.Item{}
		var order []string
		err := c.EachItem(ctx, func(it custody.Item) error {
			if _, dup := got[it.ID]; dup {
				t.Errorf("batch %d: %s walked twice", size, it.ID)
			}
			got[it.ID] = it
			order = append(order, it.ID)
			return nil
		})
		restore()
		if err != nil {
			t.Fatalf("batch %d: %v", size, err)
		}
		if asJSON(t, got) != asJSON(t, want) {
			t.Errorf("batch %d: walked %d items %v\nwant %d: %s", size, len(got), order, len(want), asJSON(t, want))
		}
		for i := 1; i < len(order); i++ {
			if order[i-1] >= order[i] {
				t.Errorf("batch %d: not in id order: %v", size, order)
				break
			}
		}
	}
}
