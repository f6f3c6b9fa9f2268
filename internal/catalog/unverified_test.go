package catalog_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/catalog"
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
