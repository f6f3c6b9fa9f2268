package ingest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/vault"
)

func testConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(`host_id: unit
state_dir: /tmp/unused
retention:
  default_class: uncategorized
  classes:
    - {name: uncategorized, days: 90, mode: GOVERNANCE}
cameras:
  - {serial: BWC-0001, kind: body, assigned_to: officer-1}
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

type fixture struct {
	in     *Ingester
	ledger *custody.Ledger
	vault  *vault.Vault
	cam    string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	l, err := custody.Open(filepath.Join(dir, "ledger.db"), custody.Options{Host: "unit"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Check(); err != nil {
			t.Errorf("ledger check: %v", err)
		}
		l.Close()
	})
	v, err := vault.Open(filepath.Join(dir, "vault"), nil, vault.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cam := filepath.Join(dir, "cam")
	os.MkdirAll(filepath.Join(cam, "DCIM"), 0o755)
	return &fixture{in: New(testConfig(t), l, v, nil), ledger: l, vault: v, cam: cam}
}

func (f *fixture) write(t *testing.T, rel string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.cam, rel), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// appendOnProgress grows the file being copied at its first progress report:
// a recording still being written while it is copied.
type appendOnProgress struct {
	path string
	done bool
}

func (a *appendOnProgress) Start(string, int, int64) {}
func (a *appendOnProgress) Done(string, Result)      {}
func (a *appendOnProgress) File(_, rel string, _, _ int64) {
	if a.done || !strings.HasSuffix(a.path, rel) {
		return
	}
	a.done = true
	f, _ := os.OpenFile(a.path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("more"))
	f.Close()
}

func TestFileChangedDuringCopyIsNotVaulted(t *testing.T) {
	f := newFixture(t)
	big := make([]byte, 8<<20)
	f.write(t, "DCIM/GROWING.MP4", big)
	f.write(t, "DCIM/STILL.MP4", []byte("still"))
	p := &appendOnProgress{path: filepath.Join(f.cam, "DCIM/GROWING.MP4")}
	res, err := f.in.Dock(context.Background(), Request{Serial: "BWC-0001", Root: f.cam, Actor: "t", Via: "test"}, p)
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("dock of a growing file: %v, want ErrIncomplete", err)
	}
	if !p.done {
		t.Fatal("the test did not manage to change the file during the copy")
	}
	if res.Vaulted != 1 || len(res.Failed) != 1 || !strings.Contains(res.Failed[0].Reason, "changed") || res.SafeToUndock {
		t.Fatalf("result %+v: want 1 vaulted, the growing file failed as changed, not safe to undock", res)
	}
	// Retried on the next pass, now that it is quiet: vaulted with its new content.
	res, err = f.in.Dock(context.Background(), Request{Serial: "BWC-0001", Root: f.cam, Actor: "t", Via: "test"}, nil)
	if err != nil || res.Vaulted != 1 || res.AlreadyHeld != 1 || !res.SafeToUndock {
		t.Fatalf("second pass: %+v, %v", res, err)
	}
	want := digest.Bytes(append(big, "more"...)).Hex()
	var found bool
	f.ledger.Items(context.Background(), custody.Filter{}, func(it custody.Item) error {
		if it.SourcePath == "DCIM/GROWING.MP4" {
			found = it.SHA256 == want && it.Size == int64(len(big)+4)
		}
		return nil
	})
	if !found {
		t.Error("the grown file was not vaulted with its final content")
	}
}

// TestArriveThenDock: a USB source records DOCKED when the camera appears
// (with the device identity) and the copy pass, later, continues that
// session: one DOCKED, and every later record points at it.
func TestArriveThenDock(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.write(t, "DCIM/A.MP4", []byte("recording"))
	req := Request{Serial: "BWC-0001", Root: "usb:2-1", Actor: "daemon", Via: "usb",
		Identity: map[string]string{"bay": "2-1", "usb_id": "1209:0001"}}
	sess, err := f.in.Arrive(ctx, req)
	seq := sess.Seq()
	if err != nil || seq == 0 {
		t.Fatalf("Arrive = %d, %v", seq, err)
	}
	req.Root, req.Session = f.cam, sess
	res, err := f.in.Dock(ctx, req, nil)
	if err != nil || res.DockSeq != seq || res.Vaulted != 1 || !res.SafeToUndock {
		t.Fatalf("Dock = %+v, %v; want the session of seq %d, one file vaulted", res, err, seq)
	}
	var docked []custody.Event
	var safe custody.Event
	if err := f.ledger.Events(ctx, 0, func(e custody.Event) error {
		switch e.Type {
		case custody.Docked:
			docked = append(docked, e)
		case custody.SafeToUndock:
			safe = e
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(docked) != 1 {
		t.Fatalf("%d DOCKED records, want 1", len(docked))
	}
	if d := docked[0].Details; d["bay"] != "2-1" || d["usb_id"] != "1209:0001" || d["assigned_to"] != "officer-1" || d["host_time"] == "" || d["clock_synced"] == "" {
		t.Errorf("DOCKED details %v: want the bay, the device id, the inventory entry and the clock state", d)
	}
	if safe.Details["dock_seq"] != strconv.FormatUint(seq, 10) {
		t.Errorf("SAFE_TO_UNDOCK dock_seq %q, want %d", safe.Details["dock_seq"], seq)
	}
}

// TestArriveUnknown: a serial not in the inventory is recorded as such,
// with what the source knows of the device, and opens no session.
func TestArriveUnknown(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sess, err := f.in.Arrive(ctx, Request{Serial: "STRANGER", Root: "usb:3-1", Actor: "daemon", Via: "usb", Identity: map[string]string{"bay": "3-1"}})
	if !errors.Is(err, ErrUnknownDevice) || sess.Seq() != 0 {
		t.Fatalf("Arrive = %d, %v; want ErrUnknownDevice", sess.Seq(), err)
	}
	var got []custody.Event
	f.ledger.Events(ctx, 0, func(e custody.Event) error { got = append(got, e); return nil })
	last := got[len(got)-1]
	if last.Type != custody.UnknownDevice || last.Details["bay"] != "3-1" {
		t.Errorf("last record %s %v; want UNKNOWN_DEVICE naming the bay", last.Type, last.Details)
	}
}

// admitter records what each dock asked for and refuses while refuse is set.
type admitter struct {
	needs  []uint64
	refuse error
}

func (a *admitter) AdmitDock(_ context.Context, _, _, _, _ string, need uint64) error {
	a.needs = append(a.needs, need)
	return a.refuse
}

// startCounter counts the copy passes that started.
type startCounter struct{ n int }

func (c *startCounter) Start(string, int, int64)     { c.n++ }
func (c *startCounter) File(_, _ string, _, _ int64) {}
func (c *startCounter) Done(string, Result)          {}

// TestAdmissionSeesTheWalk: admission is decided on the dock's own walk,
// before the session opens: it is told the bytes not yet held, a refusal
// leaves no record of ingest's and copies nothing, and an admitted dock
// copies what the same walk listed.
func TestAdmissionSeesTheWalk(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := &admitter{refuse: errors.New("no room")}
	f.in.Admit(a)
	f.write(t, "DCIM/A.MP4", []byte("0123456789"))
	f.write(t, "DCIM/B.MP4", []byte("abcdefg"))
	req := Request{Serial: "BWC-0001", Root: f.cam, Actor: "t", Via: "watch"}
	p := &startCounter{}
	res, err := f.in.Dock(ctx, req, p)
	if !errors.Is(err, ErrNotAdmitted) || !errors.Is(err, a.refuse) || err.Error() != "no room" {
		t.Fatalf("refused dock: %v, want ErrNotAdmitted wrapping the refusal as is", err)
	}
	if res.DockSeq != 0 || res.Vaulted != 0 || p.n != 0 {
		t.Errorf("refused dock: %+v, %d copy passes started", res, p.n)
	}
	if seq, _, err := f.ledger.Head(ctx); err != nil || seq != 0 {
		t.Errorf("a refused dock left the ledger at seq %d (%v); the refusal is the Admitter's to record", seq, err)
	}
	// A session its source opened at arrival (USB) keeps that DOCKED and
	// nothing more.
	usb := req
	usb.Via = "usb"
	sess, err := f.in.Arrive(ctx, usb)
	if err != nil {
		t.Fatal(err)
	}
	seq := sess.Seq()
	usb.Session = sess
	if res, err := f.in.Dock(ctx, usb, p); !errors.Is(err, ErrNotAdmitted) || res.DockSeq != seq {
		t.Fatalf("refused USB dock: %+v %v", res, err)
	}
	if head, _, _ := f.ledger.Head(ctx); head != seq {
		t.Errorf("a refused USB dock wrote past its DOCKED (seq %d, head %d)", seq, head)
	}
	a.refuse = nil
	if res, err := f.in.Dock(ctx, req, p); err != nil || res.Vaulted != 2 || p.n != 1 {
		t.Fatalf("admitted dock: %+v %v", res, err)
	}
	f.write(t, "DCIM/C.MP4", []byte("12345"))
	if res, err := f.in.Dock(ctx, req, nil); err != nil || res.Vaulted != 1 || res.AlreadyHeld != 2 {
		t.Fatalf("re-dock: %+v %v", res, err)
	}
	if want := []uint64{17, 17, 17, 5}; !slices.Equal(a.needs, want) {
		t.Errorf("admission was asked for %v bytes, want %v (only what is not yet held)", a.needs, want)
	}
}
