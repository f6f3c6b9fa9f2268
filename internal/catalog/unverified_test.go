package catalog_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
)

// An index written before it kept the items not yet verified gets them
// from its items when it is opened, the same as a rebuilt index holds.
func TestUnverifiedFilledInOnOpen(t *testing.T) {
	s := memstore.New()
	d := newDock(t, "dock-01")
	d.ingest(t, "BWC-1", "officer-1", "A.MP4", 1)
	d.vaultOnly = true
	d.ingest(t, "BWC-1", "officer-1", "B.MP4", 2)
	d.anchor(t, s)
	path := filepath.Join(t.TempDir(), "catalog.db")
	c := openCatalog(t, path, s, d.trusted())
	sync(t, c)
	want := dump(t, c)
	c.Close()

	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("unverified")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	c = openCatalog(t, path, s, d.trusted())
	if got := dump(t, c); got != want {
		t.Errorf("reopened index:\n%s\nwant:\n%s", got, want)
	}
	f, err := c.Fleet(context.Background(), base.Add(time.Hour), catalog.FleetOptions{})
	if err != nil || f.Hosts[0].NotVerified != 1 || !f.Hosts[0].OldestNotVerifiedAt.Equal(base.Add(2*time.Minute)) {
		t.Errorf("fleet after the fill: %+v %v", f.Hosts, err)
	}
}

// A recording vaulted in one anchor and uploaded and verified in a later
// one (each indexed by its own Sync) leaves the not-verified count, and
// the index the two Syncs built is the one a single rebuild builds: what
// a group of records adds up to in memory is merged with what the index
// already held.
func TestItemMovedOnInALaterSyncIsTheRebuiltIndex(t *testing.T) {
	ctx := context.Background()
	s, d, id := oneVerifiedOnePending(t)
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, d.trusted())
	sync(t, c)
	notVerified := func(want int) {
		t.Helper()
		f, err := c.Fleet(ctx, base.Add(time.Hour), catalog.FleetOptions{})
		if err != nil || f.Hosts[0].NotVerified != want {
			t.Fatalf("fleet: %+v %v; want %d not verified", f.Hosts, err, want)
		}
	}
	notVerified(1)

	it, err := d.l.Item(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	at := base.Add(3 * time.Minute)
	it.State, it.ObjectKey, it.VersionID = custody.StateUploaded, "evidence/"+id, "v1"
	for _, ev := range []custody.Event{
		{Type: custody.Uploaded, Details: map[string]string{"key": it.ObjectKey, "version_id": "v1", "retention_class": "uncategorized"}},
		{Type: custody.Verified, Details: map[string]string{"key": it.ObjectKey, "version_id": "v1"}},
	} {
		ev.Actor, ev.At, ev.Camera, ev.Item, ev.SHA256 = "evidenced@dock-01", at, "BWC-1", id, it.SHA256
		if ev.Type == custody.Verified {
			it.State = custody.StateVerified
		}
		if _, err := d.l.Append(ctx, ev, &it); err != nil {
			t.Fatal(err)
		}
	}
	d.anchor(t, s)
	sync(t, c)
	notVerified(0)
	got, err := c.Item(ctx, id)
	if err != nil || len(got) != 1 || got[0].State != custody.StateVerified || got[0].AssignedTo != "officer-1" || got[0].RecordedAt.IsZero() {
		t.Fatalf("item after the second sync: %+v %v", got, err)
	}

	rebuilt := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, d.trusted())
	sync(t, rebuilt)
	if a, b := dump(t, c), dump(t, rebuilt); a != b {
		t.Errorf("index built in two syncs:\n%s\nrebuilt in one:\n%s", a, b)
	}
}

