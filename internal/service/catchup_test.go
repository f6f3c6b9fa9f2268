package service

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/facts"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
	"github.com/evidenced/evidenced/internal/sidecar"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/testutil/sidecarfile"
)

// A console restarted after a GPS log was docked, uploaded and anchored
// while it was down parses that log, and only it, from the store: the
// real catalog is the step's journal. A restart with nothing new looks at
// no item.
func TestConsoleRestartParsesWhatCameWhileDown(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := memstore.New()
	key, err := signing.Generate("dock-01")
	if err != nil {
		t.Fatal(err)
	}
	dock, err := custody.Open(filepath.Join(dir, "dock.db"), custody.Options{Host: "dock-01", Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	defer dock.Close()
	at := time.Date(2026, 12, 3, 19, 0, 0, 0, time.UTC)
	ingest := func(path string) string {
		t.Helper()
		data := []byte(sidecarfile.RMC(at.Add(time.Minute), -33.9249, 18.4241) + "\r\n")
		sum := digest.Bytes(data)
		app := func(ev custody.Event, it *custody.Item) custody.Event {
			t.Helper()
			ev.Actor, ev.Camera = "evidenced@dock-01", "CAR-0001"
			out, err := dock.Append(ctx, ev, it)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		docked := app(custody.Event{Type: custody.Docked, Details: map[string]string{"kind": "vehicle", "assigned_to": "car-17"}}, nil)
		id := custody.ItemID("CAR-0001", path, int64(len(data)), at)
		copied := app(custody.Event{Type: custody.Copied, Item: id, SHA256: sum.Hex(), Details: map[string]string{
			"source_path": path, "size": strconv.Itoa(len(data)), "recorded_at": at.Format(time.RFC3339Nano),
			"dock_seq": strconv.FormatUint(docked.Seq, 10)}}, nil)
		it := &custody.Item{ID: id, Camera: "CAR-0001", Kind: "vehicle", AssignedTo: "car-17", SourcePath: path, Size: int64(len(data)),
			SHA256: sum.Hex(), RecordedAt: at, State: custody.StateVaulted, RetentionClass: "uncategorized", DockSeq: docked.Seq}
		app(custody.Event{Type: custody.Vaulted, Item: id, SHA256: sum.Hex(), Details: map[string]string{
			"copied_seq": strconv.FormatUint(copied.Seq, 10), "vault_path": "/vault/" + id}}, it)
		res, err := st.Put(ctx, objstore.PutRequest{Key: "evidence/" + id, Body: bytes.NewReader(data), Size: int64(len(data)), SHA256: sum})
		if err != nil {
			t.Fatal(err)
		}
		it.State, it.ObjectKey, it.VersionID = custody.StateUploaded, "evidence/"+id, res.VersionID
		app(custody.Event{Type: custody.Uploaded, Item: id, SHA256: sum.Hex(), Details: map[string]string{
			"key": it.ObjectKey, "version_id": it.VersionID}}, it)
		if _, err := anchor.Anchor(ctx, dock, st, "dock-01", time.Now().Add(time.Hour), anchor.Options{}); err != nil {
			t.Fatal(err)
		}
		return id
	}

	cat, err := catalog.Open(filepath.Join(dir, "catalog.db"), st, []catalog.Trusted{{ID: "dock-01", Key: key.Public()}}, catalog.Options{Self: "hq"})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	hq, err := custody.Open(filepath.Join(dir, "ledger.db"), custody.Options{Host: "hq"})
	if err != nil {
		t.Fatal(err)
	}
	defer hq.Close()
	x, err := facts.Open(filepath.Join(dir, "facts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	s := &Service{catalog: cat, store: st, ledger: hq}
	looked := 0
	start := func() []facts.Outcome {
		t.Helper()
		if _, err := cat.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		looked = 0
		c := countingLedger{Ledger: consoleLedger{s}, n: &looked}
		step := &facts.Step{Index: x, Actor: "evidenced@hq", Ledger: countingJournal{countingLedger: c, Journal: consoleLedger{s}}, Open: s.openStored,
			Profile: func(string) sidecar.Profile {
				return sidecar.Profile{Rules: []sidecar.Rule{{Glob: "GPS/*.nmea", Kind: sidecar.KindNMEA}}}
			}}
		outs, err := step.CatchUp(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return outs
	}

	first := ingest("GPS/0001.nmea")
	if outs := start(); len(outs) != 1 || outs[0].Item != first || outs[0].Failed != "" {
		t.Fatalf("first start: %+v", outs)
	}
	late := ingest("GPS/0002.nmea") // while the console was down
	if outs := start(); len(outs) != 1 || outs[0].Item != late || outs[0].Failed != "" || looked != 1 {
		t.Fatalf("restart after a log came in: %+v, %d items looked at", outs, looked)
	}
	if src, have, err := x.Source(late); !have || err != nil || src.Facts != 1 {
		t.Errorf("the late log in the index: %+v %v %v", src, have, err)
	}
	if outs := start(); len(outs) != 0 || looked != 0 {
		t.Errorf("restart with nothing new: %+v, %d items looked at", outs, looked)
	}
}
