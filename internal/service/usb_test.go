package service

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/usbdock"
	"github.com/evidenced/evidenced/internal/watch"
	"github.com/evidenced/evidenced/internal/wipe"
)

// usbSession is what one USB dock session left: its DOCKED seq, the
// RETIRED_DOCKED alerts naming it, its VAULTED records, and the bay.
type usbSession struct {
	seq           uint64
	retiredDocked int
	vaulted       []custody.Event
	bay           Bay
}

// sessionOf reads the ledger and the bays for the session serial opened
// with DOCKED seq.
func sessionOf(t *testing.T, s *Service, serial string, seq uint64) usbSession {
	t.Helper()
	ctx := context.Background()
	got := usbSession{seq: seq}
	if err := s.ledger.Events(ctx, 0, func(e custody.Event) error {
		switch {
		case e.Type == custody.RetiredDocked && e.Details["dock_seq"] == strconv.FormatUint(seq, 10):
			got.retiredDocked++
		case e.Type == custody.Vaulted && e.Camera == serial:
			it, err := s.ledger.Item(ctx, e.Item)
			if err != nil {
				return err
			}
			if it.DockSeq == seq {
				got.vaulted = append(got.vaulted, e)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, b := range s.bays.List() {
		if b.Camera == serial {
			got.bay = b
		}
	}
	return got
}

// dockedSeq is the seq of the last DOCKED recorded for serial.
func dockedSeq(t *testing.T, s *Service, serial string) uint64 {
	t.Helper()
	var seq uint64
	if err := s.ledger.Events(context.Background(), 0, func(e custody.Event) error {
		if e.Type == custody.Docked && e.Camera == serial {
			seq = e.Seq
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seq == 0 {
		t.Fatalf("no DOCKED for %s", serial)
	}
	return seq
}

// wipeRefusals is item id's WIPE_REFUSED records.
func wipeRefusals(t *testing.T, s *Service, id string) []custody.Event {
	t.Helper()
	evs, err := s.ledger.Custody(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []custody.Event
	for _, e := range evs {
		if e.Type == custody.WipeRefused {
			out = append(out, e)
		}
	}
	return out
}

// A USB dock session decides once, when the camera appears, whether it is
// retired, and everything that follows agrees with that decision whatever
// inventory is in force when the copy pass runs: RETIRED_DOCKED, each
// VAULTED's never_wipe, the bay's problem once the copy is done, and the
// wipe's refusal. Two cameras arrive under one inventory version, which
// retires BWC-1 and not BWC-2; the next version, taken by the dock host
// before either copy pass, reverses both (BWC-1's retirement dropped,
// BWC-2 retired). BWC-1's session is a retired dock through and through:
// alert, marks, bay, and a wipe refused for good even though the wipe rule
// is back on for it. BWC-2's is an ordinary one: no alert, no mark, a bay
// that is safe to undock, and once a later version lifts the retirement
// again its wipe is not refused for a promise the session never made.
func TestUSBSessionKeepsItsRetirementAcrossInventoryChanges(t *testing.T) {
	ctx := context.Background()
	p := inventoryPair(t)
	dockYAML := "host_id: dock-04\nwipe_after_verify: true\ncameras:\n" +
		"  - {serial: BWC-1, kind: body, assigned_to: officer-local}\n" +
		"  - {serial: BWC-2, kind: body, assigned_to: officer-local}\n" +
		"inventory: {from_console: hq, public_key_file: " + filepath.Join(p.root, "hq.pem") + ", poll: 1s}\n"
	dock := openHost(t, p.srv, p.bucket, filepath.Join(p.root, "dock-04"), dockYAML)
	retiredOn := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f, err := dock.newInventoryFollower()
	if err != nil {
		t.Fatal(err)
	}
	// publish puts a version in force at the dock host retiring the cameras
	// named in retired.
	publish := func(retired ...string) {
		t.Helper()
		if _, err := p.hq.publishNext(ctx, Caller{Actor: "custodian-1"}, func(*inventoryDoc) ([]config.InventoryCamera, map[string]string, error) {
			var cams []config.InventoryCamera
			for _, serial := range []string{"BWC-1", "BWC-2"} {
				c := config.InventoryCamera{Serial: serial, Kind: "body", AssignedTo: "officer-a"}
				for _, r := range retired {
					if r == serial {
						c.Retired = &retiredOn
					}
				}
				cams = append(cams, c)
			}
			return cams, map[string]string{"change": "test"}, nil
		}); err != nil {
			t.Fatal(err)
		}
		dock.pollInventory(ctx, f)
	}
	publish("BWC-1")

	// The cameras as usbdock presents them: each on its own bay of bus 2,
	// its volume (here a folder) readable once Settled is called.
	h := &usbHandler{s: dock, work: ctx}
	docks := map[string]usbdock.Dock{}
	for i, serial := range []string{"BWC-1", "BWC-2"} {
		media := filepath.Join(p.root, "media-"+serial)
		if err := os.MkdirAll(filepath.Join(media, "DCIM"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"A.MP4", "B.MP4"} {
			if err := os.WriteFile(filepath.Join(media, "DCIM", name), []byte(serial+" recording "+name), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		d := usbdock.Dock{Serial: serial, Profile: "test-bwc", Device: usbdock.Device{
			VendorID: 0x1234, ProductID: 0x5678, Serial: serial, Bus: 2, Address: 10 + i, PortPath: []int{i + 1},
		}}
		if !h.Arrived(ctx, d) {
			t.Fatalf("%s not admitted at arrival", serial)
		}
		d.Path = media
		docks[serial] = d
	}
	seqs := map[string]uint64{"BWC-1": dockedSeq(t, dock, "BWC-1"), "BWC-2": dockedSeq(t, dock, "BWC-2")}

	// Before either copy pass, the next version is in force.
	publish("BWC-2")
	if !dock.config.WipePolicy("BWC-1").Enabled || dock.config.WipePolicy("BWC-2").Enabled {
		t.Fatal("the version in force does not reverse the retirements: the checks below prove nothing")
	}
	for _, serial := range []string{"BWC-1", "BWC-2"} {
		h.Settled(ctx, docks[serial])
	}

	var ids []string
	sessions := map[string]usbSession{}
	for serial, seq := range seqs {
		s := sessionOf(t, dock, serial, seq)
		if len(s.vaulted) != 2 {
			t.Fatalf("%s: %d VAULTED in its session %d, want 2 (bay %+v)", serial, len(s.vaulted), seq, s.bay)
		}
		for _, v := range s.vaulted {
			ids = append(ids, v.Item)
		}
		sessions[serial] = s
	}
	// Verified in the store, so that only the wipe rule keeps a camera file.
	if err := dock.uploader.Sync(ctx, ids, 5); err != nil {
		t.Fatal(err)
	}

	// BWC-1: retired at arrival, no longer when its copy ran.
	s := sessions["BWC-1"]
	if s.retiredDocked != 1 {
		t.Errorf("BWC-1: %d RETIRED_DOCKED for its session, want 1", s.retiredDocked)
	}
	for _, v := range s.vaulted {
		if !strings.Contains(v.Details[custody.NeverWipe], retiredOn.Format(time.RFC3339)) {
			t.Errorf("BWC-1: VAULTED %s never_wipe %q, want the retirement RETIRED_DOCKED named", v.Item, v.Details[custody.NeverWipe])
		}
	}
	if s.bay.State != BayProblem || !strings.Contains(s.bay.Problem, "retired camera (since "+retiredOn.Format(time.RFC3339)+")") {
		t.Errorf("BWC-1: bay %s %q, want the retirement as its problem", s.bay.State, s.bay.Problem)
	}
	for _, v := range s.vaulted {
		// Refused now, or already by the upload's verification queueing
		// the wipe: either way for the session's promise, and for good.
		err := dock.wiper.Wipe(ctx, v.Item)
		if !(errors.Is(err, wipe.ErrRefused) || errors.Is(err, wipe.ErrGaveUp)) || !strings.Contains(err.Error(), "never wiped") {
			t.Errorf("BWC-1: wipe of %s: %v, want refused: never wiped", v.Item, err)
		}
		if r := wipeRefusals(t, dock, v.Item); len(r) != 1 || !strings.HasPrefix(r[0].Details["reason"], "never wiped") || r[0].Details["retry"] != "false" {
			t.Errorf("BWC-1: %s WIPE_REFUSED %v, want one, never wiped, not retried", v.Item, r)
		}
		if err := dock.wiper.Wipe(ctx, v.Item); !errors.Is(err, wipe.ErrGaveUp) {
			t.Errorf("BWC-1: second wipe of %s: %v, want given up for good", v.Item, err)
		}
	}

	// BWC-2: not retired at arrival, retired when its copy ran.
	s = sessions["BWC-2"]
	if s.retiredDocked != 0 {
		t.Errorf("BWC-2: %d RETIRED_DOCKED for its session, want none", s.retiredDocked)
	}
	for _, v := range s.vaulted {
		if nw := v.Details[custody.NeverWipe]; nw != "" {
			t.Errorf("BWC-2: VAULTED %s never_wipe %q, yet its session recorded no RETIRED_DOCKED", v.Item, nw)
		}
	}
	if s.bay.State != BaySafe || s.bay.Problem != "" {
		t.Errorf("BWC-2: bay %s %q, want safe to undock, as its session found it in service", s.bay.State, s.bay.Problem)
	}
	// While the retirement is in force the wipe rule is off for it; once a
	// version lifts it, nothing of the session holds the wipe back.
	for _, v := range s.vaulted {
		if err := dock.wiper.Wipe(ctx, v.Item); !errors.Is(err, wipe.ErrNotEnabled) {
			t.Errorf("BWC-2: wipe of %s under a version retiring it: %v, want the wipe rule off", v.Item, err)
		}
	}
	publish()
	for _, v := range s.vaulted {
		err := dock.wiper.Wipe(ctx, v.Item)
		if errors.Is(err, wipe.ErrRefused) || errors.Is(err, wipe.ErrGaveUp) || errors.Is(err, wipe.ErrNotEnabled) {
			t.Errorf("BWC-2: wipe of %s: %v, want no refusal: its session promised nothing", v.Item, err)
		}
		if r := wipeRefusals(t, dock, v.Item); len(r) != 0 {
			t.Errorf("BWC-2: %s WIPE_REFUSED %v, want none", v.Item, r)
		}
	}
	// BWC-1's promise outlasts this version too.
	for _, v := range sessions["BWC-1"].vaulted {
		if err := dock.wiper.Wipe(ctx, v.Item); !errors.Is(err, wipe.ErrGaveUp) {
			t.Errorf("BWC-1: wipe of %s under a later version: %v, want given up for good", v.Item, err)
		}
	}
}

// A dock session on record is closed on record: a camera the inventory
// drops while it is docked (its copy pass goes on with the camera as at
// arrival) still gets its UNDOCKED when it leaves, through the USB bay and
// through a watched folder alike. Before, UNDOCKED followed the inventory
// in force at removal, so such a session was left open in the ledger with
// its footage vaulted. A device that was never in the inventory still gets
// none: its UNKNOWN_DEVICE is its only record.
func TestUndockedClosesASessionTheInventoryDropped(t *testing.T) {
	ctx := context.Background()
	p := inventoryPair(t)
	publishInventory(t, p, "officer-a")
	f, _ := takeInventory(t, p)
	// setListed puts a version in force at the dock host listing BWC-1 or
	// not (BWC-9 keeps the inventory from being empty).
	setListed := func(listed bool) {
		t.Helper()
		if _, err := p.hq.publishNext(ctx, Caller{Actor: "custodian-1"}, func(*inventoryDoc) ([]config.InventoryCamera, map[string]string, error) {
			cams := []config.InventoryCamera{{Serial: "BWC-9", Kind: "body", AssignedTo: "officer-b"}}
			if listed {
				cams = append(cams, config.InventoryCamera{Serial: "BWC-1", Kind: "body", AssignedTo: "officer-a"})
			}
			return cams, map[string]string{"change": "test"}, nil
		}); err != nil {
			t.Fatal(err)
		}
		p.dock.pollInventory(ctx, f)
		if _, ok := p.dock.config.Camera("BWC-1"); ok != listed {
			t.Fatalf("BWC-1 listed %v, want %v", ok, listed)
		}
	}
	media := filepath.Join(p.root, "media", "BWC-1")
	if err := os.MkdirAll(media, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(media, "A.MP4"), []byte("recording a"), 0o644); err != nil {
		t.Fatal(err)
	}
	// undocks is BWC-1's UNDOCKED records by how it was docked.
	undocks := func(serial string) map[string]int {
		t.Helper()
		got := map[string]int{}
		if err := p.dock.ledger.Events(ctx, 0, func(e custody.Event) error {
			if e.Type == custody.Undocked && e.Camera == serial {
				got[e.Details["via"]]++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}

	// USB: dropped between arrival and the copy pass.
	h := &usbHandler{s: p.dock, work: ctx}
	d := usbdock.Dock{Serial: "BWC-1", Profile: "test-bwc", Device: usbdock.Device{
		VendorID: 0x1234, ProductID: 0x5678, Serial: "BWC-1", Bus: 2, Address: 7, PortPath: []int{1},
	}}
	if !h.Arrived(ctx, d) {
		t.Fatal("BWC-1 not admitted at arrival")
	}
	setListed(false)
	d.Path = media
	h.Settled(ctx, d)
	if b := p.dock.bays.List(); len(b) != 1 || b[0].State != BaySafe {
		t.Fatalf("bays after the copy pass: %+v, want BWC-1 safe to undock", b)
	}
	h.Removed(d)
	if got := undocks("BWC-1")["usb"]; got != 1 {
		t.Errorf("USB: %d UNDOCKED for a session opened before the inventory dropped its camera, want 1", got)
	}

	// A watched folder: dropped after the pass, before the folder goes.
	setListed(true)
	dh := &dockHandler{s: p.dock, work: ctx}
	dh.Settled(ctx, watch.Dock{Serial: "BWC-1", Path: media})
	setListed(false)
	dh.Removed(watch.Dock{Serial: "BWC-1", Path: media})
	if got := undocks("BWC-1")["watch"]; got != 1 {
		t.Errorf("watched folder: %d UNDOCKED for a session opened before the inventory dropped its camera, want 1", got)
	}

	// Never in the inventory: no session, no UNDOCKED.
	u := usbdock.Dock{Serial: "STRANGER", Profile: "test-bwc", Device: usbdock.Device{
		VendorID: 0x1234, ProductID: 0x5678, Serial: "STRANGER", Bus: 2, Address: 8, PortPath: []int{2},
	}}
	if h.Arrived(ctx, u) {
		t.Fatal("an unknown device was admitted")
	}
	h.Removed(u)
	dh.Removed(watch.Dock{Serial: "STRANGER", Path: filepath.Join(p.root, "media", "STRANGER")})
	if got := undocks("STRANGER"); len(got) != 0 {
		t.Errorf("UNDOCKED for a device never in the inventory: %v", got)
	}
}
