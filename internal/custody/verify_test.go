package custody

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/tlog"
)

// populate builds a small but complete ledger; the record at seq 5 carries a
// marker no other record or item contains.
//
//	1 HOST_STARTED  2 DOCKED BWC-1  3 COPIED a  4 VAULTED a  5 ACCESSED (marker)
//	6 COPIED b  7 VAULTED b  8 UPLOADED a  9 VERIFIED a  10 COPY_FAILED c  11 ACCESSED b
const marker = "MARKER-5-tamper-here"

func populate(f *fixture) {
	f.t.Helper()
	f.append(Event{Type: HostStarted}, nil)
	dock := f.append(Event{Type: Docked, Camera: "BWC-1"}, nil)
	a := newItem("item-a", "BWC-1", "officer-1", t0, dock.Seq)
	f.vault(a)
	f.append(Event{Type: Accessed, Actor: "auditor", Details: map[string]string{"note": marker}}, nil)
	f.vault(newItem("item-b", "BWC-1", "officer-2", t0.Add(time.Hour), dock.Seq))
	a.State = StateUploaded
	f.append(Event{Type: Uploaded, SHA256: a.SHA256}, a)
	a.State = StateVerified
	f.append(Event{Type: Verified, SHA256: a.SHA256}, a)
	f.append(Event{Type: CopyFailed, Item: "item-c"}, nil)
	f.append(Event{Type: Accessed, Item: "item-b", Actor: "investigator"}, nil)
}

func hasProblem(ps []Problem, seq uint64, item, contains string) bool {
	for _, p := range ps {
		if p.Seq == seq && p.Item == item && strings.Contains(p.What, contains) {
			return true
		}
	}
	return false
}

func TestVerifyCleanLedger(t *testing.T) {
	f := newFixture(t)
	if st := f.requireClean(); st.Events != 0 || st.Items != 0 {
		t.Fatalf("empty ledger stats %+v", st)
	}
	populate(f)
	st := f.requireClean()
	if st.Events != 11 || st.Items != 2 {
		t.Fatalf("stats %+v, want 11 events and 2 items", st)
	}
	f.l.chunk = defaultChunk // same answer in one chunk
	if st2 := f.requireClean(); st2 != st {
		t.Fatalf("stats with big chunks %+v, want %+v", st2, st)
	}
}

// TestVerifyFlippedByte flips one byte inside record 5's bytes in the closed
// file. bbolt keeps no checksum of leaf pages, so only the chain can notice.
func TestVerifyFlippedByte(t *testing.T) {
	tests := []struct {
		name   string
		offset int // from the start of the marker
		to     byte
		want   string
	}{
		{"still valid JSON", len("MARKER-"), '6', "was altered"},
		{"breaks JSON", len(marker), '}', "does not decode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			populate(f)
			f.close()
			raw, err := os.ReadFile(f.path)
			if err != nil {
				t.Fatal(err)
			}
			// Stale copies of the leaf page may survive in freed pages;
			// flip every copy so the live one is certainly hit.
			n := 0
			for i := 0; ; {
				j := bytes.Index(raw[i:], []byte(marker))
				if j < 0 {
					break
				}
				raw[i+j+tc.offset] = tc.to
				i += j + len(marker)
				n++
			}
			if n == 0 {
				t.Fatal("marker not found in the file")
			}
			if err := os.WriteFile(f.path, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			f.open(Options{})
			if err := f.l.Check(); err != nil {
				t.Fatalf("bbolt check should not see a data byte: %v", err)
			}
			ps, _ := f.verify()
			if !hasProblem(ps, 5, "", tc.want) {
				t.Fatalf("no problem naming record 5 (%q) in %+v", tc.want, ps)
			}
			for _, p := range ps {
				if p.Seq != 5 {
					t.Errorf("problem about another record: %+v", p)
				}
			}
		})
	}
}

func TestVerifyReportsTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(f *fixture, b bkts) error
		seq    uint64
		item   string
		want   string
	}{
		{"record deleted", func(_ *fixture, b bkts) error { return b.events.Delete(seqKey(5)) },
			5, "", "record 5 is missing"},
		{"records deleted", func(_ *fixture, b bkts) error {
			_ = b.events.Delete(seqKey(5))
			return b.events.Delete(seqKey(6))
		}, 5, "", "records 5 to 6 are missing"},
		{"first record deleted", func(_ *fixture, b bkts) error { return b.events.Delete(seqKey(1)) },
			1, "", "record 1 is missing"},
		{"tail truncated, head kept", func(_ *fixture, b bkts) error { return b.events.Delete(seqKey(11)) },
			11, "", "removed from the tail"},
		{"tail truncated, head rewritten", func(_ *fixture, b bkts) error {
			// Record 11 named item-b; its custody index still lists it.
			if err := b.events.Delete(seqKey(11)); err != nil {
				return err
			}
			_ = b.meta.Put(metaHeadSeq, seqKey(10))
			return b.meta.Put(metaHeadHash, []byte(RecordHash(b.events.Get(seqKey(10)))))
		}, 11, "item-b", "which does not exist"},
		{"head hash rewritten", func(_ *fixture, b bkts) error { return b.meta.Put(metaHeadHash, []byte(GenesisHash)) },
			11, "item-b", "head in v1/meta"},
		{"Merkle tree state of the right size with another root", func(_ *fixture, b bkts) error {
			// What checkpoints and anchors are cut from: a tree over the
			// same number of records, the last leaf not the last record's.
			var leaves []tlog.Hash
			if err := b.events.ForEach(func(_, rec []byte) error {
				leaves = append(leaves, tlog.LeafHash(rec))
				return nil
			}); err != nil {
				return err
			}
			leaves[len(leaves)-1] = tlog.LeafHash([]byte("not a record"))
			var tree tlog.Frontier
			for _, h := range leaves {
				tree.Append(h)
			}
			return b.meta.Put(metaTree, mustFrontier(tree))
		}, 0, "", "is not the tree over the records"},
		{"record appended past head", func(_ *fixture, b bkts) error {
			ev, _ := DecodeRecord(b.events.Get(seqKey(11)))
			ev.Seq, ev.PrevHash, ev.Item = 12, ev.Hash, ""
			rec, err := EncodeRecord(ev)
			if err != nil {
				return err
			}
			return b.events.Put(seqKey(12), rec)
		}, 12, "", "beyond the head"},
		{"record rewritten with valid hash of its own", func(_ *fixture, b bkts) error {
			// A forger re-encodes record 5 properly; record 6 still
			// vouches for the original bytes.
			ev, _ := DecodeRecord(b.events.Get(seqKey(5)))
			ev.Actor = "someone-else"
			rec, err := EncodeRecord(ev)
			if err != nil {
				return err
			}
			return b.events.Put(seqKey(5), rec)
		}, 5, "", "record 5 was altered"},
		{"record moved to another key", func(_ *fixture, b bkts) error {
			return b.events.Put(seqKey(5), b.events.Get(seqKey(4)))
		}, 5, "item-a", "says it is seq 4"},
		{"item sha changed", func(_ *fixture, b bkts) error {
			raw := b.items.Get([]byte("item-a"))
			return b.items.Put([]byte("item-a"), bytes.Replace(raw, []byte(sha("item-a")), []byte(sha("forged")), 1))
		}, 4, "item-a", "VAULTED record 4 has"},
		{"item projection edited", func(_ *fixture, b bkts) error {
			raw := b.items.Get([]byte("item-b"))
			return b.items.Put([]byte("item-b"), bytes.Replace(raw, []byte("officer-2"), []byte("officer-9"), 1))
		}, 7, "item-b", "the item was altered"},
		{"item deleted", func(_ *fixture, b bkts) error { return b.items.Delete([]byte("item-b")) },
			7, "item-b", "record 7 wrote item item-b, which no longer exists"},
		{"item and its indexes deleted", func(_ *fixture, b bkts) error {
			_ = b.items.Delete([]byte("item-b"))
			_ = b.byTime.Delete(timeKey(t0.Add(time.Hour), "item-b"))
			_ = b.byCamera.Bucket([]byte("BWC-1")).Delete(timeKey(t0.Add(time.Hour), "item-b"))
			_ = b.byAssignee.Bucket([]byte("officer-2")).Delete(timeKey(t0.Add(time.Hour), "item-b"))
			return b.itemEvents.DeleteBucket([]byte("item-b"))
		}, 7, "item-b", "record 7 wrote item item-b, which no longer exists"},
		{"custody index entry deleted", func(_ *fixture, b bkts) error {
			return b.itemEvents.Bucket([]byte("item-b")).Delete(seqKey(11))
		}, 11, "item-b", "does not list it"},
		{"custody index points elsewhere", func(_ *fixture, b bkts) error {
			return b.itemEvents.Bucket([]byte("item-c")).Put(seqKey(5), []byte{})
		}, 5, "item-c", "names item \"\""},
		{"camera index entry deleted", func(_ *fixture, b bkts) error {
			return b.byCamera.Bucket([]byte("BWC-1")).Delete(timeKey(t0, "item-a"))
		}, 0, "item-a", "missing from index by_camera/BWC-1"},
		{"camera index entry forged", func(_ *fixture, b bkts) error {
			bk, err := b.byCamera.CreateBucketIfNotExists([]byte("BWC-2"))
			if err != nil {
				return err
			}
			return bk.Put(timeKey(t0, "item-a"), []byte{})
		}, 0, "item-a", "whose camera is \"BWC-1\""},
		{"time index entry moved", func(_ *fixture, b bkts) error {
			_ = b.byTime.Delete(timeKey(t0, "item-a"))
			return b.byTime.Put(timeKey(t0.Add(time.Minute), "item-a"), []byte{})
		}, 0, "item-a", "not its recorded_at"},
		{"dock_seq rewritten", func(_ *fixture, b bkts) error {
			raw := b.items.Get([]byte("item-b"))
			return b.items.Put([]byte("item-b"), bytes.Replace(raw, []byte(`"dock_seq":2`), []byte(`"dock_seq":1`), 1))
		}, 1, "item-b", "which is HOST_STARTED, not DOCKED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			populate(f)
			f.tamper(func(b bkts) error { return tc.tamper(f, b) })
			ps, _ := f.verify()
			if !hasProblem(ps, tc.seq, tc.item, tc.want) {
				t.Fatalf("want a problem {seq %d item %q %q}, got:\n%s", tc.seq, tc.item, tc.want, dump(ps))
			}
		})
	}
}

