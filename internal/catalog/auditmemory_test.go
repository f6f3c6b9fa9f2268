package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
)

// The daily audit lists a host's checkpoints a page at a time and reads
// only the checkpoint objects anchored since its last clean audit (those
// behind it are COMPLIANCE-locked: their bytes cannot change), while a
// version added behind the followed tail after that audit still withholds
// the host on the next day.
func TestAuditReadsOnlyWhatIsNew(t *testing.T) {
	ctx := context.Background()
	s, d := anchors(t, 4)
	s.PageKeys = 2
	anchorOne := func(i int) {
		d.ingest(t, "BWC-1", "officer-1", fmt.Sprintf("P%d.MP4", i), i+1)
		d.anchor(t, s)
	}
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, d.trusted())
	sync(t, c)

	cps := anchor.Prefix("dock-01") + "checkpoints/"
	var opens, pages int
	s.SetHook(func(op, key string) error {
		switch {
		case op == "open" && strings.HasPrefix(key, cps):
			opens++
		case op == "list" && key == cps:
			pages++
		}
		return nil
	})
	audit := func(day string) {
		t.Helper()
		opens, pages = 0, 0
		if breaks, err := c.Audit(ctx); err != nil || len(breaks) != 0 {
			t.Fatalf("%s: audit of a clean history: %+v %v", day, breaks, err)
		}
	}
	// Four checkpoints (sizes 6, 11, 16, 21) and three proofs: seven
	// objects, listed two keys a page, in four calls; the audit lists
	// them once (the records' check uses the same listing).
	audit("first day")
	if opens != 7 || pages != 4 {
		t.Errorf("first day: %d checkpoint objects read in %d listing calls, want all 7 in 4", opens, pages)
	}
	audit("second day, nothing new")
	if opens != 0 || pages != 4 {
		t.Errorf("second day: %d checkpoint objects read (want 0: nothing new) in %d listing calls (want 4)", opens, pages)
	}
	anchorOne(4)
	sync(t, c)
	audit("third day, one anchor")
	if opens != 2 {
		t.Errorf("third day: %d checkpoint objects read, want 2 (the new checkpoint and its proof)", opens)
	}

	// A custodian's whole check reads everything again.
	opens = 0
	if breaks, err := c.AuditAll(ctx); err != nil || len(breaks) != 0 {
		t.Fatalf("the whole audit: %+v %v", breaks, err)
	}
	if opens != 9 {
		t.Errorf("the whole audit read %d checkpoint objects, want all 9", opens)
	}

	// A version added behind the tail after the last clean audit: the
	// incremental reading does not see it, the next audit does.
	behind := anchor.CheckpointKey("dock-01", 11) // listed in a middle page
	put(t, s, behind, []byte("not the checkpoint\n"))
	if p := sync(t, c); len(p.Broken) != 0 {
		t.Fatalf("the incremental reading saw the object behind it: %+v", p)
	}
	breaks, err := c.Audit(ctx)
	if err != nil || len(breaks) != 1 || breaks[0].Host != "dock-01" || breaks[0].Problems[0].Object != behind {
		t.Fatalf("audit after a version was added behind the tail: %+v %v", breaks, err)
	}
	if items, _ := c.Find(ctx, catalog.Filter{}); len(items) != 0 {
		t.Errorf("served after the audit: %+v", items)
	}
}

