package custody

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/evidenced/evidenced/internal/digest"
)

const testHost = "depot-test-01"

// fixture is one ledger file in a temp dir. Its cleanup runs bbolt's
// consistency check on whatever ledger is open, then on the file itself.
type fixture struct {
	t    testing.TB
	path string
	l    *Ledger
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, path: filepath.Join(t.TempDir(), "ledger.db")}
	f.open(Options{Host: testHost})
	t.Cleanup(func() {
		if f.l != nil {
			f.close()
		}
		l, err := Open(f.path, Options{ReadOnly: true, Timeout: time.Second})
		if err != nil {
			t.Errorf("reopen for final check: %v", err)
			return
		}
		if err := l.Check(); err != nil {
			t.Errorf("bbolt check: %v", err)
		}
		_ = l.Close()
	})
	return f
}

func (f *fixture) open(o Options) {
	f.t.Helper()
	l, err := Open(f.path, o)
	if err != nil {
		f.t.Fatalf("open: %v", err)
	}
	l.chunk = 3 // make every walk cross chunk boundaries
	f.l = l
}

func (f *fixture) close() {
	f.t.Helper()
	if err := f.l.Check(); err != nil {
		f.t.Errorf("bbolt check: %v", err)
	}
	if err := f.l.Close(); err != nil {
		f.t.Errorf("close: %v", err)
	}
	f.l = nil
}

func (f *fixture) reopen() {
	f.t.Helper()
	f.close()
	f.open(Options{Host: testHost})
}

func (f *fixture) append(ev Event, it *Item) Event {
	f.t.Helper()
	if ev.Actor == "" {
		ev.Actor = "evidenced"
	}
	got, err := f.l.Append(context.Background(), ev, it)
	if err != nil {
		f.t.Fatalf("append %s: %v", ev.Type, err)
	}
	return got
}

// tamper edits the closed ledger file directly with bbolt.
func (f *fixture) tamper(fn func(b bkts) error) {
	f.t.Helper()
	if f.l != nil {
		f.close()
	}
	rawUpdate(f.t, f.path, fn)
	f.open(Options{})
}

