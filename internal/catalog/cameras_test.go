package catalog_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
)

// A camera whose last dock is at a host the audit withholds, or at a host
// whose history broke, is shown docked there with the host's flag, not
// dropped (which the console's inventory then shows as "never docked"):
// it came back, the console just does not serve that host's records. Its
// last dock at a served host is beside it. The records stay unserved. An
// index from before camera_docks (one dock per camera) gets them from its
// records when it is opened, the same as a rebuilt index holds.
func TestCameraDockedAtAFlaggedHostIsNotNeverDocked(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	a, b, d := newDock(t, "dock-01"), newDock(t, "dock-02"), newDock(t, "dock-03")
	a.ingest(t, "BWC-1", "officer-1", "A.MP4", 1)
	a.anchor(t, s)
	b.ingest(t, "BWC-1", "officer-1", "B.MP4", 2)
	b.ingest(t, "BWC-2", "officer-2", "C.MP4", 3)
	b.anchor(t, s)
	d.ingest(t, "BWC-3", "officer-3", "D.MP4", 4)
	d.anchor(t, s)
	d.ingest(t, "BWC-3", "officer-3", "E.MP4", 5)
	d.anchor(t, s)
	// dock-03's second anchor altered: broken after checkpoint 6.
	key := anchor.RecordsKey(d.id, 7, 11)
	put(t, s, key, []byte(string(read(t, s, key))+"\n"))
	path := filepath.Join(t.TempDir(), "catalog.db")
	c := openCatalog(t, path, s, a.trusted(), b.trusted(), d.trusted())
	sync(t, c)
	put(t, s, anchor.CheckpointKey("dock-02", 9), []byte("not the checkpoint\n"))
	if breaks, err := c.Audit(ctx); err != nil || len(breaks) != 1 || breaks[0].Host != "dock-02" {
		t.Fatalf("audit: %+v %v", breaks, err)
	}

	now := base.Add(3 * 24 * time.Hour)
	f, err := c.Fleet(ctx, now, catalog.FleetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]catalog.CameraHealth{}
	for _, cam := range f.Cameras {
		got[cam.Serial] = cam
	}
	if len(f.Cameras) != 3 {
		t.Fatalf("cameras: %s", asJSON(t, f.Cameras))
	}
	for serial, want := range map[string]struct {
		host, flag string
		at         time.Time
		served     *catalog.Dock
	}{
		"BWC-1": {"dock-02", "withheld (audit): ", base.Add(2 * time.Minute), &catalog.Dock{Host: "dock-01", At: base.Add(time.Minute)}},
		"BWC-2": {"dock-02", "withheld (audit): ", base.Add(3 * time.Minute), nil},
		"BWC-3": {"dock-03", "broken: ", base.Add(4 * time.Minute), nil},
	} {
		cam := got[serial]
		if cam.Host != want.host || !strings.HasPrefix(cam.HostFlag, want.flag) || !cam.LastDockedAt.Equal(want.at) ||
			cam.State != catalog.CameraDocked || cam.DaysSinceDock == nil || *cam.DaysSinceDock != 2 {
			t.Errorf("%s: %s, want last dock at %s %s, flag %q…, docked 2 days ago", serial, asJSON(t, cam), want.host, want.at, want.flag)
		}
		if asJSON(t, cam.LastServedDock) != asJSON(t, want.served) {
			t.Errorf("%s: last served dock %s, want %s", serial, asJSON(t, cam.LastServedDock), asJSON(t, want.served))
		}
	}
	if items, _ := c.Find(ctx, catalog.Filter{Host: "dock-02"}); len(items) != 0 {
		t.Errorf("the withheld host's recordings are served: %+v", items)
	}

	// An index that kept one dock per camera gets every host's from its
	// records.
	want := dump(t, c)
	c.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte("camera_docks")); err != nil {
			return err
		}
		old, err := tx.CreateBucket([]byte("cameras"))
		if err != nil {
			return err
		}
		return old.Put([]byte("BWC-1"), []byte(`{"serial":"BWC-1","host":"dock-02"}`))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	c = openCatalog(t, path, s, a.trusted(), b.trusted(), d.trusted())
	if got := dump(t, c); got != want {
		t.Errorf("reopened index:\n%s\nwant:\n%s", got, want)
	}
}