// An index an earlier version wrote holds its items as JSON: it is served
// as it is (the same items, through the officer index and by id), without
// a rebuild from the store.
func TestItemsWrittenAsJSONAreServed(t *testing.T) {
	ctx := context.Background()
	s, d, id := oneVerifiedOnePending(t)
	path := filepath.Join(t.TempDir(), "catalog.db")
	c := openCatalog(t, path, s, d.trusted())
	sync(t, c)
	all, err := c.Find(ctx, catalog.Filter{})
	if err != nil || len(all) != 2 {
		t.Fatalf("find: %d %v", len(all), err)
	}
	want := asJSON(t, all)
	c.Close()

	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, it := range all {
			v, err := json.Marshal(it)
			if err != nil {
				return err
			}
			if err := tx.Bucket([]byte("items")).Put([]byte(it.Host+"\x00"+it.ID), v); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	c = openCatalog(t, path, memstore.New(), d.trusted())
	for _, f := range []catalog.Filter{{}, {Filter: custody.Filter{AssignedTo: "officer-1"}}, {Filter: custody.Filter{Camera: "BWC-1"}}} {
		got, err := c.Find(ctx, f)
		if err != nil || asJSON(t, got) != want {
			t.Errorf("find %+v from JSON items: %v\n%s\nwant:\n%s", f, err, asJSON(t, got), want)
		}
	}
	if got, err := c.Item(ctx, id); err != nil || len(got) != 1 || asJSON(t, got[0]) != asJSON(t, all[1]) {
		t.Errorf("item %s from JSON: %+v %v", id, got, err)
	}
}

// oneVerifiedOnePending is a store where dock-01 anchored two recordings of
// officer-1: A.MP4 verified, B.MP4 (id) vaulted only.
func oneVerifiedOnePending(t *testing.T) (*memstore.Store, *dock, string) {
	t.Helper()
	s := memstore.New()
	d := newDock(t, "dock-01")
	d.ingest(t, "BWC-1", "officer-1", "A.MP4", 1)
	d.vaultOnly = true
	id := d.ingest(t, "BWC-1", "officer-1", "B.MP4", 2)
	d.anchor(t, s)
	return s, d, id
}

// A camera's last dock is the latest of every host's, whichever host is
// indexed first and however many docks one group of records holds: two
// earlier docks at dock-01, indexed after dock-02's later one, leave
// dock-02's.
func TestCameraLastDockIsTheLatestAcrossGroups(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	d1, d2 := newDock(t, "dock-01"), newDock(t, "dock-02")
	d2.ingest(t, "BWC-1", "officer-2", "C.MP4", 10)
	d2.anchor(t, s)
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, d1.trusted(), d2.trusted())
	sync(t, c)
	d1.ingest(t, "BWC-1", "officer-1", "A.MP4", 5)
	d1.ingest(t, "BWC-1", "officer-1", "B.MP4", 7)
	d1.anchor(t, s)
	sync(t, c)
	f, err := c.Fleet(ctx, base.Add(time.Hour), catalog.FleetOptions{})
	if err != nil || len(f.Cameras) != 1 || f.Cameras[0].Host != "dock-02" || !f.Cameras[0].LastDockedAt.Equal(base.Add(10*time.Minute)) || f.Cameras[0].AssignedTo != "officer-2" {
		t.Fatalf("cameras: %+v %v; want BWC-1 last docked at dock-02 at +10m", f.Cameras, err)
	}

	// The same host's clock stepped back between two anchors (an NTP
	// correction): the dock an earlier group indexed at +20m stays the
	// host's last, not the +15m a later group brings.
	d2.ingest(t, "BWC-1", "officer-2", "D.MP4", 20)
	d2.anchor(t, s)
	sync(t, c)
	d2.ingest(t, "BWC-1", "officer-3", "E.MP4", 15)
	d2.anchor(t, s)
	sync(t, c)
	f, err = c.Fleet(ctx, base.Add(time.Hour), catalog.FleetOptions{})
	if err != nil || len(f.Cameras) != 1 || f.Cameras[0].Host != "dock-02" || !f.Cameras[0].LastDockedAt.Equal(base.Add(20*time.Minute)) || f.Cameras[0].AssignedTo != "officer-2" {
		t.Fatalf("cameras after dock-02's clock stepped back: %+v %v; want BWC-1 last docked at dock-02 at +20m, issued to officer-2", f.Cameras, err)
	}
}
