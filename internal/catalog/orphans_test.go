package catalog_test

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
)

// orphansBySet is what the orphans were before by_object: the store's
// listing minus a set of every served item's object version.
func orphansBySet(t *testing.T, c *catalog.Catalog, s *memstore.Store) []catalog.Orphan {
	t.Helper()
	ctx := context.Background()
	items, err := c.Find(ctx, catalog.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	named := map[[2]string]bool{}
	for _, it := range items {
		if it.ObjectKey != "" {
			named[[2]string{it.ObjectKey, it.VersionID}] = true
		}
	}
	vs, err := s.ListVersions(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	out := []catalog.Orphan{}
	for _, v := range vs {
		if strings.HasPrefix(v.Key, "_custody/") || strings.HasPrefix(v.Key, "_inventory/") || named[[2]string{v.Key, v.VersionID}] {
			continue
		}
		out = append(out, catalog.Orphan{Key: v.Key, VersionID: v.VersionID, Size: v.Size})
	}
	slices.SortFunc(out, func(a, b catalog.Orphan) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.VersionID, b.VersionID))
	})
	return out
}

// The orphans are a merge of the store's listing, a page at a time, with
// the index's items by object (by_object): the same versions as the
// listing minus a set of every served item's object, with orphans in the
// first, a middle and the last page of the listing, a second version of
// an item's object, the version an item no longer names after it was
// uploaded again, and the objects of a withheld host. An index written
// before by_object gets it from its items, with the same result.
func TestOrphansMergeIsTheSetDifference(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	a, b := newDock(t, "dock-01"), newDock(t, "dock-02")
	a.objects, b.objects = s, s
	var ids []string
	for i := range 4 {
		ids = append(ids, a.ingest(t, "BWC-1", "officer-1", fmt.Sprintf("P%d.MP4", i), i+1))
	}
	a.anchor(t, s)
	for i := range 2 {
		b.ingest(t, "BWC-2", "officer-2", fmt.Sprintf("Q%d.MP4", i), 10+i)
	}
	b.anchor(t, s)
	b.ingest(t, "BWC-2", "officer-2", "Q9.MP4", 20)
	b.anchor(t, s)
	path := filepath.Join(t.TempDir(), "catalog.db")
	c := openCatalog(t, path, s, a.trusted(), b.trusted())
	sync(t, c)
	// An item uploaded again after it was indexed: the version it named
	// before is no longer named by anyone.
	again := "evidence/" + ids[1]
	put(t, s, again, []byte("uploaded again"))
	info, err := s.Stat(ctx, again, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.l.Append(ctx, custody.Event{Type: custody.Uploaded, Item: ids[1], Actor: "evidenced@dock-01",
		At: base.Add(time.Hour), Camera: "BWC-1", Details: map[string]string{
			"key": again, "version_id": info.VersionID, "retention_class": "uncategorized",
			"retain_until": base.Add(90 * 24 * time.Hour).Format(time.RFC3339)}}, nil); err != nil {
		t.Fatal(err)
	}
	a.anchor(t, s)
	sync(t, c)

	put(t, s, "0-first.mp4", []byte("before everything"))           // the first page
	put(t, s, "evidence/"+ids[2]+".stray", []byte("between items")) // a middle page
	put(t, s, "evidence/"+ids[3], []byte("a second version"))       // a middle page
	put(t, s, "zz-last.mp4", []byte("after everything"))            // the last page
	// dock-02 withheld: its recordings are named by no served host.
	put(t, s, anchor.CheckpointKey("dock-02", 6), []byte("not the checkpoint\n"))
	if breaks, err := c.Audit(ctx); err != nil || len(breaks) != 1 || breaks[0].Host != "dock-02" {
		t.Fatalf("audit: %+v %v", breaks, err)
	}

	s.PageKeys = 3
	pages := 0
	s.SetHook(func(op, key string) error {
		if op == "list" && key == "" {
			pages++
		}
		return nil
	})
	want := orphansBySet(t, c, s)
	var keys []string
	for _, o := range want {
		keys = append(keys, o.Key)
	}
	// 0-first, the version of ids[1] no longer named, ids[2].stray,
	// ids[3]'s second version, dock-02's three recordings, zz-last.
	if len(want) != 8 || keys[0] != "0-first.mp4" || keys[len(keys)-1] != "zz-last.mp4" ||
		!slices.Contains(keys, again) || !slices.Contains(keys, "evidence/BWC-2-Q9.MP4") {
		t.Fatalf("the set difference: %v", keys)
	}
	pages = 0
	got, err := c.Orphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pages < 5 {
		t.Errorf("the store was listed in %d calls, want pages of three keys", pages)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("orphans by merge:\n%v\nwant (by set):\n%v", got, want)
	}

	// An index from before by_object.
	c.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("by_object")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	c = openCatalog(t, path, s, a.trusted(), b.trusted())
	if got, err := c.Orphans(ctx); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("orphans of an index from before by_object: %v %v\nwant:\n%v", got, err, want)
	}
}
