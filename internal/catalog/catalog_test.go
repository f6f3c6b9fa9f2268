package catalog_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
	"github.com/evidenced/evidenced/internal/signing"
)

// dock is one dock host: its key, its ledger, anchoring into the shared
// store.
type dock struct {
	id  string
	key *signing.Key
	l   *custody.Ledger
	// objects, when set, receives each recording, and the version it
	// returns is the one recorded (for scrubbing).
	objects anchor.Store
	// vaultOnly stops the next ingests at VAULTED (an upload pending).
	vaultOnly bool
	// recorded, when set, is the next ingests' recording time as the
	// camera's clock gave it (else an hour before docking).
	recorded *time.Time
}

func newDock(t *testing.T, id string) *dock {
	t.Helper()
	k, err := signing.Generate(id)
	if err != nil {
		t.Fatal(err)
	}
	l, err := custody.Open(filepath.Join(t.TempDir(), "ledger.db"), custody.Options{Host: id, Signer: k})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &dock{id: id, key: k, l: l}
}

var base = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

// ingest appends what a dock session of one recording appends (DOCKED,
// COPIED, VAULTED, UPLOADED, VERIFIED) and returns the item id.
func (d *dock) ingest(t *testing.T, serial, assigned, file string, n int) string {
	t.Helper()
	ctx := context.Background()
	at := base.Add(time.Duration(n) * time.Minute)
	app := func(ev custody.Event, it *custody.Item) custody.Event {
		t.Helper()
		ev.Actor, ev.At, ev.Camera = "evidenced@"+d.id, at, serial
		out, err := d.l.Append(ctx, ev, it)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	docked := app(custody.Event{Type: custody.Docked, Details: map[string]string{"kind": "body", "assigned_to": assigned}}, nil)
	id := serial + "-" + file
	content := bytes.Repeat([]byte(d.id+id), 1234)[:1234]
	sha := digest.Bytes(content).Hex()
	recorded := at.Add(-time.Hour)
	if d.recorded != nil {
		recorded = *d.recorded
	}
	copied := app(custody.Event{Type: custody.Copied, Item: id, SHA256: sha, Details: map[string]string{
		"source_path": file, "size": "1234", "recorded_at": recorded.Format(time.RFC3339Nano),
		"dock_seq": strconv.FormatUint(docked.Seq, 10),
	}}, nil)
	it := &custody.Item{ID: id, Camera: serial, Kind: "body", AssignedTo: assigned, SourcePath: file, Size: 1234,
		SHA256: sha, RecordedAt: recorded, IngestedAt: at, State: custody.StateVaulted,
		VaultPath: "/vault/" + id, RetentionClass: "uncategorized", Host: d.id, DockSeq: docked.Seq}
	app(custody.Event{Type: custody.Vaulted, Item: id, SHA256: sha, Details: map[string]string{
		"copied_seq": strconv.FormatUint(copied.Seq, 10), "vault_path": it.VaultPath,
	}}, it)
	if d.vaultOnly {
		return id
	}
	until := at.Add(90 * 24 * time.Hour).Truncate(time.Second)
	it.State, it.ObjectKey, it.VersionID, it.RetainUntil = custody.StateUploaded, "evidence/"+id, "v-"+id, until
	if d.objects != nil {
		put(t, d.objects, it.ObjectKey, content)
		info, err := d.objects.Stat(ctx, it.ObjectKey, "")
		if err != nil {
			t.Fatal(err)
		}
		it.VersionID = info.VersionID
	}
	app(custody.Event{Type: custody.Uploaded, Item: id, SHA256: sha, Details: map[string]string{
		"key": it.ObjectKey, "version_id": it.VersionID, "retention_class": "uncategorized", "retain_until": until.Format(time.RFC3339),
	}}, it)
	it.State = custody.StateVerified
	app(custody.Event{Type: custody.Verified, Item: id, SHA256: sha, Details: map[string]string{
		"key": it.ObjectKey, "version_id": it.VersionID,
	}}, it)
	return id
}

func (d *dock) anchor(t *testing.T, s anchor.Store) {
	t.Helper()
	if _, err := anchor.Anchor(context.Background(), d.l, s, d.id, time.Now().Add(time.Hour), anchor.Options{}); err != nil {
		t.Fatal(err)
	}
}

func (d *dock) trusted() catalog.Trusted { return catalog.Trusted{ID: d.id, Key: d.key.Public()} }

func openCatalog(t *testing.T, path string, s anchor.Store, hosts ...catalog.Trusted) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Open(path, s, hosts, catalog.Options{Self: "hq"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sync(t *testing.T, c *catalog.Catalog) catalog.Progress {
	t.Helper()
	p, err := c.Sync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func dump(t *testing.T, c *catalog.Catalog) string {
	t.Helper()
	var b bytes.Buffer
	if err := c.Dump(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Items ingested at two hosts are found at the console, each with its host
// and exactly as the host's own ledger holds it; custody names the signing
// host and key; a second anchor is read incrementally; the index deleted
// and rebuilt from the store is the same index.
func TestCatalogIndexesTheFleet(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	a, b := newDock(t, "dock-01"), newDock(t, "dock-02")
	idA := a.ingest(t, "BWC-1", "officer-1", "A.MP4", 1)
	idB := b.ingest(t, "BWC-2", "officer-2", "B.MP4", 2)
	a.anchor(t, s)
	b.anchor(t, s)

	path := filepath.Join(t.TempDir(), "catalog.db")
	c := openCatalog(t, path, s, a.trusted(), b.trusted())
	p := sync(t, c)
	if p.New["dock-01"] != 6 || p.New["dock-02"] != 6 || len(p.Broken) != 0 {
		t.Fatalf("first sync: %+v", p)
	}
	// The uploads the sync learned of are counted (the console's facts
	// step is woken for their sidecars), once each; a sync that learns
	// nothing counts none.
	if p.Uploads != 2 {
		t.Errorf("first sync's uploads: %d, want 2 (%s, %s)", p.Uploads, idA, idB)
	}
	if again := sync(t, c); again.Uploads != 0 {
		t.Errorf("a sync with nothing new counts %d uploads", again.Uploads)
	}
	for _, d := range []*dock{a, b} {
		items, err := c.Find(ctx, catalog.Filter{Host: d.id})
		if err != nil || len(items) != 1 {
			t.Fatalf("find --host %s: %v %v", d.id, items, err)
		}
		want, err := d.l.Item(ctx, items[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := asJSON(t, items[0]); got != asJSON(t, want) {
			t.Errorf("the console's item differs from %s's ledger:\n got %s\nwant %s", d.id, got, asJSON(t, want))
		}
	}
	if items, _ := c.Find(ctx, catalog.Filter{Filter: custody.Filter{AssignedTo: "officer-2"}}); len(items) != 1 || items[0].ID != idB || items[0].Host != "dock-02" {
		t.Errorf("find --assigned-to officer-2: %+v", items)
	}
	evs, ok, err := c.Custody(ctx, idA)
	want, werr := a.l.Custody(ctx, idA)
	if err != nil || werr != nil || !ok || len(evs) != len(want) || len(evs) != 5 {
		t.Fatalf("custody %s: %d events (dock-01's ledger has %d), %v, %v, %v", idA, len(evs), len(want), ok, err, werr)
	}
	for i, ev := range evs {
		if ev.Seq != want[i].Seq || ev.Hash != want[i].Hash {
			t.Errorf("event %d: seq %d hash %s, dock-01's ledger: seq %d hash %s", i, ev.Seq, ev.Hash, want[i].Seq, want[i].Hash)
		}
		if ev.Host != "dock-01" || ev.KeyID != a.key.KeyID() {
			t.Errorf("record %d served as signed by %s/%s, want dock-01/%s", ev.Seq, ev.Host, ev.KeyID, a.key.KeyID())
		}
	}

	// Incremental: a second anchor adds its records only.
	a.ingest(t, "BWC-3", "officer-1", "C.MP4", 3)
	a.anchor(t, s)
	if p := sync(t, c); p.New["dock-01"] != 5 || p.New["dock-02"] != 0 {
		t.Fatalf("second sync: %+v", p)
	}
	if items, _ := c.Find(ctx, catalog.Filter{Filter: custody.Filter{AssignedTo: "officer-1"}}); len(items) != 2 {
		t.Errorf("after the second anchor, officer-1 has %d items, want 2", len(items))
	}
	// dock-02 vaults a recording of BWC-3 at minute 2 that is not uploaded
	// yet: dock-01's dock of BWC-3 at minute 3 stays its last, though
	// dock-02 is read after dock-01.
	b.vaultOnly = true
	b.ingest(t, "BWC-3", "officer-1", "D.MP4", 2)
	b.anchor(t, s)
	sync(t, c)
	f, err := c.Fleet(ctx, base.Add(time.Hour), catalog.FleetOptions{UnverifiedAfter: 30 * time.Minute})
	fleet := f.Hosts
	if err != nil || len(fleet) != 2 || fleet[0].Records != 11 || fleet[0].Items != 2 || len(fleet[0].Flags) != 0 || fleet[0].Unverified != 0 {
		t.Fatalf("fleet: %+v %v", fleet, err)
	}
	if fleet[1].Unverified != 1 || !strings.Contains(strings.Join(fleet[1].Flags, " "), "not verified") {
		t.Errorf("dock-02's vaulted item is not flagged: %+v", fleet[1])
	}
	if f2, _ := c.Fleet(ctx, base.Add(time.Hour), catalog.FleetOptions{UnverifiedAfter: 2 * time.Hour}); f2.Hosts[1].Unverified != 0 || f2.Hosts[1].NotVerified != 1 {
		t.Errorf("an item vaulted 58 minutes ago counts as unverified after 2h, or not as not verified: %+v", f2.Hosts[1])
	}
	// Not verified, whatever the age: dock-02's vaulted item (vaulted at
	// minute 2); none of dock-01's, each verified after it was vaulted.
	if fleet[1].NotVerified != 1 || !fleet[1].OldestNotVerifiedAt.Equal(base.Add(2*time.Minute)) ||
		fleet[0].NotVerified != 0 || !fleet[0].OldestNotVerifiedAt.IsZero() {
		t.Errorf("not verified: dock-01 %d (oldest %s), dock-02 %d (oldest %s)", fleet[0].NotVerified, fleet[0].OldestNotVerifiedAt,
			fleet[1].NotVerified, fleet[1].OldestNotVerifiedAt)
	}
	cams := map[string]catalog.CameraHealth{}
	for _, cam := range f.Cameras {
		cams[cam.Serial] = cam
	}
	if len(cams) != 3 || cams["BWC-3"].Host != "dock-01" || !cams["BWC-3"].LastDockedAt.Equal(base.Add(3*time.Minute)) ||
		cams["BWC-2"].Host != "dock-02" || cams["BWC-1"].AssignedTo != "officer-1" {
		t.Errorf("cameras: %+v", f.Cameras)
	}
	if f3, _ := c.Fleet(ctx, base.Add(50*time.Hour), catalog.FleetOptions{}); f3.Cameras[0].DaysSinceDock == nil || *f3.Cameras[0].DaysSinceDock != 2 || f3.Cameras[0].State != catalog.CameraDocked {
		t.Errorf("days since dock after 50h: %+v", f3.Cameras[0])
	}
	// A week without a dock is "not docked", as the alerting rules say;
	// a second less is not.
	for d, want := range map[time.Duration]string{-time.Second: catalog.CameraDocked, 0: catalog.CameraNotDocked} {
		f4, err := c.Fleet(ctx, base.Add(3*time.Minute+catalog.NotDockedAfter+d), catalog.FleetOptions{})
		for _, cam := range f4.Cameras {
			if cam.Serial == "BWC-3" && cam.State != want {
				t.Errorf("BWC-3 %s after a week: state %q, want %q (%v)", d, cam.State, want, err)
			}
		}
	}
	// dock-01's last anchored record was written at minute 3.
	if !fleet[0].LastRecordAt.Equal(base.Add(3*time.Minute)) || fleet[0].AgeSeconds != 57*60 || fleet[0].Checkpoint != 11 {
		t.Errorf("dock-01 last record %s, age %ds, checkpoint %d", fleet[0].LastRecordAt, fleet[0].AgeSeconds, fleet[0].Checkpoint)
	}

	// The index is only a cache.
	before := dump(t, c)
	c.Close()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	c2 := openCatalog(t, path, s, a.trusted(), b.trusted())
	sync(t, c2)
	if after := dump(t, c2); after != before {
		t.Errorf("rebuilt index differs:\nbefore %s\nafter  %s", before, after)
	}
}

// A host anchoring in the bucket that the configuration does not list is
// shown as untrusted and nothing of it is served; the console's own ledger
// is neither.
func TestUnlistedHostIsUntrusted(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	a, x, self := newDock(t, "dock-01"), newDock(t, "stranger"), newDock(t, "hq")
	a.ingest(t, "BWC-1", "officer-1", "A.MP4", 1)
	id := x.ingest(t, "BWC-9", "officer-9", "X.MP4", 2)
	self.ingest(t, "BWC-8", "officer-8", "S.MP4", 2)
	for _, d := range []*dock{a, x, self} {
		d.anchor(t, s)
	}
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, a.trusted())
	p := sync(t, c)
	if strings.Join(p.Untrusted, ",") != "stranger" {
		t.Errorf("untrusted: %v, want [stranger]", p.Untrusted)
	}
	if items, _ := c.Find(ctx, catalog.Filter{}); len(items) != 1 || items[0].Host != "dock-01" {
		t.Errorf("find serves %+v, want only dock-01's item", items)
	}
	if evs, ok, _ := c.Custody(ctx, id); ok || len(evs) != 0 {
		t.Errorf("custody of the stranger's item served %d events", len(evs))
	}
	f, _ := c.Fleet(ctx, time.Now(), catalog.FleetOptions{})
	fleet := f.Hosts
	if len(fleet) != 2 || fleet[1].ID != "stranger" || fleet[1].Trusted || !strings.Contains(strings.Join(fleet[1].Flags, " "), "untrusted") {
		t.Errorf("fleet: %+v", fleet)
	}
}

// A host whose checkpoint is signed by a key other than the configured
// one is flagged by name and none of its records are served.
func TestWrongKeyIsFlagged(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	a, b := newDock(t, "dock-01"), newDock(t, "dock-02")
	a.ingest(t, "BWC-1", "officer-1", "A.MP4", 1)
	b.ingest(t, "BWC-2", "officer-2", "B.MP4", 1)
	a.anchor(t, s)
	b.anchor(t, s)
	other, err := signing.Generate("dock-02")
	if err != nil {
		t.Fatal(err)
	}
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, a.trusted(), catalog.Trusted{ID: "dock-02", Key: other.Public()})
	p := sync(t, c)
	if strings.Join(p.Broken, ",") != "dock-02" {
		t.Fatalf("broken: %v, want [dock-02]", p.Broken)
	}
	if items, _ := c.Find(ctx, catalog.Filter{}); len(items) != 1 || items[0].Host != "dock-01" {
		t.Errorf("find serves %+v, want only dock-01's item", items)
	}
	f, _ := c.Fleet(ctx, time.Now(), catalog.FleetOptions{})
	fleet := f.Hosts
	if flags := strings.Join(fleet[1].Flags, " "); !strings.Contains(flags, "broken") || !strings.Contains(flags, "not the key configured for dock-02") {
		t.Errorf("dock-02 flags: %q", flags)
	}
	if len(fleet[0].Flags) != 0 {
		t.Errorf("dock-01 flagged: %v", fleet[0].Flags)
	}
}

// put writes key as a new version, as an insider or a forger could.
func put(t *testing.T, s anchor.Store, key string, b []byte) {
	t.Helper()
	sum := digest.Bytes(b)
	if _, err := s.Put(context.Background(), objstore.PutRequest{
		Key: key, Body: bytes.NewReader(b), Size: int64(len(b)), SHA256: sum,
		Metadata: map[string]string{"sha256": sum.Hex()},
	}); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, s anchor.Store, key string) []byte {
	t.Helper()
	rc, err := s.Open(context.Background(), key, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A history that breaks after the first checkpoint (a record altered in a
// later anchor; a second continuation: a fork) keeps serving what came
// before the break, and nothing after it.
func TestBreakStopsServing(t *testing.T) {
	ctx := context.Background()
	cases := map[string]func(t *testing.T, s anchor.Store, d *dock){
		"altered record": func(t *testing.T, s anchor.Store, d *dock) {
			key := anchor.RecordsKey(d.id, 7, 11)
			put(t, s, key, bytes.Replace(read(t, s, key), []byte("officer-1"), []byte("officer-7"), 1))
		},
		"fork": func(t *testing.T, s anchor.Store, d *dock) {
			// A second checkpointed continuation after checkpoint 6,
			// signed by the host key itself: two histories.
			put(t, s, anchor.RecordsKey(d.id, 7, 8), []byte("x\n"))
			put(t, s, anchor.CheckpointKey(d.id, 8), read(t, s, anchor.CheckpointKey(d.id, 6)))
		},
		"fork after the genuine continuation": func(t *testing.T, s anchor.Store, d *dock) {
			// The same, but the second continuation (to 12) lists after
			// the genuine one (to 11): following the first found would
			// serve the genuine history and never see the fork.
			put(t, s, anchor.RecordsKey(d.id, 7, 12), []byte("x\n"))
			put(t, s, anchor.CheckpointKey(d.id, 12), read(t, s, anchor.CheckpointKey(d.id, 6)))
		},
		"signature dropped": func(t *testing.T, s anchor.Store, d *dock) {
			key := anchor.SigsKey(d.id, 7, 11)
			lines := strings.SplitAfter(string(read(t, s, key)), "\n")
			lines[1] = "8\n" // record 8 loses its signature
			put(t, s, key, []byte(strings.Join(lines, "")))
		},
	}
	for name, breakIt := range cases {
		t.Run(name, func(t *testing.T) {
			s := memstore.New()
			d := newDock(t, "dock-01")
			id1 := d.ingest(t, "BWC-1", "officer-1", "A.MP4", 1)
			d.anchor(t, s)
			id2 := d.ingest(t, "BWC-1", "officer-1", "B.MP4", 2)
			d.anchor(t, s)
			breakIt(t, s, d)
			c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, d.trusted())
			p := sync(t, c)
			if strings.Join(p.Broken, ",") != "dock-01" {
				t.Fatalf("broken: %v", p.Broken)
			}
			items, _ := c.Find(ctx, catalog.Filter{})
			if len(items) != 1 || items[0].ID != id1 {
				t.Errorf("served %+v, want only %s (before the break)", items, id1)
			}
			if _, ok, _ := c.Custody(ctx, id2); ok {
				t.Errorf("%s (after the break) is served", id2)
			}
			f, _ := c.Fleet(ctx, time.Now(), catalog.FleetOptions{})
			fleet := f.Hosts
			if fleet[0].Checkpoint != 6 || len(fleet[0].Flags) == 0 {
				t.Errorf("fleet: %+v", fleet[0])
			}
		})
	}
}

// A key rotation (as key rotate records it: actor, reason, on whose
// behalf) is followed when the key before it signed it: the
// records after it are served as signed by the new key.
func TestRotationFollowed(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	d := newDock(t, "dock-01")
	d.ingest(t, "BWC-1", "officer-1", "A.MP4", 1)
	d.anchor(t, s)
	k2, err := signing.Generate("dock-01")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.l.RotateKeyBy(ctx, k2, "custodian-1", map[string]string{"reason": "yearly", "on_behalf_of": "records-office", "peer": "uid=0"}); err != nil {
		t.Fatal(err)
	}
	id := d.ingest(t, "BWC-1", "officer-1", "B.MP4", 2)
	d.anchor(t, s)
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, d.trusted())
	if p := sync(t, c); len(p.Broken) != 0 || p.New["dock-01"] != 12 {
		t.Fatalf("sync: %+v", p)
	}
	// The audit verifies the checkpoints signed before and after the
	// rotation with the keys followed: nothing to report.
	if breaks, err := c.Audit(ctx); err != nil || len(breaks) != 0 {
		t.Fatalf("audit of a rotated history: %+v %v", breaks, err)
	}
	evs, _, err := c.Custody(ctx, id)
	if err != nil || len(evs) == 0 {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.KeyID != k2.KeyID() {
			t.Errorf("record %d served as signed by %s, want the rotated key %s", ev.Seq, ev.KeyID, k2.KeyID())
		}
	}
}

// A store that cannot be read is an error, not a flag.
func TestStoreFailureIsAnError(t *testing.T) {
	s := memstore.New()
	d := newDock(t, "dock-01")
	d.ingest(t, "BWC-1", "officer-1", "A.MP4", 1)
	d.anchor(t, s)
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, d.trusted())
	s.Fail(errors.New("network down"))
	p, err := c.Sync(context.Background())
	if err == nil || len(p.Broken) != 0 {
		t.Fatalf("sync on a failing store: %+v, %v", p, err)
	}
}

// An object written behind what Sync has followed (a second version of an
// already followed checkpoint) is not seen by the incremental reading; the
// audit finds it and withholds the host, and a rebuilt index, which reads
// from the start, serves nothing of it either.
func TestAuditWithholdsAHostTamperedBehindTheTail(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	a, b := newDock(t, "dock-01"), newDock(t, "dock-02")
	a.ingest(t, "BWC-1", "officer-1", "A.MP4", 1)
	a.anchor(t, s)
	a.vaultOnly = true // not yet verified: in the unverified index
	a.ingest(t, "BWC-1", "officer-1", "B.MP4", 2)
	a.anchor(t, s)
	b.ingest(t, "BWC-2", "officer-2", "C.MP4", 3)
	b.anchor(t, s)
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, a.trusted(), b.trusted())
	sync(t, c)
	if breaks, err := c.Audit(ctx); err != nil || len(breaks) != 0 {
		t.Fatalf("audit of clean histories: %+v %v", breaks, err)
	}

	put(t, s, anchor.CheckpointKey("dock-01", 6), []byte("not the checkpoint\n"))
	if p := sync(t, c); len(p.Broken) != 0 {
		t.Fatalf("the incremental reading saw the object behind it: %+v", p)
	}
	breaks, err := c.Audit(ctx)
	if err != nil || len(breaks) != 1 || breaks[0].Host != "dock-01" || breaks[0].Problems[0].Object != anchor.CheckpointKey("dock-01", 6) {
		t.Fatalf("audit: %+v %v", breaks, err)
	}
	if again, _ := c.Audit(ctx); len(again) != 0 {
		t.Errorf("a withheld host is reported again: %+v", again)
	}
	// Whichever way a search goes: every item, an officer's or a
	// camera's index, the unverified index (states not verified), the
	// camera index's time ranges, every item read for its state.
	all := []custody.State{custody.StateVaulted, custody.StateUploaded, custody.StateVerified}
	for _, f := range []custody.Filter{{}, {AssignedTo: "officer-1"}, {Camera: "BWC-1"}, {States: all[:2]}, {Since: base.Add(-24 * time.Hour)}, {States: all}} {
		items, err := c.Find(ctx, catalog.Filter{Filter: f})
		want := 1
		if f.AssignedTo != "" || f.Camera != "" || (len(f.States) == 2) {
			want = 0 // only dock-01's items match
		}
		if err != nil || len(items) != want || (want == 1 && items[0].Host != "dock-02") {
			t.Errorf("find %+v served after the audit: %+v %v", f, items, err)
		}
	}
	f, _ := c.Fleet(ctx, time.Now(), catalog.FleetOptions{})
	if flags := strings.Join(f.Hosts[0].Flags, " "); !strings.Contains(flags, "withheld") {
		t.Errorf("dock-01 flags: %q", flags)
	}
	if p := sync(t, c); len(p.New) != 0 || strings.Join(p.Broken, ",") != "dock-01" {
		t.Errorf("a withheld host is followed further: %+v", p)
	}

	c2 := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, a.trusted(), b.trusted())
	sync(t, c2)
	if items, _ := c2.Find(ctx, catalog.Filter{Host: "dock-01"}); len(items) != 0 {
		t.Errorf("a rebuilt index serves %d items of dock-01", len(items))
	}
}

// By default a record's own signature is verified only for the key
// records; the others are vouched for by the checkpoint over the root
// their hashes reproduce (their signature must still be there). A bad
// signature on a KEY_ROTATED record is always a break; on another record,
// only with AllSignatures.
func TestSignatureModes(t *testing.T) {
	ctx := context.Background()
	build := func(t *testing.T) (anchor.Store, *dock) {
		s := memstore.New()
		d := newDock(t, "dock-01")
		d.ingest(t, "BWC-1", "officer-1", "A.MP4", 1)
		d.anchor(t, s)
		k2, err := signing.Generate("dock-01")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.l.RotateKey(ctx, k2); err != nil { // record 7
			t.Fatal(err)
		}
		d.ingest(t, "BWC-1", "officer-1", "B.MP4", 2) // records 8..12
		d.anchor(t, s)
		return s, d
	}
	// badSig returns a copy of the store in which record seq's signature
	// in the second anchor is a signature over other bytes, as if the
	// host had written it so (one version, nothing added later).
	badSig := func(t *testing.T, s anchor.Store, d *dock, seq int) anchor.Store {
		key := anchor.SigsKey(d.id, 7, 12)
		vs, err := s.ListVersions(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		out := memstore.New()
		for _, v := range vs {
			b := read(t, s, v.Key)
			if v.Key == key {
				lines := strings.SplitAfter(string(b), "\n")
				sig, _ := d.key.Sign([]byte("something else"))
				lines[seq-7] = strconv.Itoa(seq) + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
				b = []byte(strings.Join(lines, ""))
			}
			put(t, out, v.Key, b)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		seq     int
		all     bool
		flagged bool
	}{
		{"record, default", 9, false, false},
		{"record, all signatures", 9, true, true},
		{"KEY_ROTATED, default", 7, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, d := build(t)
			s = badSig(t, s, d, tc.seq)
			c, err := catalog.Open(filepath.Join(t.TempDir(), "catalog.db"), s, []catalog.Trusted{d.trusted()}, catalog.Options{AllSignatures: tc.all})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			p := sync(t, c)
			if got := len(p.Broken) == 1; got != tc.flagged {
				f, _ := c.Fleet(ctx, time.Now(), catalog.FleetOptions{})
				t.Fatalf("broken %v, want flagged=%v: %v", p.Broken, tc.flagged, f.Hosts[0].Flags)
			}
		})
	}
}

// A problem the audit finds withholds its host even when one of the
// host's reads failed for now (the check's error comes back with its
// findings), and a host whose audit could not be made does not leave the
// hosts after it unaudited: the error is returned after every host was
// audited.
func TestAuditActsOnWhatItFoundDespiteAReadThatFailed(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	a, b := newDock(t, "dock-01"), newDock(t, "dock-02")
	a.ingest(t, "BWC-1", "officer-1", "A.MP4", 1)
	a.anchor(t, s)
	a.ingest(t, "BWC-1", "officer-1", "B.MP4", 2)
	a.anchor(t, s)
	b.ingest(t, "BWC-2", "officer-2", "C.MP4", 3)
	b.anchor(t, s)
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, a.trusted(), b.trusted())
	sync(t, c)
	put(t, s, anchor.CheckpointKey("dock-01", 6), []byte("not the checkpoint\n"))
	put(t, s, anchor.CheckpointKey("dock-02", 6), []byte("not the checkpoint\n"))
	errSlow := errors.New("503 slow down")
	s.SetHook(func(op, key string) error {
		if op == "open" && key == anchor.CheckpointKey("dock-01", 11) {
			return errSlow
		}
		return nil
	})
	breaks, err := c.Audit(ctx)
	s.SetHook(nil)
	if !errors.Is(err, errSlow) {
		t.Errorf("audit with a read that failed: %v, want its error", err)
	}
	var hosts []string
	for _, b := range breaks {
		hosts = append(hosts, b.Host)
	}
	if strings.Join(hosts, ",") != "dock-01,dock-02" {
		t.Errorf("withheld %v; want both hosts, each with a second version of a checkpoint", hosts)
	}
	if items, _ := c.Find(ctx, catalog.Filter{}); len(items) != 0 {
		t.Errorf("served after the audit: %+v", items)
	}
}

// A version added to a records object behind the followed checkpoint
// (the newest copy, which a reader of the store gets, is not what was
// checked) withholds its host at the audit, as one of a checkpoint does;
// the checkpoints' audit alone does not list the records.
func TestAuditWithholdsAHostWhoseRecordsGotAVersion(t *testing.T) {
	ctx := context.Background()
	s, d := twoAnchors(t)
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, d.trusted())
	sync(t, c)
	key := anchor.RecordsKey("dock-01", 1, 6)
	put(t, s, key, append(read(t, s, key), '\n'))
	breaks, err := c.Audit(ctx)
	if err != nil || len(breaks) != 1 || breaks[0].Problems[0].Object != key {
		t.Fatalf("audit with a second version of %s: %+v %v", key, breaks, err)
	}
	if items, _ := c.Find(ctx, catalog.Filter{}); len(items) != 0 {
		t.Errorf("served after the audit: %+v", items)
	}
}
