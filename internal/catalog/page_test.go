package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
)

// A search answered a page at a time is the search answered whole, cut:
// for every filter (through the officer index, the camera index, or the
// items themselves), every page size and offset, the pages put together
// are the full result in the same order, each page says the same total,
// the total is what a scan of every item with the filter's own rule
// finds, and a filter the index keys cannot answer (states, camera and
// officer together) is applied before the page is cut.
func TestFindPagesAreTheWholeResultCut(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	a, b := newDock(t, "dock-01"), newDock(t, "dock-02")
	// BWC-1 is issued to officer-1 and docks at both hosts; every third
	// recording stops at VAULTED, so a state filter drops some matches
	// from the middle of the index's range. BWC-2 (officer-2) is also
	// seen by officer-1's index once (a camera re-issued).
	n := 0
	for i := range 14 {
		for _, d := range []*dock{a, b} {
			n++
			d.vaultOnly = n%3 == 0
			d.ingest(t, "BWC-1", "officer-1", fmt.Sprintf("F%02d.MP4", i), n)
		}
	}
	for i := range 4 {
		n++
		a.vaultOnly = false
		a.ingest(t, "BWC-2", "officer-2", fmt.Sprintf("G%02d.MP4", i), n)
	}
	n++
	b.vaultOnly = false
	b.ingest(t, "BWC-2", "officer-1", "H.MP4", n)
	a.anchor(t, s)
	b.anchor(t, s)
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, a.trusted(), b.trusted())
	sync(t, c)

	all, err := c.Find(ctx, catalog.Filter{})
	if err != nil || len(all) != 2*14+4+1 {
		t.Fatalf("find everything: %d items, %v", len(all), err)
	}
	from, to := base.Add(5*time.Minute-time.Hour), base.Add(22*time.Minute-time.Hour) // recorded an hour before docking
	verified := []custody.State{custody.StateVerified}
	filters := []catalog.Filter{
		{},
		{Host: "dock-02"},
		{Filter: custody.Filter{AssignedTo: "officer-1"}},
		{Filter: custody.Filter{AssignedTo: "officer-1", Since: from, Until: to}},
		{Filter: custody.Filter{AssignedTo: "officer-1", Since: from}, Host: "dock-01"},
		{Filter: custody.Filter{AssignedTo: "officer-1", States: verified}},
		{Filter: custody.Filter{AssignedTo: "officer-1", Camera: "BWC-2"}},
		{Filter: custody.Filter{Camera: "BWC-1"}},
		{Filter: custody.Filter{Camera: "BWC-1", Until: to}, Host: "dock-02"},
		{Filter: custody.Filter{Camera: "BWC-1", States: verified, Since: from}},
		{Filter: custody.Filter{Camera: "BWC-2", AssignedTo: "officer-2"}},
		{Filter: custody.Filter{Since: from, Until: to}},
		{Filter: custody.Filter{States: []custody.State{custody.StateVaulted}}, Host: "dock-01"},
		{Filter: custody.Filter{Camera: "BWC-9"}},
		// Without an officer or camera: through the unverified index
		// (states without verified), the camera index's time ranges
		// (a time after 1970), or every item.
		{Filter: custody.Filter{States: []custody.State{custody.StateVaulted}}},
		{Filter: custody.Filter{States: []custody.State{custody.StateUploaded, custody.StateVaulted}, Since: from}},
		{Filter: custody.Filter{States: []custody.State{custody.StateUploaded}}},
		{Filter: custody.Filter{States: verified}},
		{Filter: custody.Filter{States: verified, Since: from, Until: to}, Host: "dock-02"},
		{Filter: custody.Filter{Since: from}},
		{Filter: custody.Filter{Until: to}, Host: "dock-02"},
		{Filter: custody.Filter{Since: time.Unix(-3600, 0), Until: to}},
	}
	key := func(it custody.Item) string { return it.Host + "/" + it.ID }
	for _, f := range filters {
		name := fmt.Sprintf("%+v host=%q", f.Filter, f.Host)
		// The scan: every item, the filter's own rule.
		var scan []string
		for _, it := range all {
			if f.Filter.Matches(it) && (f.Host == "" || it.Host == f.Host) {
				scan = append(scan, key(it))
			}
		}
		whole, err := c.FindPage(ctx, f, catalog.Page{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := make([]string, len(whole.Items))
		for i, it := range whole.Items {
			got[i] = key(it)
			if !f.Filter.Matches(it) || (f.Host != "" && it.Host != f.Host) {
				t.Errorf("%s: found %s, which the filter does not select", name, got[i])
			}
		}
		if whole.Total != len(scan) || len(got) != len(scan) {
			t.Errorf("%s: total %d, %d items; a scan of every item finds %d", name, whole.Total, len(got), len(scan))
		}
		if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(scan))) {
			t.Errorf("%s: found %v, the scan %v", name, got, scan)
		}
		// Without an officer or camera the order is host then id, as
		// reading every item gives it (all is in that order), whichever
		// index the candidates came from.
		if f.AssignedTo == "" && f.Camera == "" && !slices.Equal(got, scan) {
			t.Errorf("%s: found %v, in every item's order %v", name, got, scan)
		}
		// Through an index the order is recording time, then host and id.
		if f.AssignedTo != "" || f.Camera != "" {
			if !slices.IsSortedFunc(whole.Items, func(x, y custody.Item) int {
				if c := x.RecordedAt.Compare(y.RecordedAt); c != 0 {
					return c
				}
				return strings.Compare(key(x), key(y))
			}) {
				t.Errorf("%s: not in (recorded_at, host, id) order: %v", name, got)
			}
		}
		for _, limit := range []int{1, 2, 5, 7, 50} {
			var joined []string
			for off := 0; off <= len(got)+limit; off += limit {
				p, err := c.FindPage(ctx, f, catalog.Page{Offset: off, Limit: limit})
				if err != nil {
					t.Fatalf("%s, offset %d limit %d: %v", name, off, limit, err)
				}
				if p.Total != len(got) {
					t.Errorf("%s, offset %d limit %d: total %d, want %d", name, off, limit, p.Total, len(got))
				}
				if want := max(0, min(limit, len(got)-off)); len(p.Items) != want {
					t.Errorf("%s, offset %d limit %d: %d items, want %d", name, off, limit, len(p.Items), want)
				}
				for _, it := range p.Items {
					joined = append(joined, key(it))
				}
			}
			if !slices.Equal(joined, got) {
				t.Errorf("%s, pages of %d put together:\n%v\nthe whole result:\n%v", name, limit, joined, got)
			}
			// The same pages, each asked for after the last one's
			// position: the first says the total, the last has no next.
			joined = nil
			p, err := c.FindPage(ctx, f, catalog.Page{Limit: limit})
			for pages := 0; err == nil; pages++ {
				if pages == 0 && p.Total != len(got) {
					t.Errorf("%s, first page of %d: total %d, want %d", name, limit, p.Total, len(got))
				}
				if want := got[len(joined):min(len(got), len(joined)+limit)]; !slices.Equal(keys(p.Items, key), want) {
					t.Errorf("%s, page %d of %d after a position: %v, want %v", name, pages+1, limit, keys(p.Items, key), want)
					break
				}
				joined = append(joined, keys(p.Items, key)...)
				if p.Next == nil || pages > len(got) {
					break
				}
				p, err = c.FindPage(ctx, f, catalog.Page{After: p.Next, Limit: limit})
			}
			if err != nil {
				t.Fatalf("%s, pages of %d after a position: %v", name, limit, err)
			}
			if !slices.Equal(joined, got) {
				t.Errorf("%s, pages of %d each after the last one's position, put together:\n%v\nthe whole result:\n%v", name, limit, joined, got)
			}
		}
	}
	if _, err := c.FindPage(ctx, catalog.Filter{}, catalog.Page{Offset: -1}); err == nil {
		t.Error("a negative offset was accepted")
	}
}

