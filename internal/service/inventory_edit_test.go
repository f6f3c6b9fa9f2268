package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/ingest"
	"github.com/evidenced/evidenced/internal/objstore"
)

// The console's edits: a CSV imported, a camera handed to another officer
// from a time, a camera retired; each the next signed version, recorded
// with what changed; unknown serials and edits of nothing refused; show
// reads back what the store holds.
func TestInventoryEditsAtTheConsole(t *testing.T) {
	ctx := context.Background()
	p := inventoryPair(t)
	who := Caller{Actor: "custodian-1"}
	if _, err := p.hq.AssignInventory(ctx, who, "BWC-1", "pc-2", time.Time{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("assign with nothing published: %v", err)
	}
	if _, err := p.hq.ShowInventory(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("show with nothing published: %v", err)
	}
	csv := filepath.Join(p.root, "inventory.csv")
	if err := os.WriteFile(csv, []byte("serial,kind,assigned_to\r\nBWC-1,body,pc-1\r\nBWC-2,body,pc-7\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v1, err := p.hq.ImportInventory(ctx, who, csv)
	if err != nil || v1.Version != 1 || v1.Cameras != 2 {
		t.Fatalf("import: %+v %v", v1, err)
	}
	eff := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	fromWeb := who
	fromWeb.Peer = "web:192.0.2.7"
	v2, err := p.hq.AssignInventory(ctx, fromWeb, "bwc-1", "pc-2", eff)
	if err != nil || v2.Version != 2 || v2.Change["from"] != "pc-1" || v2.Change["to"] != "pc-2" || v2.Change["serial"] != "BWC-1" {
		t.Fatalf("assign: %+v %v", v2, err)
	}
	if _, err := p.hq.AssignInventory(ctx, who, "BWC-404", "pc-2", eff); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "BWC-404") {
		t.Errorf("assign an unknown serial: %v", err)
	}
	if _, err := p.hq.AssignInventory(ctx, who, "BWC-1", "pc-3", eff.Add(-time.Hour)); !errors.Is(err, ErrInvalid) {
		t.Errorf("an assignment before the last one: %v", err)
	}
	v3, err := p.hq.RetireInventory(ctx, who, "BWC-2", eff)
	if err != nil || v3.Version != 3 || v3.Change["retired"] != "2026-12-01T06:00:00Z" {
		t.Fatalf("retire: %+v %v", v3, err)
	}
	if _, err := p.hq.AssignInventory(ctx, who, "BWC-2", "pc-3", eff.Add(time.Hour)); !errors.Is(err, ErrInvalid) {
		t.Errorf("assign a retired camera: %v", err)
	}
	view, err := p.hq.ShowInventory(ctx)
	if err != nil || view.Version != 3 || view.SHA256 != v3.SHA256 || !strings.Contains(view.Source, v3.VersionID) || len(view.Cameras) != 2 {
		t.Fatalf("show: %+v %v", view, err)
	}
	bwc1 := view.Cameras[0]
	if bwc1.AssignedTo != "pc-2" || len(bwc1.Assignments) != 2 || bwc1.Assignments[0].To != "pc-1" || !bwc1.Assignments[0].From.IsZero() ||
		bwc1.Assignments[1].To != "pc-2" || !bwc1.Assignments[1].From.Equal(eff) {
		t.Errorf("BWC-1's history: %+v", bwc1)
	}
	if view.Cameras[1].Retired == nil || !view.Cameras[1].Retired.Equal(eff) {
		t.Errorf("BWC-2: %+v", view.Cameras[1])
	}
	evs := inventoryEvents(t, p.hq)
	if len(evs) != 3 || evs[1].Details["change"] != "assign" || evs[1].Details["to"] != "pc-2" || evs[1].Details["peer"] != "web:192.0.2.7" || evs[2].Details["change"] != "retire" || evs[2].Details["serial"] != "BWC-2" {
		t.Errorf("the console's records: %+v", evs)
	}
	// An upload (the web console's): too large is refused before it is
	// parsed; one that fits is the next version, recorded under its name
	// (merged: BWC-2, which it leaves out, is kept).
	if _, err := p.hq.ImportInventoryData(ctx, who, "upload:big.csv", make([]byte, maxInventory+1)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("an oversized upload: %.200v", err)
	}
	v4, err := p.hq.ImportInventoryData(ctx, who, "upload:fleet.csv", []byte("serial,kind,assigned_to\nBWC-1,body,pc-2\n"))
	if evs := inventoryEvents(t, p.hq); err != nil || v4.Version != 4 || v4.Cameras != 2 || v4.Change["kept_absent"] != "1" || len(evs) != 4 || evs[3].Details["file"] != "upload:fleet.csv" {
		t.Errorf("an upload: %+v %v, records %+v", v4, err, evs)
	}
}

// An edit follows the version it read: a publication that lands while it
// is prepared makes it fail, and the other publication stays the newest.
func TestInventoryEditDoesNotOverwrite(t *testing.T) {
	ctx := context.Background()
	p := inventoryPair(t)
	who := Caller{Actor: "custodian-1"}
	publishInventory(t, p, "pc-1")
	_, err := p.hq.publishNext(ctx, who, func(prev *inventoryDoc) ([]config.InventoryCamera, map[string]string, error) {
		// Another process's import meanwhile (a CLI run while the daemon is
		// down, say): it does not share this process's invEdit lock.
		p.hq.invEdit.Unlock()
		publishInventory(t, p, "pc-9")
		p.hq.invEdit.Lock()
		return prev.Cameras, map[string]string{"change": "test"}, nil
	})
	if !errors.Is(err, ErrInventoryConflict) {
		t.Fatalf("an edit over a newer publication: %v", err)
	}
	view, err := p.hq.ShowInventory(ctx)
	if err != nil || view.Version != 2 || view.Cameras[0].AssignedTo != "pc-9" {
		t.Errorf("the store after the refused edit: %+v %v", view, err)
	}
}

// A dock host names, for each recording, whoever held the camera when it
// recorded (the file's time), and at the dock whoever holds it now, with
// the inventory entry and version that said so; a retired camera is still
// ingested, and its dock is an alert naming its retirement.
func TestDockResolvesTheHolderByTime(t *testing.T) {
	ctx := context.Background()
	p := inventoryPair(t)
	who := Caller{Actor: "custodian-1"}
	publishInventory(t, p, "pc-1")
	eff := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	if _, err := p.hq.AssignInventory(ctx, who, "BWC-1", "pc-2", eff); err != nil {
		t.Fatal(err)
	}
	f, cam := takeInventory(t, p)
	ingestAround(t, p, cam, eff, "pc-1", "pc-2")
	docked := lastOf(t, p.dock, custody.Docked)
	if docked.Details["assigned_to"] != "pc-2" || docked.Details["assignment"] != "assignments[1]" || docked.Details["inventory_version"] != "2" {
		t.Errorf("DOCKED: %v", docked.Details)
	}

	if _, err := p.hq.RetireInventory(ctx, who, "BWC-1", time.Time{}); err != nil {
		t.Fatal(err)
	}
	p.dock.pollInventory(ctx, f)
	if err := os.WriteFile(filepath.Join(cam, "late.mp4"), []byte("footage after retirement"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := p.dock.Ingest(ctx, Caller{Actor: "officer"}, IngestOptions{Camera: "BWC-1", From: cam})
	if err != nil || rep.Vaulted != 1 {
		t.Fatalf("a retired camera's footage: %+v %v", rep, err)
	}
	p.dock.dock(ctx, ingest.Request{Serial: "BWC-1", Root: cam, Via: "watch"}) // as the daemon docks it
	var bay Bay
	for _, b := range p.dock.bays.List() {
		if b.Camera == "BWC-1" {
			bay = b
		}
	}
	if bay.State != BayProblem || !strings.Contains(bay.Problem, "retired camera") {
		t.Errorf("the retired camera's bay: %+v", bay)
	}
	alert := lastOf(t, p.dock, custody.RetiredDocked)
	if alert.Camera != "BWC-1" || alert.Details["retired"] == "" || alert.Details["inventory_version"] != "3" {
		t.Errorf("RETIRED_DOCKED: %+v", alert)
	}
}

// A dock host still takes a v1 document, as consoles before v2 sign it;
// one that says v1 but carries a history is refused.
func TestInventoryV1StillTaken(t *testing.T) {
	ctx := context.Background()
	p := inventoryPair(t)
	f, err := p.dock.newInventoryFollower()
	if err != nil {
		t.Fatal(err)
	}
	sign := func(text string) []byte {
		n, err := note.Sign(&note.Note{Text: text + "\n"}, p.hq.hostKey().NoteSigner())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	putInventory(t, p.dock, sign(`{"format":"evidenced-inventory/v1","console":"hq","version":1,"published_at":"2026-12-01T00:00:00Z","cameras":[{"serial":"BWC-1","kind":"body","assigned_to":"pc-v1"}]}`))
	p.dock.pollInventory(ctx, f)
	if cam, _ := p.dock.config.Camera("BWC-1"); cam.AssignedTo != "pc-v1" {
		t.Fatalf("a v1 document: BWC-1 issued to %s", cam.AssignedTo)
	}
	putInventory(t, p.dock, sign(`{"format":"evidenced-inventory/v1","console":"hq","version":2,"published_at":"2026-12-01T00:00:00Z","cameras":[{"serial":"BWC-1","kind":"body","assigned_to":"pc-x","assignments":[{"to":"pc-x"}]}]}`))
	p.dock.pollInventory(ctx, f)
	if ev := lastOf(t, p.dock, InventoryRefused); !strings.Contains(ev.Details["problem"], "v1") {
		t.Errorf("a v1 document with a history: %v", ev.Details)
	}
}

// lastOf is s's last record of type typ (fails without one).
func lastOf(t *testing.T, s *Service, typ custody.EventType) custody.Event {
	t.Helper()
	var last *custody.Event
	if err := s.ledger.Events(context.Background(), 0, func(ev custody.Event) error {
		if ev.Type == typ {
			last = &ev
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if last == nil {
		t.Fatalf("no %s record", typ)
	}
	return *last
}

// A camera whose clock runs ahead stamps its files with a time still to
// come; a hand-over the console dated in the future must not claim them.
// Whatever the file time says, a recording docked now was made by now, so
// its holder is resolved at the earlier of its file time and the
// ingest's: BWC-1, handed to pc-2 from tomorrow, recorded today by pc-1
// with its clock two days ahead, is pc-1's.
func TestFutureClockNotResolvedToAHandOverToCome(t *testing.T) {
	ctx := context.Background()
	p := inventoryPair(t)
	publishInventory(t, p, "pc-1")
	now := time.Now().UTC().Truncate(time.Second)
	if _, err := p.hq.AssignInventory(ctx, Caller{Actor: "custodian-1"}, "BWC-1", "pc-2", now.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, cam := takeInventory(t, p)
	file := filepath.Join(cam, "ahead.mp4")
	if err := os.WriteFile(file, []byte("footage from a clock two days ahead"), 0o644); err != nil {
		t.Fatal(err)
	}
	ahead := now.Add(48 * time.Hour)
	if err := os.Chtimes(file, ahead, ahead); err != nil {
		t.Fatal(err)
	}
	rep, err := p.dock.Ingest(ctx, Caller{Actor: "officer"}, IngestOptions{Camera: "BWC-1", From: cam})
	if err != nil || len(rep.Recorded) != 1 {
		t.Fatalf("ingest: %+v %v", rep, err)
	}
	if it := rep.Recorded[0]; it.AssignedTo != "pc-1" || !it.RecordedAt.Equal(ahead) {
		t.Errorf("recorded at %s by a clock ahead, ingested %s: assigned to %s, want pc-1 (pc-2 holds it only from %s)",
			it.RecordedAt, now, it.AssignedTo, now.Add(24*time.Hour))
	}
}

// takeInventory has p's dock host read the console's document once and
// returns its follower and an empty camera folder to ingest from.
func takeInventory(t *testing.T, p invPair) (*inventoryFollower, string) {
	t.Helper()
	f, err := p.dock.newInventoryFollower()
	if err != nil {
		t.Fatal(err)
	}
	p.dock.pollInventory(context.Background(), f)
	cam := filepath.Join(p.root, "cam")
	if err := os.MkdirAll(cam, 0o755); err != nil {
		t.Fatal(err)
	}
	return f, cam
}

// The console publishes no document larger than a dock host reads
// (maxInventory): a CSV within the import's own bound becomes a larger
// JSON document, and an assignment history grows with every hand-over.
// Such a document was stored and recorded as published, every dock host
// then failed to read it (kept the old version, counted as a store that
// does not answer), and the console itself could neither show it nor
// publish over it (each edit starts by reading it). It is refused, naming
// its size, and nothing is stored.
func TestInventoryTooLargeForDocksNotPublished(t *testing.T) {
	ctx := context.Background()
	p := inventoryPair(t)
	var b strings.Builder
	b.WriteString("serial,kind,assigned_to\n")
	holder := strings.Repeat("h", 120)
	for i := 0; b.Len() < maxInventory-300; i++ {
		fmt.Fprintf(&b, "BWC-%060d,body,%s\n", i, holder)
	}
	file := filepath.Join(p.root, "big.csv")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := p.hq.ImportInventory(ctx, Caller{Actor: "custodian-1"}, file)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(fmt.Sprint(err), "bytes") {
		t.Errorf("import of a %d-byte CSV: %+v, %v; want it refused as too large for a dock host", b.Len(), res, err)
	}
	if _, err := p.hq.store.Stat(ctx, InventoryKey("hq"), ""); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("the store holds a document after the refusal: %v", err)
	}
	if _, err := p.hq.ShowInventory(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("show after the refusal: %v, want none published", err)
	}
}

// The inventory's history only grows, and past maxInventory every edit
// is refused: a publication past three quarters of it warns, in its
// result (the command prints it) and in the log, and so does showing the
// document (the web console's Inventory page); the console's metrics show
// the document's size against the bound (the
// EvidencedInventoryNearSizeLimit alert). One below it is quiet.
func TestInventoryNearItsSizeBoundWarns(t *testing.T) {
	ctx := context.Background()
	p := inventoryPair(t)
	var logged bytes.Buffer
	p.hq.log = slog.New(slog.NewTextHandler(&logged, nil))
	who := Caller{Actor: "custodian-1"}
	register := func(n int) string {
		t.Helper()
		var b strings.Builder
		b.WriteString("serial,kind,assigned_to\n")
		for i := range n {
			fmt.Fprintf(&b, "BWC-%060d,body,%s\n", i, strings.Repeat("h", 120))
		}
		file := filepath.Join(p.root, "register.csv")
		if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}
	size := func() string {
		t.Helper()
		if _, err := p.hq.readFleetInventory(ctx); err != nil {
			t.Fatal(err)
		}
		return fleetScrape(t, p.hq, "evidenced_inventory_document_bytes", "evidenced_inventory_document_max_bytes")
	}

	small, err := p.hq.ImportInventory(ctx, who, register(100))
	if err != nil || small.Bytes == 0 || small.Bytes > inventoryWarnAt || small.MaxBytes != maxInventory {
		t.Fatalf("a small import: %+v %v", small, err)
	}
	if small.Warning != "" || strings.Contains(logged.String(), "level=WARN") {
		t.Errorf("a document of %d bytes warns: %q\n%s", small.Bytes, small.Warning, logged.String())
	}
	scraped := func(n int) string {
		return fmt.Sprintf("evidenced_inventory_document_bytes{} %g\nevidenced_inventory_document_max_bytes{} %g", float64(n), float64(maxInventory))
	}
	want := scraped(small.Bytes)
	if got := size(); got != want {
		t.Errorf("metrics after the small import:\n%s\nwant\n%s", got, want)
	}
	if v, err := p.hq.ShowInventory(ctx); err != nil || v.Bytes != small.Bytes || v.Warning != "" {
		t.Errorf("show after the small import: %d bytes, warning %q, %v", v.Bytes, v.Warning, err)
	}

	// About 230 bytes a camera signed: 14,000 cameras are about 77% of
	// maxInventory.
	big, err := p.hq.ImportInventory(ctx, who, register(14000))
	if err != nil {
		t.Fatal(err)
	}
	if big.Bytes <= inventoryWarnAt || big.Bytes > maxInventory {
		t.Fatalf("the larger import is %d bytes; the test wants it between %d and %d", big.Bytes, inventoryWarnAt, maxInventory)
	}
	if !strings.Contains(big.Warning, fmt.Sprintf("%d bytes", big.Bytes)) || !strings.Contains(big.Warning, "Inventory size") {
		t.Errorf("a document of %d bytes (of %d) warns %q", big.Bytes, maxInventory, big.Warning)
	}
	if l := logged.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, fmt.Sprintf("bytes=%d", big.Bytes)) {
		t.Errorf("the log of a document of %d bytes:\n%s", big.Bytes, l)
	}
	want = scraped(big.Bytes)
	if got := size(); got != want {
		t.Errorf("metrics after the larger import:\n%s\nwant\n%s", got, want)
	}
	// What the web console's Inventory page and `inventory show` say.
	if v, err := p.hq.ShowInventory(ctx); err != nil || v.Bytes != big.Bytes || v.Warning != big.Warning {
		t.Errorf("show after the larger import: %d bytes, warning %q, %v; want %d, %q", v.Bytes, v.Warning, err, big.Bytes, big.Warning)
	}
}

// HQ re-imports its asset register daily, and a CSV carries no history:
// the import merges into the document in force. A re-import after an
// assign and a retirement keeps both (a recording made before the
// hand-over still names the officer who had the camera then, the retired
// camera stays retired on the dock host), a camera the register leaves
// out is kept and named, a row that would hand a retired camera to
// someone is refused naming it with nothing published, and a holder the
// register changes becomes a hand-over dated at the import.
func TestInventoryReimportKeepsHistoryAndRetirement(t *testing.T) {
	ctx := context.Background()
	p := inventoryPair(t)
	who := Caller{Actor: "custodian-1"}
	register := func(rows string) string {
		t.Helper()
		file := filepath.Join(p.root, "register.csv")
		if err := os.WriteFile(file, []byte("serial,kind,assigned_to\n"+rows), 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}
	if _, err := p.hq.ImportInventory(ctx, who, register("BWC-1,body,pc-1\nBWC-2,body,pc-7\nBWC-3,body,pc-3\n")); err != nil {
		t.Fatal(err)
	}
	eff := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	if _, err := p.hq.AssignInventory(ctx, who, "BWC-1", "pc-2", eff); err != nil {
		t.Fatal(err)
	}
	if _, err := p.hq.RetireInventory(ctx, who, "BWC-2", eff); err != nil {
		t.Fatal(err)
	}
	// The next day's register: BWC-1 with pc-2, BWC-2 still listed with no
	// retired value, BWC-3 not exported.
	v4, err := p.hq.ImportInventory(ctx, who, register("BWC-1,body,pc-2\nBWC-2,body,pc-7\n"))
	if err != nil || v4.Version != 4 || v4.Cameras != 3 {
		t.Fatalf("re-import: %+v %v", v4, err)
	}
	if c := v4.Change; c["added"] != "0" || c["handed_over"] != "0" || c["newly_retired"] != "0" || c["kept_absent"] != "1" || c["kept_absent_serials"] != "BWC-3" {
		t.Errorf("the re-import's change: %v", c)
	}
	if ev := lastOf(t, p.hq, InventoryPublished); ev.Details["kept_absent_serials"] != "BWC-3" || ev.Details["change"] != "import" {
		t.Errorf("INVENTORY_PUBLISHED: %v", ev.Details)
	}
	f, cam := takeInventory(t, p)
	ingestAround(t, p, cam, eff, "pc-1", "pc-2")
	if c, ok := p.dock.config.Camera("BWC-2"); !ok || c.Published == nil || !c.Published.RetiredAt(time.Now()) {
		t.Errorf("BWC-2 on the dock host after a re-import: %+v (in the inventory %v), want retired", c.Published, ok)
	}
	if c, ok := p.dock.config.Camera("BWC-3"); !ok || c.AssignedTo != "pc-3" {
		t.Errorf("BWC-3, left out of the register: %+v (in the inventory %v), want kept", c, ok)
	}

	// A register that hands the retired camera to someone else.
	if _, err := p.hq.ImportInventory(ctx, who, register("BWC-1,body,pc-2\nBWC-2,body,pc-8\n")); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "BWC-2") {
		t.Errorf("a register un-retiring BWC-2: %v, want refused naming it", err)
	}
	// A register with a new holder: a hand-over at the import.
	before := time.Now().UTC()
	v5, err := p.hq.ImportInventory(ctx, who, register("BWC-1,body,pc-5\nBWC-2,body,pc-7\n"))
	if err != nil || v5.Version != 5 || v5.Change["handed_over"] != "1" || v5.Change["handed_over_serials"] != "BWC-1" {
		t.Fatalf("a register with a new holder: %+v %v", v5, err)
	}
	p.dock.pollInventory(ctx, f)
	c, _ := p.dock.config.Camera("BWC-1")
	h := c.Published.Assignments
	if c.AssignedTo != "pc-5" || len(h) != 3 || h[2].To != "pc-5" || h[2].From.Before(before) || h[1].To != "pc-2" || !h[1].From.Equal(eff) {
		t.Errorf("BWC-1 after the register handed it to pc-5: %s, %+v", c.AssignedTo, h)
	}
}

// ingestAround has p's dock host ingest BWC-1 from cam with two new
// recordings, a minute before eff and a minute after, and checks that
// they name before and after as their holders.
func ingestAround(t *testing.T, p invPair, cam string, eff time.Time, before, after string) {
	t.Helper()
	want := map[string]string{}
	for name, at := range map[string]time.Time{"before.mp4": eff.Add(-time.Minute), "after.mp4": eff.Add(time.Minute)} {
		want[name] = map[string]string{"before.mp4": before, "after.mp4": after}[name]
		file := filepath.Join(cam, name)
		if err := os.WriteFile(file, []byte("footage "+name), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(file, at, at); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := p.dock.Ingest(context.Background(), Caller{Actor: "officer"}, IngestOptions{Camera: "BWC-1", From: cam})
	if err != nil || len(rep.Recorded) != 2 {
		t.Fatalf("ingest: %+v %v", rep, err)
	}
	for _, it := range rep.Recorded {
		if w := want[filepath.Base(it.SourcePath)]; it.AssignedTo != w {
			t.Errorf("%s recorded at %s: assigned to %s, want %s", it.SourcePath, it.RecordedAt, it.AssignedTo, w)
		}
	}
}