// rawUpdate edits a closed ledger file with bbolt, bypassing this package.
func rawUpdate(t testing.TB, path string, fn func(b bkts) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := buckets(tx)
		if err != nil {
			return err
		}
		return fn(b)
	}); err != nil {
		t.Fatalf("tamper: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) events() []Event {
	f.t.Helper()
	var out []Event
	if err := f.l.Events(context.Background(), 0, func(ev Event) error {
		out = append(out, ev)
		return nil
	}); err != nil {
		f.t.Fatalf("events: %v", err)
	}
	return out
}

func (f *fixture) verify() ([]Problem, VerifyStats) {
	f.t.Helper()
	var ps []Problem
	st, err := f.l.Verify(context.Background(), func(p Problem) { ps = append(ps, p) })
	if err != nil {
		f.t.Fatalf("verify: %v", err)
	}
	if st.Problems != uint64(len(ps)) {
		f.t.Fatalf("stats say %d problems, fn saw %d", st.Problems, len(ps))
	}
	return ps, st
}

func (f *fixture) requireClean() VerifyStats {
	f.t.Helper()
	ps, st := f.verify()
	for _, p := range ps {
		f.t.Errorf("unexpected problem: %+v", p)
	}
	return st
}

var t0 = time.Date(2025, 3, 14, 6, 0, 0, 0, time.UTC)

func sha(s string) string { return digest.Bytes([]byte(s)).Hex() }

func newItem(id, camera, assignee string, recorded time.Time, dockSeq uint64) *Item {
	return &Item{
		ID: id, Camera: camera, Kind: "video", AssignedTo: assignee,
		SourcePath: "DCIM/100MEDIA/" + id + ".MP4", Size: int64(len(id)) * 1000, SHA256: sha(id),
		RecordedAt: recorded, State: StateVaulted, VaultPath: "/var/lib/evidenced/vault/" + id,
		RetentionClass: "standard", DockSeq: dockSeq,
	}
}

// vault appends the COPIED and VAULTED steps of a new item.
func (f *fixture) vault(it *Item) Event {
	f.t.Helper()
	f.append(Event{Type: Copied, Item: it.ID, Camera: it.Camera, SHA256: it.SHA256}, nil)
	return f.append(Event{Type: Vaulted, Camera: it.Camera}, it)
}

func TestAppendReadRoundTrip(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	dock := f.append(Event{Type: Docked, Camera: "BWC-1", Details: map[string]string{"bay": "2"}}, nil)
	if dock.Seq != 1 || dock.PrevHash != GenesisHash || dock.Host != testHost || dock.At.IsZero() ||
		dock.At.Location() != time.UTC || len(dock.Hash) != 64 {
		t.Fatalf("stored dock event %+v", dock)
	}
	it := newItem("item-a", "BWC-1", "officer-7", t0, dock.Seq)
	vaulted := f.vault(it)
	if vaulted.Seq != 3 || vaulted.Item != "item-a" || vaulted.SHA256 != it.SHA256 || vaulted.ItemHash == "" {
		t.Fatalf("stored vault event %+v", vaulted)
	}

	got := f.events()
	if len(got) != 3 {
		t.Fatalf("%d events, want 3", len(got))
	}
	if !reflect.DeepEqual(got[0], dock) || !reflect.DeepEqual(got[2], vaulted) {
		t.Fatalf("events read back differ:\n%+v\n%+v\nwant\n%+v\n%+v", got[0], got[2], dock, vaulted)
	}
	for i := 1; i < len(got); i++ {
		if got[i].PrevHash != got[i-1].Hash {
			t.Fatalf("event %d prev_hash %s, want %s", got[i].Seq, got[i].PrevHash, got[i-1].Hash)
		}
	}
	seq, head, err := f.l.Head(ctx)
	if err != nil || seq != 3 || head != vaulted.Hash {
		t.Fatalf("head = %d %s %v, want 3 %s", seq, head, err, vaulted.Hash)
	}

	// Records are the exact bytes the hashes cover.
	var n int
	err = f.l.Records(ctx, 2, func(s uint64, rec []byte) error {
		n++
		if RecordHash(rec) != got[s-1].Hash {
			t.Errorf("record %d bytes do not hash to its Hash", s)
		}
		return nil
	})
	if err != nil || n != 2 {
		t.Fatalf("records from 2: %d, %v", n, err)
	}

	stored, err := f.l.Item(ctx, "item-a")
	if err != nil {
		t.Fatal(err)
	}
	want := *it
	want.Host, want.IngestedAt = testHost, vaulted.At
	if !reflect.DeepEqual(stored, want) {
		t.Fatalf("item:\n got %+v\nwant %+v", stored, want)
	}
	if _, err := f.l.Item(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing item: %v", err)
	}
	if st := f.requireClean(); st.Events != 3 || st.Items != 1 {
		t.Fatalf("verify stats %+v", st)
	}
}

func TestAppendKeepsCallerTimeInUTC(t *testing.T) {
	f := newFixture(t)
	at := time.Date(2025, 1, 1, 12, 0, 0, 5, time.FixedZone("SAST", 2*3600))
	ev := f.append(Event{Type: HostStarted, At: at}, nil)
	if !ev.At.Equal(at) || ev.At.Location() != time.UTC {
		t.Fatalf("at = %v, want %v in UTC", ev.At, at)
	}
}

func TestConcurrentAppendKeepsChainContiguous(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	dock := f.append(Event{Type: Docked, Camera: "BWC-1"}, nil)
	const workers, each = 8, 12
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				var err error
				if i%3 == 0 {
					it := newItem(fmt.Sprintf("w%d-i%d", w, i), "BWC-1", "officer-1", t0.Add(time.Duration(i)*time.Minute), dock.Seq)
					_, err = f.l.Append(ctx, Event{Type: Vaulted, Actor: "ingest"}, it)
				} else {
					_, err = f.l.Append(ctx, Event{Type: Accessed, Actor: fmt.Sprintf("user-%d", w),
						Details: map[string]string{"i": fmt.Sprint(i)}}, nil)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	evs := f.events()
	if len(evs) != 1+workers*each {
		t.Fatalf("%d events, want %d", len(evs), 1+workers*each)
	}
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
		if i > 0 && ev.PrevHash != evs[i-1].Hash {
			t.Fatalf("seq %d does not link to seq %d", ev.Seq, evs[i-1].Seq)
		}
	}
	if st := f.requireClean(); st.Items != workers*((each+2)/3) {
		t.Fatalf("verify checked %d items", st.Items)
	}
}

func TestReopenContinuesChain(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.append(Event{Type: HostStarted}, nil)
	last := f.append(Event{Type: Docked, Camera: "BWC-9"}, nil)
	f.close()
	f.open(Options{}) // the stored host id is used
	if f.l.Host() != testHost {
		t.Fatalf("host %q after reopen", f.l.Host())
	}
	seq, head, err := f.l.Head(ctx)
	if err != nil || seq != 2 || head != last.Hash {
		t.Fatalf("head after reopen %d %s %v", seq, head, err)
	}
	next := f.append(Event{Type: Undocked, Camera: "BWC-9"}, nil)
	if next.Seq != 3 || next.PrevHash != last.Hash || next.Host != testHost {
		t.Fatalf("event after reopen %+v", next)
	}
	f.requireClean()
}

func TestOpenLockedReturnsErrLocked(t *testing.T) {
	f := newFixture(t)
	_, err := Open(f.path, Options{Host: testHost, Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !errors.Is(err, bolterrors.ErrTimeout) {
		t.Fatalf("second open: %v, want ErrLocked wrapping bbolt's timeout", err)
	}
	// A reader cannot share the file with the writer either.
	_, err = Open(f.path, Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("read-only open beside writer: %v, want ErrLocked", err)
	}
}

func TestReadOnly(t *testing.T) {
	f := newFixture(t)
	f.append(Event{Type: HostStarted}, nil)
	f.close()
	f.open(Options{ReadOnly: true})
	other, err := Open(f.path, Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("two readers: %v", err)
	}
	defer other.Close()
	if _, err := f.l.Append(context.Background(), Event{Type: HostStarted, Actor: "x"}, nil); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("append read-only: %v", err)
	}
	if seq, _, err := f.l.Head(context.Background()); err != nil || seq != 1 {
		t.Fatalf("head read-only: %d %v", seq, err)
	}
	f.requireClean()
}

func TestOpenRefuses(t *testing.T) {
	f := newFixture(t)
	f.close()
	if _, err := Open(f.path, Options{Host: "depot-other"}); !errors.Is(err, ErrHostMismatch) {
		t.Errorf("other host: %v, want ErrHostMismatch", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "new.db"), Options{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("create without host: %v, want ErrInvalid", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "absent.db"), Options{ReadOnly: true}); err == nil {
		t.Errorf("read-only open of a missing file succeeded")
	}
	rawUpdate(t, f.path, func(b bkts) error { return b.meta.Put(metaVersion, seqKey(schemaVersion+1)) })
	if _, err := Open(f.path, Options{}); !errors.Is(err, ErrSchema) {
		t.Errorf("schema %d: %v, want ErrSchema", schemaVersion+1, err)
	}
	rawUpdate(t, f.path, func(b bkts) error { return b.meta.Put(metaVersion, seqKey(schemaVersion)) })
	f.open(Options{})
	f.requireClean()
}

func TestAppendRefusesInvalid(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	dock := f.append(Event{Type: Docked, Camera: "BWC-1"}, nil)
	access := f.append(Event{Type: Accessed, Item: "item-a"}, nil)
	f.vault(newItem("item-a", "BWC-1", "officer-1", t0, dock.Seq))

	changed := func(edit func(*Item)) *Item {
		it := newItem("item-a", "BWC-1", "officer-1", t0, dock.Seq)
		edit(it)
		return it
	}
	tests := []struct {
		name string
		ev   Event
		item *Item
	}{
		{"invalid UTF-8 actor", Event{Type: Accessed, Actor: "user\xff"}, nil},
		{"invalid UTF-8 camera", Event{Type: Docked, Actor: "a", Camera: "BWC\xc3"}, nil},
		{"invalid UTF-8 item", Event{Type: Accessed, Actor: "a", Item: "it\xfe"}, nil},
		{"invalid UTF-8 detail key", Event{Type: Accessed, Actor: "a", Details: map[string]string{"\xff": "x"}}, nil},
		{"invalid UTF-8 detail value", Event{Type: Refused, Actor: "a", Details: map[string]string{"path": "DCIM/\x80.MP4"}}, nil},
		{"invalid UTF-8 source path", Event{Type: Vaulted, Actor: "a"}, newItemWith("item-b", func(it *Item) { it.SourcePath = "DCIM/\xe9t\xe9.MP4" })},
		{"invalid UTF-8 assignee", Event{Type: Vaulted, Actor: "a"}, newItemWith("item-b", func(it *Item) { it.AssignedTo = "\xff" })},
		{"noncharacter", Event{Type: Accessed, Actor: "a\uFDD0"}, nil},
		{"empty actor", Event{Type: Accessed}, nil},
		{"bad type", Event{Type: "accessed", Actor: "a"}, nil},
		{"item created by non-VAULTED", Event{Type: Copied, Actor: "a"}, newItem("item-b", "BWC-1", "", t0, dock.Seq)},
		{"event names another item", Event{Type: Vaulted, Actor: "a", Item: "item-c"}, newItem("item-b", "BWC-1", "", t0, dock.Seq)},
		{"VAULTED sha differs from item", Event{Type: Vaulted, Actor: "a", SHA256: sha("other")}, newItem("item-b", "BWC-1", "", t0, dock.Seq)},
		{"sha256 changed", Event{Type: Accessed, Actor: "a"}, changed(func(it *Item) { it.SHA256 = sha("x") })},
		{"size changed", Event{Type: Accessed, Actor: "a"}, changed(func(it *Item) { it.Size++ })},
		{"recorded_at changed", Event{Type: Accessed, Actor: "a"}, changed(func(it *Item) { it.RecordedAt = t0.Add(time.Second) })},
		{"uploaded without UPLOADED", Event{Type: UploadFailed, Actor: "a"}, changed(func(it *Item) { it.State = StateUploaded })},
		{"unknown state", Event{Type: Accessed, Actor: "a"}, changed(func(it *Item) { it.State = "lost" })},
		{"bad item sha", Event{Type: Vaulted, Actor: "a"}, newItemWith("item-b", func(it *Item) { it.SHA256 = "abc" })},
		{"dock_seq not DOCKED", Event{Type: Vaulted, Actor: "a"}, newItem("item-b", "BWC-1", "", t0, access.Seq)},
		{"dock_seq missing", Event{Type: Vaulted, Actor: "a"}, newItem("item-b", "BWC-1", "", t0, 99)},
		{"dock of another camera", Event{Type: Vaulted, Actor: "a"}, newItem("item-b", "BWC-2", "", t0, dock.Seq)},
		{"UPLOADED sha differs from vaulted item", Event{Type: Uploaded, Actor: "a", Item: "item-a", SHA256: sha("y")}, nil},
	}
	seq0, head0, _ := f.l.Head(ctx)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if ev, err := f.l.Append(ctx, tc.ev, tc.item); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Append = %+v, %v; want ErrInvalid", ev, err)
			}
		})
	}
	if seq, head, _ := f.l.Head(ctx); seq != seq0 || head != head0 {
		t.Fatalf("refused appends moved the head from %d to %d", seq0, seq)
	}
	if _, err := f.l.Item(ctx, "item-b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused item was stored: %v", err)
	}
	f.requireClean()
}

