package catalog_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
)

// A camera whose clock lost its battery says its recordings were made in
// 1970, 2000, before 1970 or at the zero time: each is still found and
// counted, by camera and by officer, with and without a time range and a
// page, exactly as a scan of every item with the filter's own rule finds.
func TestFindCountsRecordingsOfAClockBefore1970(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	d := newDock(t, "dock-01")
	clocks := []time.Time{
		{}, // the zero time: a camera that says nothing sensible
		time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC),
		time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, 0).UTC(),
		time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 2, 7, 0, 0, 0, time.UTC),
	}
	for i, at := range clocks {
		d.recorded = &at
		d.ingest(t, "BWC-1", "officer-1", fmt.Sprintf("F%02d.MP4", i), i)
	}
	d.anchor(t, s)
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, d.trusted())
	sync(t, c)
	all, err := c.Find(ctx, catalog.Filter{})
	if err != nil || len(all) != len(clocks) {
		t.Fatalf("find everything: %d items, %v", len(all), err)
	}
	before1970 := time.Date(1969, 12, 31, 23, 30, 0, 0, time.UTC)
	for _, f := range []catalog.Filter{
		{Filter: custody.Filter{Camera: "BWC-1"}},
		{Filter: custody.Filter{AssignedTo: "officer-1"}},
		{Filter: custody.Filter{Camera: "BWC-1", Until: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{Filter: custody.Filter{AssignedTo: "officer-1", Since: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{Filter: custody.Filter{Camera: "BWC-1", Until: before1970}},
		{Filter: custody.Filter{AssignedTo: "officer-1", Until: time.Unix(0, 0)}},
		{Filter: custody.Filter{Camera: "BWC-1", Since: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), Until: before1970}},
		{Filter: custody.Filter{Camera: "BWC-1", Since: time.Unix(0, 0), Until: time.Unix(0, 1)}},
	} {
		want := 0
		for _, it := range all {
			if f.Filter.Matches(it) {
				want++
			}
		}
		got, err := c.Find(ctx, f)
		if err != nil || len(got) != want {
			t.Errorf("find %+v: %d items (%v), want %d", f.Filter, len(got), err, want)
		}
		for _, limit := range []int{1, 2} {
			page, err := c.FindPage(ctx, f, catalog.Page{Limit: limit})
			if err != nil || page.Total != want {
				t.Errorf("find %+v, a page of %d: total %d (%v), want %d", f.Filter, limit, page.Total, err, want)
			}
		}
	}
}