func keys(items []custody.Item, key func(custody.Item) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = key(it)
	}
	return out
}

// A search without an officer or camera reads at most Page.MaxScan items
// to answer, and says so plainly past it (ErrTooBroad): by a state that
// includes verified (every item read), by time (every item recorded then).
// A search the indexes answer within the bound, and one by a state not
// yet verified (the unverified index: the backlog), is answered.
func TestFindPageScanBound(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	a := newDock(t, "dock-01")
	for i := range 10 {
		a.vaultOnly = i == 4
		a.ingest(t, "BWC-1", "officer-1", fmt.Sprintf("F%02d.MP4", i), i+1)
	}
	a.anchor(t, s)
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, a.trusted())
	sync(t, c)
	from := base.Add(-time.Hour)
	for _, tc := range []struct {
		f       custody.Filter
		bound   int
		tooWide bool
		total   int
	}{
		{custody.Filter{States: []custody.State{custody.StateVerified}}, 9, true, 0},
		{custody.Filter{States: []custody.State{custody.StateVerified}}, 10, false, 9},
		{custody.Filter{Since: from}, 9, true, 0},
		{custody.Filter{Since: from}, 10, false, 10},
		{custody.Filter{States: []custody.State{custody.StateVaulted}}, 1, false, 1},
		{custody.Filter{AssignedTo: "officer-1"}, 1, false, 10},
		{custody.Filter{}, 1, false, 10},
	} {
		p, err := c.FindPage(ctx, catalog.Filter{Filter: tc.f}, catalog.Page{Limit: 3, MaxScan: tc.bound})
		switch {
		case tc.tooWide && !errors.Is(err, catalog.ErrTooBroad):
			t.Errorf("%+v within %d: %v, want ErrTooBroad", tc.f, tc.bound, err)
		case tc.tooWide && !strings.Contains(err.Error(), fmt.Sprintf("more than %d recordings", tc.bound)):
			t.Errorf("%+v within %d: %q does not say the bound", tc.f, tc.bound, err)
		case !tc.tooWide && (err != nil || p.Total != tc.total):
			t.Errorf("%+v within %d: total %d, %v; want %d", tc.f, tc.bound, p.Total, err, tc.total)
		}
	}
}