func newItemWith(id string, edit func(*Item)) *Item {
	it := newItem(id, "BWC-1", "officer-1", t0, 0)
	edit(it)
	return it
}

func TestItemLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	dock := f.append(Event{Type: Docked, Camera: "BWC-1"}, nil)
	it := newItem("item-a", "BWC-1", "officer-1", t0, dock.Seq)
	f.vault(it)

	it.State, it.ObjectKey, it.VersionID = StateUploaded, "bwc/item-a", "v1"
	f.append(Event{Type: Uploaded, SHA256: it.SHA256}, it)
	it.State = StateVerified
	f.append(Event{Type: Verified, SHA256: it.SHA256}, it)
	// Reassignment moves the item between by_assignee buckets.
	it.AssignedTo = "officer-2"
	f.append(Event{Type: "REASSIGNED", Actor: "custodian-1"}, it)

	got, err := f.l.Item(ctx, "item-a")
	if err != nil || got.State != StateVerified || got.AssignedTo != "officer-2" || got.VersionID != "v1" {
		t.Fatalf("item %+v, %v", got, err)
	}
	for who, want := range map[string]int{"officer-1": 0, "officer-2": 1} {
		var n int
		if err := f.l.Items(ctx, Filter{AssignedTo: who}, func(Item) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("items assigned to %s: %d, want %d", who, n, want)
		}
	}
	f.requireClean()
}

