package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A spreadsheet's CSV is taken as exported: a byte order mark, CRLF line
// ends, quoted fields (a comma inside), columns in any order and case, an
// optional retired column.
func TestParseInventoryCSV(t *testing.T) {
	data := "\ufeffKind,Serial,assigned_to,retired\r\n" +
		"body,BWC-1,\"Smith, J (PC-1021)\",\r\n" +
		"vehicle,CAR-7,car-7,2026-12-01T06:00:00Z\r\n"
	cams, err := ParseInventory([]byte(data), "fleet-export.txt") // detected by its header
	if err != nil {
		t.Fatal(err)
	}
	if len(cams) != 2 || cams[0].Serial != "BWC-1" || cams[0].AssignedTo != "Smith, J (PC-1021)" || cams[0].Retired != nil ||
		cams[1].Kind != KindVehicle || cams[1].Retired == nil || !cams[1].Retired.Equal(mustTime(t, "2026-12-01T06:00:00Z")) {
		t.Fatalf("%+v", cams)
	}
	for _, tc := range []struct{ name, data, want string }{
		{"bad kind on line 3", "serial,kind,assigned_to\nBWC-1,body,a\nBWC-2,drone,b\n", "inv.csv:3: camera \"BWC-2\": kind"},
		{"bad retired", "serial,kind,assigned_to,retired\nBWC-1,body,a,yesterday\n", "inv.csv:2: camera BWC-1: retired"},
		{"twice", "serial,kind,assigned_to\r\nBWC-1,body,a\r\nbwc-1,body,b\r\n", "inv.csv:3: serial: \"bwc-1\" is already listed at line 2"},
		{"short row", "serial,kind,assigned_to\nBWC-1,body\n", "inv.csv:2:"},
		{"unknown column", "serial,kind,assigned_to,usb_id\n", "inv.csv:1: column 4: unknown column \"usb_id\""},
		{"no assigned_to column", "serial,kind\nBWC-1,body\n", "inv.csv:1: no assigned_to column"},
		{"no rows", "serial,kind,assigned_to\n", "inv.csv:1: no cameras"},
		{"bare quote", "serial,kind,assigned_to\nBWC-1,body,a\"b\n", "inv.csv:2:"},
		{"empty", "", "inv.csv:1: empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseInventory([]byte(tc.data), "/x/inv.csv")
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error with %q, got %v", tc.want, err)
			}
		})
	}
}

// The v2 document's history is checked strictly, each error naming the
// serial and the field.
func TestInventoryHistoryChecked(t *testing.T) {
	ok := "cameras:\n  - serial: BWC-1\n    kind: body\n    assigned_to: pc-2\n    retired: 2026-12-10T00:00:00Z\n" +
		"    assignments:\n      - {to: pc-1}\n      - {to: pc-2, from: 2026-12-01T06:00:00Z}\n"
	cams, err := ParseInventory([]byte(ok), "inv.yaml")
	if err != nil || len(cams[0].Assignments) != 2 || cams[0].Retired == nil {
		t.Fatalf("%+v %v", cams, err)
	}
	for _, tc := range []struct{ name, hist, want string }{
		{"out of order", "      - {to: pc-1, from: 2026-12-02T00:00:00Z}\n      - {to: pc-2, from: 2026-12-01T00:00:00Z}\n", "assignments[1].from"},
		{"same time twice", "      - {to: pc-1, from: 2026-12-01T00:00:00Z}\n      - {to: pc-2, from: 2026-12-01T00:00:00Z}\n", "assignments[1].from"},
		{"a later one undated", "      - {to: pc-1, from: 2026-12-01T00:00:00Z}\n      - {to: pc-2}\n", "only the first"},
		{"no holder", "      - {from: 2026-12-01T00:00:00Z}\n", "assignments[0].to"},
		// A history that starts dated says nothing of who held the camera
		// before: such a recording resolved to assigned_to, the holder at
		// publication, who by the same history only had it later.
		{"first dated", "      - {to: pc-1, from: 2026-12-01T00:00:00Z}\n      - {to: pc-2, from: 2026-12-02T00:00:00Z}\n", "assignments[0].from"},
		{"after retirement", "      - {to: pc-1}\n      - {to: pc-2, from: 2026-12-10T00:00:00Z}\n", "at or after its retirement"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := "cameras:\n  - serial: BWC-1\n    kind: body\n    assigned_to: pc-2\n    retired: 2026-12-10T00:00:00Z\n    assignments:\n" + tc.hist
			_, err := ParseInventory([]byte(data), "inv.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "BWC-1") {
				t.Fatalf("want an error naming BWC-1 and %q, got %v", tc.want, err)
			}
		})
	}
}

