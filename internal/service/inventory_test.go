package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// inventoryEvents are a host's INVENTORY_* records, in order.
func inventoryEvents(t *testing.T, s *Service) []custody.Event {
	t.Helper()
	var out []custody.Event
	if err := s.ledger.Events(context.Background(), 0, func(ev custody.Event) error {
		if strings.HasPrefix(string(ev.Type), "INVENTORY_") {
			out = append(out, ev)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// putInventory writes data as the newest version of the console's
// document, as someone with write access to the store could.
func putInventory(t *testing.T, s *Service, data []byte) {
	t.Helper()
	sum := digest.Bytes(data)
	if _, err := s.store.Put(context.Background(), objstore.PutRequest{Key: InventoryKey("hq"), Body: bytes.NewReader(data),
		Size: int64(len(data)), SHA256: sum, Metadata: map[string]string{"sha256": sum.Hex()}}); err != nil {
		t.Fatal(err)
	}
}

// The console's inventory reaches a dock host that pins the console's key:
// each newer signed version is recorded and put in force; a document whose
// bytes were changed, an older signed version put back, and a document
// signed by another key are each refused and recorded as alerts, and the
// assignment in force stays. The console will not publish over a document
// it did not sign.
func TestInventoryFlowsToTheDock(t *testing.T) {
	ctx := context.Background()
	p := inventoryPair(t)
	root, hq, dock := p.root, p.hq, p.dock
	who := Caller{Actor: "custodian-1"}
	f, err := dock.newInventoryFollower()
	if err != nil {
		t.Fatal(err)
	}
	assigned := func() string {
		cam, ok := dock.config.Camera("BWC-1")
		if !ok {
			return "(not in inventory)"
		}
		return cam.AssignedTo
	}

	dock.pollInventory(ctx, f) // nothing published: cameras: is in force
	if got := assigned(); got != "officer-local" {
		t.Fatalf("before any publication BWC-1 is issued to %s", got)
	}
	publish := func(officer string) (InventoryPublication, []byte) {
		t.Helper()
		return publishInventory(t, p, officer)
	}
	v1, v1bytes := publish("officer-a")
	dock.pollInventory(ctx, f)
	if got := assigned(); got != "officer-a" {
		t.Fatalf("after version 1: BWC-1 issued to %s", got)
	}
	v2, v2bytes := publish("officer-b")
	if v1.Version != 1 || v2.Version != 2 {
		t.Fatalf("versions %d, %d", v1.Version, v2.Version)
	}
	dock.pollInventory(ctx, f)
	if got := assigned(); got != "officer-b" {
		t.Fatalf("after version 2: BWC-1 issued to %s", got)
	}

	other, err := signing.Generate("hq")
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(v2bytes, note.VerifierList(hq.hostKey().NoteVerifier()))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := note.Sign(&note.Note{Text: strings.Replace(n.Text, `"version":2`, `"version":3`, 1)}, other.NoteSigner())
	if err != nil {
		t.Fatal(err)
	}
	refusals := []struct {
		name string
		data []byte
		why  string
	}{
		{"bytes changed", bytes.Replace(v2bytes, []byte("officer-b"), []byte("officer-x"), 1), "signature"},
		{"rollback", v1bytes, "not newer"},
		{"another key", forged, "signature"},
	}
	for _, r := range refusals {
		putInventory(t, dock, r.data)
		dock.pollInventory(ctx, f)
		dock.pollInventory(ctx, f) // the same bytes again: no second alert
		if got := assigned(); got != "officer-b" {
			t.Errorf("%s: BWC-1 now issued to %s", r.name, got)
		}
	}

	evs := inventoryEvents(t, dock)
	want := []string{"INVENTORY_ACCEPTED 1", "INVENTORY_ACCEPTED 2", "INVENTORY_REFUSED signature", "INVENTORY_REFUSED not newer", "INVENTORY_REFUSED signature"}
	if len(evs) != len(want) {
		t.Fatalf("records: %+v", evs)
	}
	for i, ev := range evs {
		w := strings.SplitN(want[i], " ", 2)
		if string(ev.Type) != w[0] || (ev.Type == InventoryAccepted && ev.Details["version"] != w[1]) ||
			(ev.Type == InventoryRefused && !strings.Contains(ev.Details["problem"], w[1])) {
			t.Errorf("record %d: %s %v, want %s", i, ev.Type, ev.Details, want[i])
		}
	}
	if evs[1].Details["sha256"] != v2.SHA256 || evs[1].Details["version_id"] != v2.VersionID {
		t.Errorf("INVENTORY_ACCEPTED names %v, published %+v", evs[1].Details, v2)
	}
	if p := inventoryEvents(t, hq); len(p) != 2 || p[1].Type != InventoryPublished || p[1].Details["version"] != "2" || p[1].Details["sha256"] != v2.SHA256 || p[1].Actor != who.Actor {
		t.Errorf("the console's records: %+v", p)
	}

	if got := scrapeOf(t, newMetrics(dock), "evidenced_inventory_refused_total"); got != "evidenced_inventory_refused_total{} 3" {
		t.Errorf("metrics: %s", got)
	}

	// A restart starts from the last accepted document: version 2 is in
	// force from Open, before the store is read, and stays the floor, so
	// the older signed version put back is still refused.
	dock.Close()
	dock = p.reopenDock()
	f = dock.inventory
	if f == nil {
		t.Fatal("reopened: no inventory follower")
	}
	if got := assigned(); got != "officer-b" || f.floor != 2 {
		t.Fatalf("after a restart: BWC-1 issued to %s, floor %d", got, f.floor)
	}
	putInventory(t, dock, v1bytes)
	dock.pollInventory(ctx, f)
	if got := assigned(); got != "officer-b" {
		t.Errorf("an older version put back across a restart: BWC-1 issued to %s", got)
	}
	if evs := inventoryEvents(t, dock); len(evs) != 6 || evs[5].Type != InventoryRefused || !strings.Contains(evs[5].Details["problem"], "not newer") {
		t.Errorf("after the restart: %+v", evs[len(evs)-1])
	}

	// The store holds a document hq did not sign: it publishes nothing
	// over it.
	putInventory(t, dock, forged)
	file := filepath.Join(root, "inventory.yaml")
	if _, err := hq.PublishInventory(ctx, who, file); !errors.Is(err, ErrIntegrity) {
		t.Errorf("publish over a forged document: %v", err)
	}
	if _, err := dock.PublishInventory(ctx, who, file); !errors.Is(err, ErrInvalid) {
		t.Errorf("publish at a dock host: %v", err)
	}
}

// doctor names a console key that is missing or is not a key, with the fix.
func TestDoctorInventoryKey(t *testing.T) {
	dir := t.TempDir()
	pem := filepath.Join(dir, "hq.pem")
	cfg, err := config.Parse([]byte("host_id: dock-01\nstate_dir: "+dir+"\nobject_store: {bucket: evidence}\n"+
		"retention: {classes: [{name: uncategorized, days: 1, mode: GOVERNANCE}]}\n"+
		"inventory: {from_console: hq, public_key_file: "+pem+"}\n"), filepath.Join(dir, "evidenced.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	check := func() Check {
		var r DoctorReport
		doctorInventory(&r, cfg)
		if len(r.Checks) != 1 {
			t.Fatalf("checks: %+v", r.Checks)
		}
		return r.Checks[0]
	}
	if c := check(); c.Status != CheckFail || !strings.Contains(c.Detail, "no such file") || !strings.Contains(c.Fix, "evidenced key --public") {
		t.Errorf("missing key: %+v", c)
	}
	os.WriteFile(pem, []byte("not a key\n"), 0o644)
	if c := check(); c.Status != CheckFail || !strings.Contains(c.Detail, pem) {
		t.Errorf("not a key: %+v", c)
	}
	k, err := signing.Generate("hq")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(pem, k.PublicPEM(), 0o644)
	if c := check(); c.Status != CheckOK || !strings.Contains(c.Detail, k.KeyID()) {
		t.Errorf("the console's key: %+v", c)
	}
}

// invPair is a console and a dock host that takes its inventory.
type invPair struct {
	srv      *s3srv.Server
	bucket   string
	root     string
	hq, dock *Service
	// reopenDock opens dock-01 again (after dock.Close), as a restart does.
	reopenDock func() *Service
}

// inventoryPair opens console hq and dock host dock-01, which takes hq's
// inventory (inventory: with hq's key, poll 1s), on one bucket of a fresh
// store under root.
func inventoryPair(t *testing.T) invPair {
	t.Helper()
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	root := t.TempDir()
	// The console's list of dock hosts plays no part here: any key will do.
	dockKey, err := signing.Generate("dock-01")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "dock-01.pem"), dockKey.PublicPEM(), 0o644); err != nil {
		t.Fatal(err)
	}

	hq := openHost(t, srv, bucket, filepath.Join(root, "hq"), "host_id: hq\nrole: console\nconsole:\n  hosts:\n    - {id: dock-01, public_key_file: "+filepath.Join(root, "dock-01.pem")+"}\n")
	pem := filepath.Join(root, "hq.pem")
	if err := os.WriteFile(pem, hq.hostKey().PublicPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	dockYAML := "host_id: dock-01\ncameras:\n  - {serial: BWC-1, kind: body, assigned_to: officer-local}\n" +
		"inventory: {from_console: hq, public_key_file: " + pem + ", poll: 1s}\n"
	reopen := func() *Service { return openHost(t, srv, bucket, filepath.Join(root, "dock-01"), dockYAML) }
	return invPair{srv: srv, bucket: bucket, root: root, hq: hq, dock: reopen(), reopenDock: reopen}
}

// A dock host counts every read of its console's inventory that leaves
// the version in force without finding it the newest in the store, by
// reason, and the time since one last did (the metrics
// EvidencedInventoryNotConfirmed alerts on): a document it refused counts
// at every read while it stays there (its INVENTORY_REFUSED record is
// written once), so do a store that does not answer and a document gone
// from the store; a read that finds the version in force confirms it.
func TestInventoryReadsAreCounted(t *testing.T) {
	ctx := context.Background()
	p := inventoryPair(t)
	dock := p.dock
	f, err := dock.newInventoryFollower()
	if err != nil {
		t.Fatal(err)
	}
	confirmed := dock.invReads.confirmed.Load
	want := func(what string, store, refused, missing int, confirms bool) {
		t.Helper()
		before := confirmed()
		dock.pollInventory(ctx, f)
		if got := confirmed() != before; got != confirms {
			t.Errorf("%s: the read confirmed the version in force: %v, want %v", what, got, confirms)
		}
		got := scrapeOf(t, newMetrics(dock), "evidenced_inventory_refresh_failures_total", "evidenced_inventory_read_age_seconds")
		lines := strings.Split(got, "\n")
		exp := fmt.Sprintf(`evidenced_inventory_refresh_failures_total{reason="missing"} %d
evidenced_inventory_refresh_failures_total{reason="refused"} %d
evidenced_inventory_refresh_failures_total{reason="store"} %d`, missing, refused, store)
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "evidenced_inventory_read_age_seconds{} ") || strings.Join(lines[1:], "\n") != exp {
			t.Errorf("%s: metrics:\n%s\nwant the read age and\n%s", what, got, exp)
		}
	}
	want("nothing published", 0, 0, 0, true)
	res, data := publishInventory(t, p, "officer-a")
	want("version 1", 0, 0, 0, true)
	want("version 1 again", 0, 0, 0, true)

	other, err := signing.Generate("hq")
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(data, note.VerifierList(p.hq.hostKey().NoteVerifier()))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := note.Sign(&note.Note{Text: strings.Replace(n.Text, `"version":1`, `"version":2`, 1)}, other.NoteSigner())
	if err != nil {
		t.Fatal(err)
	}
	putInventory(t, dock, forged)
	want("a document signed by another key", 0, 1, 0, false)
	want("the same document, still there", 0, 2, 0, false)
	if evs := inventoryEvents(t, dock); len(evs) != 2 || evs[1].Type != InventoryRefused {
		t.Errorf("records: %+v", evs)
	}
	putInventory(t, dock, data)
	want("version 1 put back over it", 0, 2, 0, true)

	if _, err := p.srv.Client().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(p.bucket), Key: aws.String(res.Object)}); err != nil {
		t.Fatal(err)
	}
	want("the document deleted", 0, 2, 1, false)

	p.srv.Stop()
	short, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	before := confirmed()
	dock.pollInventory(short, f)
	if got := dock.invReads.failures[invReadStore].Load(); got != 1 || confirmed() != before {
		t.Errorf("the store stopped: %d store failures, confirmed %v, want 1 and not confirmed", got, confirmed() != before)
	}
}

// publishInventory publishes, at p's console, BWC-1 issued to officer and
// returns what was stored and its bytes.
func publishInventory(t *testing.T, p invPair, officer string) (InventoryPublication, []byte) {
	t.Helper()
	ctx := context.Background()
	file := filepath.Join(p.root, "inventory.yaml")
	if err := os.WriteFile(file, []byte("cameras:\n  - {serial: BWC-1, kind: body, assigned_to: "+officer+"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := p.hq.PublishInventory(ctx, Caller{Actor: "custodian-1"}, file)
	if err != nil {
		t.Fatal(err)
	}
	data, _, err := p.hq.readInventory(ctx, res.Object)
	if err != nil {
		t.Fatal(err)
	}
	return res, data
}

// A camera the console retired stays retired for every process that opens
// the dock host, not only for a running daemon that has read the store:
// `evidenced ingest` with no daemon (a one-shot Open, no Run) and a daemon
// just restarted (whose wipe loop starts scanning VERIFIED items as Run
// begins) both take the last accepted document from the state directory
// at Open. Before, the cameras: list was in force until Run's first read
// of the store, and a retired camera listed there with the wipe rule on
// was wiped.
func TestRetirementInForceFromOpen(t *testing.T) {
	ctx := context.Background()
	p := inventoryPair(t)
	dockYAML := "host_id: dock-02\nwipe_after_verify: true\ncameras:\n  - {serial: BWC-1, kind: body, assigned_to: officer-local}\n" +
		"inventory: {from_console: hq, public_key_file: " + filepath.Join(p.root, "hq.pem") + ", poll: 1s}\n"
	open := func() *Service { return openHost(t, p.srv, p.bucket, filepath.Join(p.root, "dock-02"), dockYAML) }
	dock := open()
	if !dock.config.WipePolicy("BWC-1").Enabled {
		t.Fatal("the wipe rule is not on for BWC-1: the retirement below proves nothing")
	}
	file := filepath.Join(p.root, "retired.yaml")
	if err := os.WriteFile(file, []byte("cameras:\n  - {serial: BWC-1, kind: body, assigned_to: officer-a, retired: 2026-01-01T00:00:00Z}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := p.hq.PublishInventory(ctx, Caller{Actor: "custodian-1"}, file); err != nil {
		t.Fatal(err)
	}
	f, err := dock.newInventoryFollower()
	if err != nil {
		t.Fatal(err)
	}
	dock.pollInventory(ctx, f)
	if dock.config.WipePolicy("BWC-1").Enabled {
		t.Fatal("the accepted document retires BWC-1, yet its wipe rule is on")
	}
	dock.Close()

	dock = open() // a one-shot command, or a daemon before Run reads the store
	if dock.config.WipePolicy("BWC-1").Enabled {
		t.Error("reopened: the wipe rule is on for a camera the accepted inventory retired")
	}
	if cam, ok := dock.config.Camera("BWC-1"); !ok || !cam.RetiredAt(time.Now()) || cam.AssignedTo != "officer-a" {
		t.Errorf("reopened: BWC-1 is %+v (found %v), want the accepted document's retired entry", cam, ok)
	}
}

// Footage a camera yielded while retired is never wiped from it, even when
// the inventory in force later no longer retires it (a version an earlier
// release's import published without the retired column, a dock host whose kept document was
// lost): the promise RETIRED_DOCKED states ("wipe: never") rides with
// each item, in its VAULTED record, and the wipe keeps it.
func TestRetiredFootageNeverWipedAfterward(t *testing.T) {
	ctx := context.Background()
	p := inventoryPair(t)
	dockYAML := "host_id: dock-03\nwipe_after_verify: true\ncameras:\n  - {serial: BWC-1, kind: body, assigned_to: officer-local}\n" +
		"inventory: {from_console: hq, public_key_file: " + filepath.Join(p.root, "hq.pem") + ", poll: 1s}\n"
	dock := openHost(t, p.srv, p.bucket, filepath.Join(p.root, "dock-03"), dockYAML)
	publish := func(yml string) {
		t.Helper()
		file := filepath.Join(p.root, "inv.yaml")
		if err := os.WriteFile(file, []byte(yml), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := p.hq.PublishInventory(ctx, Caller{Actor: "custodian-1"}, file); err != nil {
			t.Fatal(err)
		}
	}
	publish("cameras:\n  - {serial: BWC-1, kind: body, assigned_to: officer-a, retired: 2026-01-01T00:00:00Z}\n")
	f, err := dock.newInventoryFollower()
	if err != nil {
		t.Fatal(err)
	}
	dock.pollInventory(ctx, f)
	cam := filepath.Join(p.root, "cam-03")
	if err := os.MkdirAll(cam, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(cam, "found.mp4")
	if err := os.WriteFile(file, []byte("footage on a retired camera"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := dock.Ingest(ctx, Caller{Actor: "custodian-1"}, IngestOptions{Camera: "BWC-1", From: cam})
	if err != nil || len(rep.Recorded) != 1 {
		t.Fatalf("ingest: %+v %v", rep, err)
	}
	id := rep.Recorded[0].ID
	if it, err := dock.ledger.Item(ctx, id); err != nil || it.State != custody.StateVerified {
		t.Fatalf("item %s: %+v %v (want it verified, so that only the wipe rule keeps the file)", id, it, err)
	}

	// A later version that no longer retires it: an import keeps a
	// retirement, so this is one an earlier release's import published
	// with the retired column left out.
	if _, err := p.hq.publishNext(ctx, Caller{Actor: "custodian-1"}, func(*inventoryDoc) ([]config.InventoryCamera, map[string]string, error) {
		return []config.InventoryCamera{{Serial: "BWC-1", Kind: "body", AssignedTo: "officer-a"}}, map[string]string{"change": "import"}, nil
	}); err != nil {
		t.Fatal(err)
	}
	dock.pollInventory(ctx, f)
	if !dock.config.WipePolicy("BWC-1").Enabled {
		t.Fatal("the wipe rule is still off: the check below proves nothing")
	}
	err = dock.wiper.Wipe(ctx, id)
	if _, serr := os.Stat(file); serr != nil {
		t.Fatalf("footage a retired camera yielded was wiped once the inventory no longer retired it (wipe: %v; file: %v)", err, serr)
	}
	if err == nil {
		t.Error("the wipe reports success, yet the file is on the camera")
	}
}

// A document over the size any reader takes (maxInventory) at the
// console's key is not one the console wrote (it refuses to publish one):
// it is a finding, never "could not check". The console's show says so
// (ErrIntegrity, exit 3) and its fleet view keeps the last good version's
// cameras; a dock host refuses it with an INVENTORY_REFUSED alert, as any
// document it cannot take, and keeps the version in force.
func TestInventoryTooLargeIsAFinding(t *testing.T) {
	ctx := context.Background()
	p := inventoryPair(t)
	publishInventory(t, p, "officer-a")
	f, _ := takeInventory(t, p)
	putInventory(t, p.dock, bytes.Repeat([]byte("x"), maxInventory+1))

	if _, err := p.hq.ShowInventory(ctx); !errors.Is(err, ErrIntegrity) {
		t.Errorf("console show of an oversized document: %v, want ErrIntegrity", err)
	}
	if inv, err := p.hq.readFleetInventory(ctx); err != nil || inv.Version != 1 {
		t.Errorf("console fleet inventory beside an oversized version: version %d, %v; want version 1's cameras", inv.Version, err)
	}
	p.dock.pollInventory(ctx, f)
	evs := inventoryEvents(t, p.dock)
	if last := evs[len(evs)-1]; last.Type != InventoryRefused || !strings.Contains(last.Details["problem"], "larger than") {
		t.Errorf("dock host after an oversized document: %s %v, want INVENTORY_REFUSED naming its size", last.Type, last.Details)
	}
	if cam, _ := p.dock.config.Camera("BWC-1"); cam.AssignedTo != "officer-a" {
		t.Errorf("the version in force changed: BWC-1 issued to %s", cam.AssignedTo)
	}
}