func TestCustody(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.append(Event{Type: HostStarted}, nil)
	dockA := f.append(Event{Type: Docked, Camera: "BWC-A"}, nil)
	dockB := f.append(Event{Type: Docked, Camera: "BWC-B"}, nil)
	a := newItem("item-a", "BWC-A", "officer-1", t0, dockA.Seq)
	b := newItem("item-b", "BWC-B", "officer-2", t0, dockB.Seq)
	f.append(Event{Type: Copied, Item: "item-a", SHA256: a.SHA256}, nil)
	f.append(Event{Type: Copied, Item: "item-b", SHA256: b.SHA256}, nil)
	f.append(Event{Type: Vaulted}, b)
	f.append(Event{Type: Vaulted}, a)
	f.append(Event{Type: SafeToUndock, Camera: "BWC-A"}, nil)
	f.append(Event{Type: Accessed, Actor: "investigator-3", Item: "item-a", Details: map[string]string{"reason": "complaint 42"}}, nil)
	f.append(Event{Type: Accessed, Actor: "investigator-3", Item: "item-b"}, nil)
	f.append(Event{Type: CopyFailed, Item: "item-c", Details: map[string]string{"error": "short read"}}, nil)

	tests := []struct {
		id    string
		seqs  []uint64
		types []EventType
	}{
		{"item-a", []uint64{2, 4, 7, 9}, []EventType{Docked, Copied, Vaulted, Accessed}},
		{"item-b", []uint64{3, 5, 6, 10}, []EventType{Docked, Copied, Vaulted, Accessed}},
		{"item-c", []uint64{11}, []EventType{CopyFailed}}, // never vaulted: no item, no dock
	}
	for _, tc := range tests {
		evs, err := f.l.Custody(ctx, tc.id)
		if err != nil {
			t.Fatalf("custody %s: %v", tc.id, err)
		}
		var seqs []uint64
		var types []EventType
		for _, ev := range evs {
			seqs, types = append(seqs, ev.Seq), append(types, ev.Type)
		}
		if !slices.Equal(seqs, tc.seqs) || !slices.Equal(types, tc.types) {
			t.Errorf("custody %s = %v %v, want %v %v", tc.id, seqs, types, tc.seqs, tc.types)
		}
	}
	if _, err := f.l.Custody(ctx, "item-z"); !errors.Is(err, ErrNotFound) {
		t.Errorf("custody of unknown item: %v", err)
	}
	f.requireClean()
}

