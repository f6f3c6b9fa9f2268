package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/service"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// Issue #13, the inventory edited at the console: a spreadsheet's CSV
// imported, a pooled camera handed to another officer from a time, a
// camera retired, each the next signed version a running dock host takes
// within its poll. The next dock of the reassigned camera names the new
// officer (DOCKED, with the entry and version that said so), while a
// recording made before the hand-over still names the officer who held the
// camera then; the retired camera's footage is ingested but never wiped,
// and its dock is a RETIRED_DOCKED alert. show --json reads the same
// version back at the console (verified) and on the dock host.
func TestInventoryAssignE2E(t *testing.T) {
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	const poll = time.Second
	root := t.TempDir()
	manual := filepath.Join(root, "manual")
	if err := os.MkdirAll(manual, 0o755); err != nil {
		t.Fatal(err)
	}
	hqPEM := filepath.Join(root, "hq.pem")
	dock := newFleetHost(t, srv, bucket, "dock-01", fmt.Sprintf(`cameras:
  - {serial: BWC-0001, kind: body, assigned_to: officer-local}
  - {serial: BWC-0002, kind: body, assigned_to: officer-local}
sources: {manual: [%s]}
wipe_after_verify: true
inventory: {from_console: hq, public_key_file: %s, poll: %s}
`, manual, hqPEM, poll))
	console := newFleetHost(t, srv, bucket, "hq", fmt.Sprintf("role: console\nconsole:\n  hosts:\n    - {id: dock-01, public_key_file: %s}\n", dock.publicKey()))
	pem, err := os.ReadFile(console.publicKey())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hqPEM, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	stopDock := dock.daemon()
	accepted := func(v uint64) {
		t.Helper()
		waitFor(t, fmt.Sprintf("version %d accepted", v), poll+10*time.Second, func() bool {
			return strings.Contains(dock.logs.String(), fmt.Sprintf(`msg="inventory accepted" object=_inventory/hq/inventory.note version=%d`, v))
		})
	}
	edit := func(args ...string) service.InventoryPublication {
		t.Helper()
		var res service.InventoryPublication
		if err := json.Unmarshal([]byte(console.must(append([]string{"inventory", "--json"}, args...)...)), &res); err != nil {
			t.Fatal(err)
		}
		return res
	}

	// A spreadsheet export: byte order mark, CRLF, a quoted field.
	csv := filepath.Join(root, "cameras.csv")
	if err := os.WriteFile(csv, []byte("\ufeffserial,kind,assigned_to\r\nBWC-0001,body,\"officer-a\"\r\nBWC-0002,body,officer-r\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if v1 := edit("import", csv); v1.Version != 1 || v1.Cameras != 2 {
		t.Fatalf("import: %+v", v1)
	}
	accepted(1)

	handOver := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	v2 := edit("assign", "BWC-0001", "officer-b", "--effective", handOver.Format(time.RFC3339))
	if v2.Version != 2 || v2.Change["from"] != "officer-a" || v2.Change["to"] != "officer-b" {
		t.Fatalf("assign: %+v", v2)
	}
	if code, _, errs := run(t, nil, "inventory", "--config", console.cfg, "assign", "BWC-0404", "officer-b"); code != 2 || !strings.Contains(errs, "BWC-0404") {
		t.Errorf("assign an unknown camera: exit %d, want 2 naming it: %s", code, errs)
	}
	var shown service.InventoryView
	if err := json.Unmarshal([]byte(console.must("inventory", "show", "--json")), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Version != 2 || shown.SHA256 != v2.SHA256 || shown.PublishedAt == nil || !strings.Contains(shown.Source, v2.VersionID) ||
		len(shown.Cameras) != 2 || len(shown.Cameras[0].Assignments) != 2 || !shown.Cameras[0].Assignments[1].From.Equal(handOver) {
		t.Errorf("show at the console: %+v", shown)
	}
	accepted(2)

	// One recording made before the hand-over, one after.
	cam1 := filepath.Join(manual, "BWC-0001")
	writeCamera(t, cam1, map[string]int{"DCIM/BEFORE.MP4": 8 << 10, "DCIM/AFTER.MP4": 8 << 10})
	for name, at := range map[string]time.Time{"BEFORE.MP4": handOver.Add(-10 * time.Minute), "AFTER.MP4": time.Now()} {
		if err := os.Chtimes(filepath.Join(cam1, "DCIM", name), at, at); err != nil {
			t.Fatal(err)
		}
	}
	dock.must("ingest", "--camera", "BWC-0001", "--from", cam1)
	items := dock.findJSON("--camera", "BWC-0001")
	if len(items) != 2 {
		t.Fatalf("BWC-0001's items: %+v", items)
	}
	for _, it := range items {
		want := map[string]string{"DCIM/BEFORE.MP4": "officer-a", "DCIM/AFTER.MP4": "officer-b"}[it.SourcePath]
		if it.AssignedTo != want {
			t.Errorf("%s recorded at %s: assigned to %q, want %q", it.SourcePath, it.RecordedAt, it.AssignedTo, want)
		}
	}
	var evs []custody.Event
	if err := json.Unmarshal([]byte(dock.must("custody", "--json", items[0].ID)), &evs); err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Type == custody.Docked && (ev.Details["assigned_to"] != "officer-b" || ev.Details["assignment"] != "assignments[1]" || ev.Details["inventory_version"] != "2") {
			t.Errorf("DOCKED: %v", ev.Details)
		}
	}
	if _, err := os.Stat(filepath.Join(cam1, "DCIM", "AFTER.MP4")); err == nil {
		t.Fatal("a camera in service was not wiped: the wipe rule is not on, and the retired camera below proves nothing")
	}

	v3 := edit("retire", "BWC-0002")
	if v3.Version != 3 || v3.Change["serial"] != "BWC-0002" {
		t.Fatalf("retire: %+v", v3)
	}
	accepted(3)
	if err := json.Unmarshal([]byte(dock.must("inventory", "show", "--json")), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Version != 3 || shown.SHA256 != v3.SHA256 || shown.Cameras[1].Retired == nil || !strings.HasPrefix(shown.Source, "_inventory/hq/inventory.note@") {
		t.Errorf("show on the dock host: %+v", shown)
	}
	cam2 := filepath.Join(manual, "BWC-0002")
	writeCamera(t, cam2, map[string]int{"DCIM/LAST.MP4": 8 << 10})
	dock.must("ingest", "--camera", "BWC-0002", "--from", cam2)
	if items := dock.findJSON("--camera", "BWC-0002"); len(items) != 1 || items[0].State != custody.StateVerified {
		t.Errorf("the retired camera's footage: %+v", items)
	}
	if _, err := os.Stat(filepath.Join(cam2, "DCIM", "LAST.MP4")); err != nil {
		t.Errorf("a retired camera was wiped: %v", err)
	}

	stopDock()
	l, err := custody.Open(filepath.Join(dock.dir, "state", "ledger.db"), custody.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var alerts, wiped []string
	if err := l.Events(context.Background(), 0, func(ev custody.Event) error {
		switch ev.Type {
		case custody.RetiredDocked:
			alerts = append(alerts, ev.Camera+" "+ev.Details["retired"]+" v"+ev.Details["inventory_version"])
		case custody.Wiped, custody.WipeStarted:
			wiped = append(wiped, ev.Camera)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 || !strings.HasPrefix(alerts[0], "BWC-0002 "+v3.Change["retired"]) || !strings.HasSuffix(alerts[0], " v3") {
		t.Errorf("RETIRED_DOCKED records: %q (retired %s)", alerts, v3.Change["retired"])
	}
	for _, c := range wiped {
		if c == "BWC-0002" {
			t.Errorf("wipe records for the retired camera: %q", wiped)
		}
	}
}
