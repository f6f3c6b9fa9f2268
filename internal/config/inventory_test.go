package config

import (
	"strings"
	"testing"
	"time"
)

// inventoryDock is a dock host that takes its console's inventory.
const inventoryDock = minimal + `object_store: {bucket: evidence}
cameras:
  - {serial: BWC-1, kind: body, assigned_to: officer-a, usb_id: "1209:0001", wipe_after_verify: true}
  - {serial: BWC-LOCAL, kind: body, assigned_to: officer-l}
sources:
  usb:
    profiles:
      - {name: cam, vendor_id: "1209", product_id: "0001", recordings: [DCIM]}
inventory:
  from_console: hq
  public_key_file: keys/hq.pem
`

func TestInventoryConfig(t *testing.T) {
	c := mustParse(t, inventoryDock)
	if in := c.Inventory; in == nil || in.Poll.Duration != time.Minute || in.PublicKeyFile != "/etc/evidenced/keys/hq.pem" || in.FromConsole != "hq" {
		t.Fatalf("inventory: %+v", c.Inventory)
	}
	if mustParse(t, minimal).Inventory != nil {
		t.Error("inventory set without the section")
	}
	for _, tc := range []struct{ name, yml, key string }{
		{"no console", strings.Replace(inventoryDock, "  from_console: hq\n", "", 1), "inventory.from_console"},
		{"self", strings.Replace(inventoryDock, "from_console: hq", "from_console: dock-01", 1), "inventory.from_console"},
		{"no key", strings.Replace(inventoryDock, "  public_key_file: keys/hq.pem\n", "", 1), "inventory.public_key_file"},
		{"poll too short", inventoryDock + "  poll: 10ms\n", "inventory.poll"},
		{"poll too long", inventoryDock + "  poll: 2h\n", "inventory.poll"},
		{"unknown key", inventoryDock + "  console_key: /k.pem\n", "inventory.console_key"},
		{"no store", strings.Replace(inventoryDock, "object_store: {bucket: evidence}\n", "", 1), "object_store"},
		{"at a console", consoleMinimal + "inventory: {from_console: hq2, public_key_file: /k.pem}\n", "inventory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yml), "/etc/evidenced/evidenced.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("want an error naming %s, got %v", tc.key, err)
			}
		})
	}
}

// Once a console's inventory is in force it decides which cameras dock and
// to whom they are issued; the host's own keys of a camera stay its own.
func TestPublishedInventoryDecides(t *testing.T) {
	c := mustParse(t, inventoryDock)
	c.EnableReload()
	if cam, ok := c.Camera("BWC-1"); !ok || cam.AssignedTo != "officer-a" {
		t.Fatalf("before publication: %+v %v", cam, ok)
	}
	c.SetPublished(&Published{Console: "hq", Version: 2, Cameras: []InventoryCamera{
		{Serial: "BWC-1", Kind: KindBody, AssignedTo: "officer-b"},
		{Serial: "BWC-NEW", Kind: KindVehicle, AssignedTo: "car-9"},
	}})
	cam, ok := c.Camera("BWC-1")
	if !ok || cam.AssignedTo != "officer-b" || cam.USBID == nil || cam.WipeAfterVerify == nil || !*cam.WipeAfterVerify {
		t.Errorf("BWC-1: want the console's assignment with the host's usb_id and wipe key, got %+v %v", cam, ok)
	}
	if cam, ok := c.Camera("BWC-NEW"); !ok || cam.Kind != KindVehicle || cam.AssignedTo != "car-9" {
		t.Errorf("a camera only the console lists: %+v %v", cam, ok)
	}
	if _, ok := c.Camera("BWC-LOCAL"); ok {
		t.Error("a camera the console's inventory leaves out still docks")
	}
	if c.WipePolicy("BWC-NEW").Enabled {
		t.Error("a camera only the console lists is wiped")
	}
}

func TestParseInventory(t *testing.T) {
	cams, err := ParseInventory([]byte("cameras:\n  - {serial: BWC-1, kind: body, assigned_to: officer-b}\n"), "inv.yaml")
	if err != nil || len(cams) != 1 || cams[0].AssignedTo != "officer-b" {
		t.Fatalf("%+v %v", cams, err)
	}
	for name, data := range map[string]string{
		"empty":        "cameras: []\n",
		"host key":     "cameras:\n  - {serial: BWC-1, kind: body, assigned_to: a, usb_id: '1209:0001'}\n",
		"bad kind":     "cameras:\n  - {serial: BWC-1, kind: drone, assigned_to: a}\n",
		"twice":        "cameras:\n  - {serial: BWC-1, kind: body, assigned_to: a}\n  - {serial: bwc-1, kind: body, assigned_to: b}\n",
		"no officer":   "cameras:\n  - {serial: BWC-1, kind: body}\n",
		"not a serial": "cameras:\n  - {serial: '../x', kind: body, assigned_to: a}\n",
	} {
		if _, err := ParseInventory([]byte(data), "inv.yaml"); err == nil || !strings.Contains(err.Error(), "inv.yaml") {
			t.Errorf("%s: want an error naming the file, got %v", name, err)
		}
	}
}