func TestItemsFilters(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d1 := f.append(Event{Type: Docked, Camera: "BWC-1"}, nil).Seq
	d2 := f.append(Event{Type: Docked, Camera: "BWC-2"}, nil).Seq
	h := time.Hour
	items := []*Item{
		newItem("e", "BWC-1", "officer-1", t0.Add(2*h), d1),
		newItem("a", "BWC-1", "officer-1", t0, d1),
		newItem("b", "BWC-2", "officer-2", t0, d2), // same time as a: ID breaks the tie
		newItem("c", "BWC-2", "officer-2", t0.Add(h), d2),
		newItem("d", "BWC-1", "officer-2", t0.Add(h), d1),
		newItem("f", "BWC-2", "", t0.Add(3*h), d2),
		newItem("z", "BWC-2", "officer-1", time.Time{}, d2), // camera without a clock
	}
	for _, it := range items {
		f.vault(it)
	}
	up := newItem("c", "BWC-2", "officer-2", t0.Add(h), d2)
	up.State = StateUploaded
	f.append(Event{Type: Uploaded}, up)

	tests := []struct {
		name string
		f    Filter
		want string
	}{
		{"all by time", Filter{}, "zabcdef"},
		{"camera", Filter{Camera: "BWC-1"}, "ade"},
		{"camera 2", Filter{Camera: "BWC-2"}, "zbcf"},
		{"unknown camera", Filter{Camera: "BWC-404"}, ""},
		{"assignee", Filter{AssignedTo: "officer-2"}, "bcd"},
		{"camera and assignee", Filter{Camera: "BWC-1", AssignedTo: "officer-2"}, "d"},
		{"since inclusive", Filter{Since: t0.Add(h)}, "cdef"},
		{"until exclusive", Filter{Until: t0.Add(h)}, "zab"},
		{"window", Filter{Since: t0.Add(h), Until: t0.Add(2 * h)}, "cd"},
		{"window and camera", Filter{Camera: "BWC-2", Since: t0.Add(time.Minute), Until: t0.Add(4 * h)}, "cf"},
		{"state", Filter{States: []State{StateUploaded}}, "c"},
		{"states", Filter{States: []State{StateVaulted, StateVerified}}, "zabdef"},
		{"nothing", Filter{Since: t0.Add(4 * h)}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			err := f.l.Items(ctx, tc.f, func(it Item) error { got += it.ID; return nil })
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("items = %q, want %q", got, tc.want)
			}
		})
	}

	stop := errors.New("stop")
	var n int
	if err := f.l.Items(ctx, Filter{}, func(Item) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("fn error: %v after %d items", err, n)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := f.l.Items(cancelled, Filter{}, func(Item) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	f.requireClean()
}

// Finding 6: `verify` on a deleted ledger created a new one and said OK.
// With MustExist, Open names the missing file and creates nothing.
func TestMustExistCreatesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	if _, err := Open(path, Options{Host: "h", MustExist: true}); !errors.Is(err, ErrNoLedger) || !strings.Contains(err.Error(), "no ledger at "+path) {
		t.Fatalf("Open of a missing ledger: %v, want ErrNoLedger naming the path", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the ledger file was created: %v", err)
	}
	l, err := Open(path, Options{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	l, err = Open(path, Options{Host: "h", MustExist: true})
	if err != nil {
		t.Fatalf("MustExist on an existing ledger: %v", err)
	}
	l.Close()
}