func dump(ps []Problem) string {
	var sb strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&sb, "  seq %d item %q: %s\n", p.Seq, p.Item, p.What)
	}
	return sb.String()
}

// TestVerifyGarbage stores things no Append could write; Verify must report
// them and carry on, never panic.
func TestVerifyGarbage(t *testing.T) {
	f := newFixture(t)
	populate(f)
	f.tamper(func(b bkts) error {
		steps := []func() error{
			func() error { return b.events.Put([]byte("short"), []byte("x")) },
			func() error { _, err := b.events.CreateBucket(seqKey(50)); return err },
			func() error { return b.events.Put(seqKey(3), []byte("\x00\xff{not json")) },
			func() error { return b.events.Put(seqKey(4), nil) },
			func() error { return b.items.Put([]byte("junk"), []byte(`{"id":"junk","sha256":1}`)) },
			func() error { _, err := b.items.CreateBucket([]byte("nested")); return err },
			func() error { return b.itemEvents.Put([]byte("flat"), []byte("x")) },
			func() error { return b.itemEvents.Bucket([]byte("item-c")).Put([]byte("k"), []byte{}) },
			func() error { return b.byTime.Put([]byte("k"), []byte{}) },
			func() error { return b.byCamera.Put([]byte("flat"), []byte{}) },
			func() error { return b.byAssignee.Bucket([]byte("officer-1")).Put(seqKey(1), []byte{}) },
			func() error { return b.meta.Put(metaHeadSeq, []byte("bad")) },
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return err
			}
		}
		return nil
	})
	ps, st := f.verify()
	for _, want := range []struct {
		seq  uint64
		item string
		what string
	}{
		{0, "", "not an 8-byte sequence number"},
		{0, "", "is a bucket, not a record"},
		{3, "", "record 3 does not decode"},
		{4, "", "record 4 does not decode"},
		{0, "junk", "item junk does not decode"},
		{0, "nested", "is a bucket, not an item"},
		{0, "flat", "v1/item_events key \"flat\" is not a bucket"},
		{0, "item-c", "malformed key"},
		{0, "", "index v1/by_time has a malformed key"},
		{0, "", "v1/by_camera key \"flat\" is not a bucket"},
		{0, "", "index v1/by_assignee/officer-1 has a malformed key"},
		{0, "", "v1/meta head is missing or malformed"},
	} {
		if !hasProblem(ps, want.seq, want.item, want.what) {
			t.Errorf("missing problem {%d %q %q}", want.seq, want.item, want.what)
		}
	}
	if st.Events != 11 {
		t.Errorf("walked %d records, want 11", st.Events)
	}
	if t.Failed() {
		t.Logf("problems:\n%s", dump(ps))
	}
	// Reads of intact records still work on the damaged ledger.
	if _, err := f.l.Item(context.Background(), "item-a"); err != nil {
		t.Errorf("item-a on a damaged ledger: %v", err)
	}
}

func TestVerifyWhileAppending(t *testing.T) {
	f := newFixture(t)
	populate(f)
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 30 {
			it := newItem(fmt.Sprintf("live-%d", i), "BWC-1", "officer-1", t0.Add(time.Duration(i)*time.Second), 2)
			if _, err := f.l.Append(ctx, Event{Type: Vaulted, Actor: "ingest"}, it); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for {
		ps, _ := f.verify()
		for _, p := range ps {
			t.Errorf("problem during concurrent appends: %+v", p)
		}
		select {
		case <-done:
			f.requireClean()
			return
		default:
		}
	}
}

func TestVerifyCancelled(t *testing.T) {
	f := newFixture(t)
	populate(f)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.l.Verify(ctx, nil); err == nil {
		t.Fatal("verify with a cancelled context succeeded")
	}
}
