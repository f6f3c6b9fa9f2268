package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
	"github.com/evidenced/evidenced/internal/service"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// Issue #13, the inventory: a console publishes the camera inventory
// through the store and a running dock host that pins the console's key
// takes each newer version within its poll; the next dock of a reassigned
// camera names the new officer in DOCKED. A document whose bytes were
// changed in the store, and an older signed version put back, are refused
// (an ERROR line, an INVENTORY_REFUSED record) and the assignment stays.
func TestInventoryFromConsoleE2E(t *testing.T) { inventoryFromConsole(t, s3srv.Start(t)) }

// The same on Ceph RGW (skipped when Ceph is not installed, unless
// EVIDENCED_REQUIRE_RGW is set, as scripts/test.sh does).
func TestInventoryFromConsoleE2ERGW(t *testing.T) { inventoryFromConsole(t, s3srv.RGW(t)) }

func inventoryFromConsole(t *testing.T, srv *s3srv.Server) {
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	const poll = time.Second
	const serial = "BWC-0001"

	root := t.TempDir()
	media := filepath.Join(root, "media")
	if err := os.MkdirAll(media, 0o755); err != nil {
		t.Fatal(err)
	}
	hqPEM := filepath.Join(root, "hq.pem")
	dock := newFleetHost(t, srv, bucket, "dock-01", fmt.Sprintf(`cameras:
  - {serial: %s, kind: body, assigned_to: officer-local}
sources: {watch: [%s], settle: 200ms}
inventory: {from_console: hq, public_key_file: %s, poll: %s}
`, serial, media, hqPEM, poll))
	console := newFleetHost(t, srv, bucket, "hq", fmt.Sprintf(`role: console
console:
  hosts:
    - {id: dock-01, public_key_file: %s}
`, dock.publicKey()))
	pem, err := os.ReadFile(console.publicKey())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hqPEM, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	console.daemon()

	publish := func(officer string) service.InventoryPublication {
		t.Helper()
		file := filepath.Join(root, "inventory-"+officer+".yaml")
		yml := fmt.Sprintf("cameras:\n  - {serial: %s, kind: body, assigned_to: %s}\n  - {serial: CAR-0001, kind: vehicle, assigned_to: car-1}\n", serial, officer)
		if err := os.WriteFile(file, []byte(yml), 0o644); err != nil {
			t.Fatal(err)
		}
		var res service.InventoryPublication
		if err := json.Unmarshal([]byte(console.must("inventory", "publish", "--json", file)), &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	// dockAgain docks the camera with one new recording and returns the
	// assigned_to of its DOCKED record and of the new item.
	docks := 0
	dockAgain := func() (docked, item string) {
		t.Helper()
		docks++
		os.RemoveAll(filepath.Join(media, serial))
		staging := filepath.Join(root, "staging", serial)
		os.RemoveAll(staging)
		rel := fmt.Sprintf("DCIM/VID_%04d.MP4", docks)
		writeCamera(t, staging, map[string]int{rel: 16 << 10})
		// Recorded now: a re-import that changes the holder is a hand-over
		// from its time on, and a recording is its holder's at its time.
		now := time.Now()
		if err := os.Chtimes(filepath.Join(staging, rel), now, now); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(staging, filepath.Join(media, serial)); err != nil {
			t.Fatal(err)
		}
		var items []custody.Item
		waitFor(t, fmt.Sprintf("dock %d vaulted", docks), 30*time.Second, func() bool {
			items = dock.findJSON("--camera", serial)
			return len(items) == docks
		})
		var it custody.Item
		for _, i := range items {
			if strings.HasSuffix(i.SourcePath, fmt.Sprintf("VID_%04d.MP4", docks)) {
				it = i
			}
		}
		var evs []custody.Event
		if err := json.Unmarshal([]byte(dock.must("custody", "--json", it.ID)), &evs); err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Type == custody.Docked {
				docked = ev.Details["assigned_to"]
			}
		}
		return docked, it.AssignedTo
	}

	v1 := publish("officer-a")
	stopDock := dock.daemon()
	if docked, item := dockAgain(); docked != "officer-a" || item != "officer-a" {
		t.Fatalf("version 1 in force at start: DOCKED names %q, the item %q", docked, item)
	}

	// A reassignment reaches the running dock host within its poll.
	v2 := publish("officer-b")
	published := time.Now()
	if c := v2.Change; c["change"] != "import" || c["handed_over"] != "1" || c["handed_over_serials"] != serial || c["added"] != "0" {
		t.Errorf("the re-import with another officer: change %v, want %s handed over", c, serial)
	}
	waitFor(t, "version 2 accepted", poll+10*time.Second, func() bool {
		return strings.Contains(dock.logs.String(), `msg="inventory accepted" object=_inventory/hq/inventory.note version=2`)
	})
	took := time.Since(published)
	t.Logf("version 2 in force %s after its publication (poll %s)", took.Round(time.Millisecond), poll)
	if took > poll+5*time.Second {
		t.Errorf("version 2 took %s; poll is %s", took, poll)
	}
	if docked, item := dockAgain(); docked != "officer-b" || item != "officer-b" {
		t.Fatalf("after the reassignment: DOCKED names %q, the item %q", docked, item)
	}

	// Bytes changed in the store (another officer, and a version that
	// would be newer): refused, the assignment stays.
	st := openBucketStore(t, srv, bucket)
	tampered := changeStored(t, srv, st, bucket, v2.Object, "officer-b", "officer-x", `"version":2`, `"version":3`)
	waitFor(t, "the changed document refused", poll+10*time.Second, func() bool {
		return strings.Count(dock.logs.String(), `level=ERROR msg="inventory document refused`) == 1
	})
	if docked, item := dockAgain(); docked != "officer-b" || item != "officer-b" {
		t.Errorf("after a changed document: DOCKED names %q, the item %q", docked, item)
	}

	// Version 1, signed by the console, put back as the newest version:
	// a rollback, refused.
	putVersion(t, st, v1.Object, readStored(t, st, v1.Object, v1.VersionID))
	waitFor(t, "the older version refused", poll+10*time.Second, func() bool {
		return strings.Count(dock.logs.String(), `level=ERROR msg="inventory document refused`) == 2
	})
	if docked, item := dockAgain(); docked != "officer-b" || item != "officer-b" {
		t.Errorf("after a rollback: DOCKED names %q, the item %q", docked, item)
	}
	for _, want := range []string{"err=\"signature: ", "err=\"version 1 is not newer than version 2 in force"} {
		if !strings.Contains(dock.logs.String(), want) {
			t.Errorf("the dock host's log does not say %q:\n%s", want, dock.logs.String())
		}
	}

	// A restart starts from the last accepted document (in force before
	// the store is read, and the floor): the older version is refused again.
	stopDock()
	stopDock = dock.daemon()
	waitFor(t, "the older version refused after a restart", poll+10*time.Second, func() bool {
		return strings.Count(dock.logs.String(), `level=ERROR msg="inventory document refused`) == 1
	})
	if !strings.Contains(dock.logs.String(), `msg="inventory in force from the last accepted document"`) {
		t.Errorf("the restarted dock host did not start from version 2:\n%s", dock.logs.String())
	}
	if docked, item := dockAgain(); docked != "officer-b" || item != "officer-b" {
		t.Errorf("after a restart: DOCKED names %q, the item %q", docked, item)
	}

	// On record: what the dock host took and refused, each naming the
	// document's SHA-256.
	stopDock()
	l, err := custody.Open(filepath.Join(dock.dir, "state", "ledger.db"), custody.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var got []string
	if err := l.Events(context.Background(), 0, func(ev custody.Event) error {
		if strings.HasPrefix(string(ev.Type), "INVENTORY_") {
			what, _, _ := strings.Cut(ev.Details["problem"], ":")
			got = append(got, strings.Join([]string{string(ev.Type), ev.Details["version"] + what, ev.Details["sha256"]}, " "))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"INVENTORY_ACCEPTED 1 " + v1.SHA256, "INVENTORY_ACCEPTED 2 " + v2.SHA256,
		"INVENTORY_REFUSED signature " + digest.Bytes(tampered).Hex(),
		"INVENTORY_REFUSED version 1 is not newer than version 2 in force (a rollback) " + v1.SHA256,
		"INVENTORY_REFUSED version 1 is not newer than version 2 in force (a rollback) " + v1.SHA256,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("inventory records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// changeStored changes the bytes of key's newest version in the store,
// each from string to the string after it, in one write, and returns the
// changed bytes. On versitygw (posix) the file under the server is edited
// in place: the same version id, other bytes. Ceph RGW keeps its objects
// in RADOS, out of a test's reach, so there the changed bytes are put as a
// new version, what anyone with write access to the bucket can do.
func changeStored(t *testing.T, srv *s3srv.Server, st *s3store.Store, bucket, key string, fromTo ...string) []byte {
	t.Helper()
	if srv.Name != "rgw" {
		tamperStored(t, srv, bucket, key, fromTo...)
		b, err := os.ReadFile(filepath.Join(srv.Dir, "data", bucket, filepath.FromSlash(key)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	changed := replaceSameLength(t, key, readStored(t, st, key, ""), fromTo...)
	putVersion(t, st, key, changed)
	return changed
}

// readStored reads a version of key ("": the newest) from the store.
func readStored(t *testing.T, st *s3store.Store, key, versionID string) []byte {
	t.Helper()
	rc, err := st.Open(t.Context(), key, versionID)
	if err != nil {
		t.Fatalf("the stored object %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read the stored object %s: %v", key, err)
	}
	return b
}

// putVersion puts b as the newest version of key, as any writer to the
// bucket can.
func putVersion(t *testing.T, st *s3store.Store, key string, b []byte) {
	t.Helper()
	sum := digest.Bytes(b)
	if _, err := st.Put(t.Context(), objstore.PutRequest{Key: key, Body: bytes.NewReader(b), Size: int64(len(b)), SHA256: sum,
		Metadata: map[string]string{"sha256": sum.Hex()}}); err != nil {
		t.Fatalf("put a version of %s: %v", key, err)
	}
}

// The console publishes no inventory over a document in the store that it
// did not sign (another key's, under the console's own name and a higher
// version): `inventory publish` refuses, exit 3 (something found wrong),
// naming the object, both run directly and through the running daemon's
// control socket, and nothing is written: the store holds the same
// versions, the console's ledger no INVENTORY_PUBLISHED beyond the first,
// and fleet names the document as not the console's.
func TestInventoryPublishRefusesAForeignDocumentE2E(t *testing.T) {
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	root := t.TempDir()
	dockKey, err := signing.Generate("dock-01")
	if err != nil {
		t.Fatal(err)
	}
	dockPEM := filepath.Join(root, "dock-01.pem")
	if err := os.WriteFile(dockPEM, dockKey.PublicPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	console := newFleetHost(t, srv, bucket, "hq", fmt.Sprintf("role: console\nconsole:\n  hosts:\n    - {id: dock-01, public_key_file: %s}\n", dockPEM))
	console.publicKey()
	file := filepath.Join(root, "inventory.yaml")
	if err := os.WriteFile(file, []byte("cameras:\n  - {serial: BWC-0001, kind: body, assigned_to: officer-a}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var v1 service.InventoryPublication
	if err := json.Unmarshal([]byte(console.must("inventory", "publish", "--json", file)), &v1); err != nil {
		t.Fatal(err)
	}

	// Another key, under the console's name, signs version 2 and puts it
	// over version 1, as anyone with write access to the bucket can.
	st := openBucketStore(t, srv, bucket)
	other, err := signing.Generate("hq")
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Sign(&note.Note{Text: fmt.Sprintf(`{"format":"evidenced-inventory/v1","console":"hq","version":2,"published_at":%q,"cameras":[{"serial":"BWC-0001","kind":"body","assigned_to":"officer-x"}]}`+"\n",
		time.Now().UTC().Format(time.RFC3339Nano))}, other.NoteSigner())
	if err != nil {
		t.Fatal(err)
	}
	putVersion(t, st, v1.Object, n)
	versions := func() string {
		t.Helper()
		vs, err := st.ListVersions(t.Context(), v1.Object)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range vs {
			out = append(out, fmt.Sprintf("%s@%s latest=%t", v.Key, v.VersionID, v.IsLatest))
		}
		return strings.Join(out, "\n")
	}
	before := versions()
	if strings.Count(before, "\n") != 1 {
		t.Fatalf("versions before: %s", before)
	}

	refused := func(how string) {
		t.Helper()
		code, out, errs := run(t, nil, "inventory", "--config", console.cfg, "publish", file)
		if code != 3 || !strings.Contains(errs, v1.Object) || !strings.Contains(errs, "not this console's") {
			t.Errorf("%s: publish over another key's document: exit %d, want 3 naming %s\n%s%s", how, code, v1.Object, out, errs)
		}
		if got := versions(); got != before {
			t.Errorf("%s: the store's versions changed:\n%s\nwant:\n%s", how, got, before)
		}
		if got := readStored(t, st, v1.Object, ""); !bytes.Equal(got, n) {
			t.Errorf("%s: the newest document is no longer the one found:\n%s", how, got)
		}
	}
	refused("directly")
	stop := console.daemon()
	refused("through the daemon")
	var f catalog.Fleet
	if err := json.Unmarshal([]byte(console.must("fleet", "--json")), &f); err != nil {
		t.Fatal(err)
	}
	if f.InventoryVersion != 1 || !strings.Contains(f.InventoryProblem, v1.Object) || !strings.Contains(f.InventoryProblem, "not this console's") {
		t.Errorf("fleet: inventory version %d, problem %q", f.InventoryVersion, f.InventoryProblem)
	}
	stop()

	published := console.published(func(ev custody.Event) string { return ev.Details["version"] + " " + ev.Details["version_id"] })
	if len(published) != 1 || published[0] != "1 "+v1.VersionID {
		t.Errorf("INVENTORY_PUBLISHED records: %q, want only version 1's", published)
	}
}

// published describes each INVENTORY_PUBLISHED record in the host's
// ledger, read with its daemon stopped.
func (h *fleetHost) published(describe func(custody.Event) string) []string {
	h.t.Helper()
	l, err := custody.Open(filepath.Join(h.dir, "state", "ledger.db"), custody.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		h.t.Fatal(err)
	}
	defer l.Close()
	var out []string
	if err := l.Events(context.Background(), 0, func(ev custody.Event) error {
		if ev.Type == service.InventoryPublished {
			out = append(out, describe(ev))
		}
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
	return out
}