// A recording belongs to whoever held the camera when it recorded; the
// dock host resolves by time from the published history, and a camera the
// console retires is never wiped, even when the host's cameras: says so.
func TestPublishedHistoryResolvesByTime(t *testing.T) {
	c := mustParse(t, inventoryDock)
	c.EnableReload()
	retired := mustTime(t, "2026-12-20T00:00:00Z")
	c.SetPublished(&Published{Console: "hq", Version: 4, Cameras: []InventoryCamera{
		{Serial: "BWC-1", Kind: KindBody, AssignedTo: "pc-2", Assignments: []Assignment{
			{To: "pc-1"}, {To: "pc-2", From: mustTime(t, "2026-12-01T06:00:00Z")}, {To: "pc-3", From: mustTime(t, "2026-12-02T06:00:00Z")},
		}},
		{Serial: "BWC-LOCAL", Kind: KindBody, AssignedTo: "pc-9", Retired: &retired},
	}})
	cam, ok := c.Camera("BWC-1")
	if !ok || cam.InventoryVersion != 4 {
		t.Fatalf("%+v %v", cam, ok)
	}
	for _, tc := range []struct{ at, who, which string }{
		{"2026-11-30T00:00:00Z", "pc-1", "assignments[0]"},
		{"2026-12-01T05:59:59Z", "pc-1", "assignments[0]"},
		{"2026-12-01T06:00:00Z", "pc-2", "assignments[1]"},
		{"2026-12-05T00:00:00Z", "pc-3", "assignments[2]"},
	} {
		if who, which := cam.AssignedAt(mustTime(t, tc.at)); who != tc.who || which != tc.which {
			t.Errorf("at %s: %s (%s), want %s (%s)", tc.at, who, which, tc.who, tc.which)
		}
	}
	local, _ := c.Camera("BWC-LOCAL")
	if local.RetiredAt(retired.Add(-time.Second)) || !local.RetiredAt(retired) {
		t.Error("retirement not in force from its time on")
	}
	c2 := mustParse(t, strings.Replace(inventoryDock, "assigned_to: officer-l}", "assigned_to: officer-l, wipe_after_verify: true}", 1))
	if !c2.WipePolicy("BWC-LOCAL").Enabled {
		t.Fatal("the host's own rule does not wipe BWC-LOCAL: the test proves nothing")
	}
	c2.EnableReload()
	c2.SetPublished(&Published{Console: "hq", Version: 4, Cameras: []InventoryCamera{{Serial: "BWC-LOCAL", Kind: KindBody, AssignedTo: "pc-9", Retired: &retired}}})
	if c2.WipePolicy("BWC-LOCAL").Enabled {
		t.Error("a retired camera is wiped")
	}
	if fromList, _ := c2.Camera("BWC-LOCAL"); fromList.Published == nil {
		t.Error("the published entry does not ride with the camera")
	}
	plain := mustParse(t, inventoryDock)
	if cam, _ := plain.Camera("BWC-1"); func() bool { w, which := cam.AssignedAt(time.Now()); return w != "officer-a" || which != "" }() {
		t.Error("a camera of cameras: resolves other than its assigned_to")
	}
}