// An audit run lists a host's checkpoints/ once, whether it reads them
// all (a first audit, AuditAll) or only what is new, and checks the
// records against that one listing: a second version of a records object
// behind what the last clean audit verified (whose checkpoints the
// incremental audit does not read) still withholds the host.
func TestAuditListsTheCheckpointsOnce(t *testing.T) {
	ctx := context.Background()
	s, d := anchors(t, 4)
	s.PageKeys = 2
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, d.trusted())
	sync(t, c)

	cps := anchor.Prefix("dock-01") + "checkpoints/"
	records := anchor.Prefix("dock-01") + "records/"
	pages := map[string]int{}
	s.SetHook(func(op, key string) error {
		if op == "list" {
			pages[key]++
		}
		return nil
	})
	// How many calls one listing of each prefix takes.
	one := map[string]int{}
	for _, prefix := range []string{cps, records} {
		clear(pages)
		if err := objstore.EachVersionPage(ctx, s, prefix, func([]objstore.Version) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if one[prefix] = pages[prefix]; one[prefix] < 2 {
			t.Fatalf("one listing of %s took %d calls; want pages of two keys", prefix, one[prefix])
		}
	}
	run := func(what string, audit func(context.Context) ([]catalog.Break, error)) []catalog.Break {
		t.Helper()
		clear(pages)
		breaks, err := audit(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if pages[cps] != one[cps] {
			t.Errorf("%s listed %s in %d calls; one listing is %d", what, cps, pages[cps], one[cps])
		}
		// The records' listing stops at a second version found.
		if pages[records] == 0 || pages[records] > one[records] {
			t.Errorf("%s listed %s in %d calls; one listing is %d", what, records, pages[records], one[records])
		}
		return breaks
	}
	for _, a := range []struct {
		what  string
		audit func(context.Context) ([]catalog.Break, error)
	}{
		{"the first audit (reads everything)", c.Audit},
		{"the next audit (reads what is new)", c.Audit},
		{"the whole audit", c.AuditAll},
	} {
		if breaks := run(a.what, a.audit); len(breaks) != 0 {
			t.Fatalf("%s of a clean history: %+v", a.what, breaks)
		}
	}

	key := anchor.RecordsKey("dock-01", 1, 6)
	put(t, s, key, append(read(t, s, key), '\n'))
	breaks := run("the audit after a records version was added behind the tail", c.Audit)
	if len(breaks) != 1 || breaks[0].Host != "dock-01" || breaks[0].Problems[0].Object != key {
		t.Fatalf("audit with a second version of %s behind what was verified: %+v", key, breaks)
	}
}

// An audit whose listing of a host's checkpoints failed for now cannot
// check the records against it: it says so in its error (a check that
// could not be made, not a finding: the host is not withheld), and the
// next audit, with the store answering, finds what is there.
func TestAuditWithoutTheCheckpointsListingSaysTheRecordsWereNotChecked(t *testing.T) {
	ctx := context.Background()
	s, d := anchors(t, 2)
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, d.trusted())
	sync(t, c)
	key := anchor.RecordsKey("dock-01", 1, 6)
	put(t, s, key, append(read(t, s, key), '\n'))
	errSlow := errors.New("503 slow down")
	s.SetHook(func(op, key string) error {
		if op == "list" && key == anchor.Prefix("dock-01")+"checkpoints/" {
			return errSlow
		}
		return nil
	})
	breaks, err := c.Audit(ctx)
	s.SetHook(nil)
	if !errors.Is(err, errSlow) || !strings.Contains(fmt.Sprint(err), "its records: not checked") || len(breaks) != 0 {
		t.Fatalf("audit whose checkpoints listing failed: %+v %v; want its error, the records named as not checked, nothing withheld", breaks, err)
	}
	breaks, err = c.Audit(ctx)
	if err != nil || len(breaks) != 1 || breaks[0].Problems[0].Object != key {
		t.Fatalf("the next audit: %+v %v; want %s found", breaks, err, key)
	}
}

// hiding lists a memstore without one key: a version gone from the store.
type hiding struct {
	*memstore.Store
	hide string
}

func (h *hiding) ListVersionsPage(ctx context.Context, prefix, after string, max int) ([]objstore.Version, string, error) {
	vs, next, err := h.Store.ListVersionsPage(ctx, prefix, after, max)
	return slices.DeleteFunc(vs, func(v objstore.Version) bool { return v.Key == h.hide }), next, err
}

func (h *hiding) ListVersions(ctx context.Context, prefix string) ([]objstore.Version, error) {
	vs, err := h.Store.ListVersions(ctx, prefix)
	return slices.DeleteFunc(vs, func(v objstore.Version) bool { return v.Key == h.hide }), err
}

// A checkpoints/ version that the last clean audit verified and that is
// gone (a proof behind the tail, here) withholds the host at the next
// audit, as an audit that read everything finds it.
func TestAuditFindsAVersionGoneBehindTheTail(t *testing.T) {
	ctx := context.Background()
	s, d := anchors(t, 3)
	h := &hiding{Store: s}
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), h, d.trusted())
	sync(t, c)
	if breaks, err := c.Audit(ctx); err != nil || len(breaks) != 0 {
		t.Fatalf("audit: %+v %v", breaks, err)
	}
	h.hide = anchor.Prefix("dock-01") + "checkpoints/11.proof"
	breaks, err := c.Audit(ctx)
	if err != nil || len(breaks) != 1 || breaks[0].Problems[0].Object != h.hide {
		t.Fatalf("audit after %s is gone: %+v %v", h.hide, breaks, err)
	}
}

// anchors is a store holding n anchors of dock-01, one recording each.
func anchors(t *testing.T, n int) (*memstore.Store, *dock) {
	t.Helper()
	s := memstore.New()
	d := newDock(t, "dock-01")
	for i := range n {
		d.ingest(t, "BWC-1", "officer-1", fmt.Sprintf("P%d.MP4", i), i+1)
		d.anchor(t, s)
	}
	return s, d
}
