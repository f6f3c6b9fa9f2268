package custody

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tlog"
)

func newKey(t testing.TB) *signing.Key {
	t.Helper()
	k, err := signing.Generate(testHost)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newSignedFixture is a fixture whose ledger is open with key as Signer.
func newSignedFixture(t testing.TB, key Signer) *fixture {
	t.Helper()
	f := newFixture(t)
	f.close()
	f.open(Options{Host: testHost, Signer: key})
	return f
}

func TestSignedLedger(t *testing.T) {
	key := newKey(t)
	f := newSignedFixture(t, key)
	populate(f)
	evs := f.events()
	if len(evs) != 12 || evs[0].Type != HostKey || evs[1].Type != HostStarted {
		t.Fatalf("want HOST_KEY then the 11 populated events, have %d starting %s", len(evs), evs[0].Type)
	}
	if evs[0].Details["key_id"] != key.KeyID() || evs[0].Details["note_key"] != key.VerifierKey() {
		t.Errorf("HOST_KEY details %v", evs[0].Details)
	}
	ctx := context.Background()
	if err := f.l.Records(ctx, 0, func(seq uint64, rec []byte) error {
		sig, err := f.l.Signature(ctx, seq)
		if err != nil || !ed25519.Verify(key.Public(), rec, sig) {
			t.Errorf("record %d: stored signature does not verify over the record bytes (%v)", seq, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st := f.requireClean()
	if st.Signed != 12 || st.Unsigned != 0 {
		t.Errorf("stats %+v, want 12 signed", st)
	}
	keys, err := f.l.Keys(ctx)
	if err != nil || len(keys) != 1 || keys[0].FromSeq != 1 || keys[0].KeyID != key.KeyID() || keys[0].PublicPEM != string(key.PublicPEM()) {
		t.Fatalf("keys %+v %v", keys, err)
	}

	// Without a signer: readable and verifiable, not appendable.
	f.close()
	f.open(Options{})
	f.requireClean()
	if _, err := f.l.Append(ctx, Event{Type: Accessed, Actor: "x"}, nil); !errors.Is(err, ErrNoSigner) {
		t.Errorf("unsigned append to a signed ledger: %v, want ErrNoSigner", err)
	}
	if _, err := f.l.Checkpoint(ctx); !errors.Is(err, ErrNoSigner) {
		t.Errorf("checkpoint without a key: %v", err)
	}
	// Another key: refused.
	f.close()
	f.open(Options{Signer: newKey(t)})
	if _, err := f.l.Append(ctx, Event{Type: Accessed, Actor: "x"}, nil); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("append with another key: %v, want ErrKeyMismatch", err)
	}
	if _, err := f.l.Checkpoint(ctx); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("checkpoint with another key: %v", err)
	}
	// Read-only with the key: fine.
	f.close()
	f.open(Options{ReadOnly: true, Signer: key})
	if _, err := f.l.Checkpoint(ctx); err != nil {
		t.Errorf("read-only checkpoint: %v", err)
	}
	f.requireClean()
}

func TestVerifyNamesBadSignature(t *testing.T) {
	key := newKey(t)
	tests := []struct {
		name   string
		tamper func(b bkts) error
		seq    uint64
		want   string
	}{
		{"flipped signature", func(b bkts) error {
			sig := bytes.Clone(b.sigs.Get(seqKey(7)))
			sig[10] ^= 1
			return b.sigs.Put(seqKey(7), sig)
		}, 7, "record 7: signature does not verify with key " + key.KeyID()},
		{"signature moved", func(b bkts) error {
			return b.sigs.Put(seqKey(7), bytes.Clone(b.sigs.Get(seqKey(8))))
		}, 7, "record 7: signature does not verify with key"},
		{"signature deleted", func(b bkts) error { return b.sigs.Delete(seqKey(4)) }, 4, "record 4: signature missing"},
		{"signature beyond the head", func(b bkts) error { return b.sigs.Put(seqKey(99), make([]byte, 64)) }, 99, "does not exist"},
		{"second host key", func(b bkts) error { return b.keys.Put(seqKey(5), key.PublicPEM()) }, 5, "no HOST_KEY or KEY_ROTATED record introduced"},
		{"keys index emptied", func(b bkts) error { return b.keys.Delete(seqKey(1)) }, 1, "missing from v1/keys"},
		{"tree state", func(b bkts) error {
			var fr tlog.Frontier
			fr.Append(tlog.LeafHash([]byte("x")))
			return b.meta.Put(metaTree, mustFrontier(fr))
		}, 0, "Merkle tree state in v1/meta"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newSignedFixture(t, key)
			populate(f)
			f.tamper(tc.tamper)
			ps, _ := f.verify()
			if !hasProblem(ps, tc.seq, "", tc.want) {
				t.Fatalf("no problem {%d %q} in\n%s", tc.seq, tc.want, dump(ps))
			}
		})
	}
}

// rewriteWithout is the attacker with root on the host: it deletes record
// drop and rewrites every later record with the seq and prev_hash it would
// have had, the head, the Merkle tree state and the custody index, so every
// hash checks. With key it also re-signs them (an attacker who has the
// key); without, it keeps the old signatures in place.
func rewriteWithout(t testing.TB, path string, drop uint64, key Signer) {
	t.Helper()
	rawUpdate(t, path, func(b bkts) error {
		var recs [][]byte
		c := b.events.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			recs = append(recs, bytes.Clone(v))
		}
		recs = append(recs[:drop-1], recs[drop:]...)
		prev := GenesisHash
		var tree tlog.Frontier
		for i := range recs {
			ev, err := DecodeRecord(recs[i])
			if err != nil {
				return err
			}
			seq := uint64(i + 1)
			ev.Seq, ev.PrevHash = seq, prev
			if recs[i], err = EncodeRecord(ev); err != nil {
				return err
			}
			if err := b.events.Put(seqKey(seq), recs[i]); err != nil {
				return err
			}
			if key != nil {
				sig, _ := key.Sign(recs[i])
				if err := b.sigs.Put(seqKey(seq), sig); err != nil {
					return err
				}
			}
			if ev.Item != "" {
				ie, _ := b.itemEvents.CreateBucketIfNotExists([]byte(ev.Item))
				if err := ie.Put(seqKey(seq), []byte{}); err != nil {
					return err
				}
				if seq >= drop {
					_ = ie.Delete(seqKey(seq + 1))
				}
			}
			prev = RecordHash(recs[i])
			tree.Append(tlog.LeafHash(recs[i]))
		}
		last := uint64(len(recs) + 1)
		if err := b.events.Delete(seqKey(last)); err != nil {
			return err
		}
		if key != nil {
			_ = b.sigs.Delete(seqKey(last))
		} else {
			// Shift nothing: signatures stay under their old seqs, as a
			// key-less attacker cannot make new ones; drop the orphan.
			_ = b.sigs.Delete(seqKey(last))
		}
		if err := b.meta.Put(metaHeadSeq, seqKey(uint64(len(recs)))); err != nil {
			return err
		}
		if err := b.meta.Put(metaHeadHash, []byte(prev)); err != nil {
			return err
		}
		if err := b.meta.Put(metaTree, mustFrontier(tree)); err != nil {
			return err
		}
		return dropDerived(b)
	})
}

// dropDerived is the attacker who knows this release's format: it removes
// the stored Merkle nodes and signed tree heads (which it cannot re-sign
// without the key, and which would give the rewrite away), so the file
// looks like one an older release wrote. Verify then checks every
// signature on its own.
func dropDerived(b bkts) error {
	v1 := b.meta.Tx().Bucket(bucketV1)
	for _, name := range [][]byte{bucketNodes, bucketHeads} {
		if err := v1.DeleteBucket(name); err != nil {
			return err
		}
	}
	for _, k := range [][]byte{metaNodesSize, metaSigsHash} {
		if err := b.meta.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func TestDeletedEventWithRecomputedChain(t *testing.T) {
	key := newKey(t)
	ctx := context.Background()
	// Record 6 is the ACCESSED record with the marker (populate's 5, after HOST_KEY).
	const drop = 6

	t.Run("attacker without the key", func(t *testing.T) {
		f := newSignedFixture(t, key)
		populate(f)
		cp, err := f.l.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		f.close()
		rewriteWithout(t, f.path, drop, nil)
		f.open(Options{})
		ps, _ := f.verify()
		if !hasProblem(ps, drop, "", "record 6: signature does not verify with key "+key.KeyID()) {
			t.Fatalf("the rewritten record is not named:\n%s", dump(ps))
		}
		for _, p := range ps {
			if !strings.Contains(p.What, "signature does not verify") {
				t.Errorf("hashes were recomputed, so only signatures should fail: %+v", p)
			}
		}
		if _, err := f.l.VerifyAgainst(ctx, cp, key.NoteVerifier()); !errors.Is(err, ErrCheckpoint) {
			t.Errorf("VerifyAgainst the earlier checkpoint: %v, want ErrCheckpoint", err)
		}
	})

	t.Run("attacker with the key", func(t *testing.T) {
		f := newSignedFixture(t, key)
		populate(f)
		cp, err := f.l.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		f.close()
		rewriteWithout(t, f.path, drop, key)
		f.open(Options{})
		// Everything on the host is consistent again: only the checkpoint
		// anchored before the rewrite can tell.
		f.requireClean()
		_, err = f.l.VerifyAgainst(ctx, cp, key.NoteVerifier())
		if !errors.Is(err, ErrCheckpoint) {
			t.Fatalf("VerifyAgainst: %v, want ErrCheckpoint", err)
		}
		t.Logf("detected: %v", err)
	})
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTruncatedOrRestoredLedgerFailsCheckpoint(t *testing.T) {
	key := newKey(t)
	ctx := context.Background()
	f := newSignedFixture(t, key)
	populate(f)
	old := filepath.Join(t.TempDir(), "older.db")
	f.close()
	copyFile(t, f.path, old)
	f.open(Options{Signer: key})
	f.append(Event{Type: Accessed, Actor: "investigator", Item: "item-a", Details: map[string]string{"reason": "complaint 7"}}, nil)
	f.append(Event{Type: Undocked, Camera: "BWC-1"}, nil)
	cp, err := f.l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := f.l.VerifyAgainst(ctx, cp, key.NoteVerifier()); err != nil || c.Size != 14 {
		t.Fatalf("the ledger does not reproduce its own checkpoint: %+v %v", c, err)
	}
	other := newKey(t)
	if _, err := f.l.VerifyAgainst(ctx, cp, other.NoteVerifier()); !errors.Is(err, ErrCheckpoint) {
		t.Errorf("checkpoint opened with another key: %v", err)
	}

	// Restore the older copy: every internal check passes, the checkpoint
	// does not.
	f.close()
	copyFile(t, old, f.path)
	f.open(Options{})
	f.requireClean()
	if _, err := f.l.VerifyAgainst(ctx, cp, key.NoteVerifier()); !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), "restored from an older copy") {
		t.Errorf("older copy: %v", err)
	}

	// Truncate the tail and fix the head and tree: same.
	f.close()
	copyFile(t, old, f.path) // 12 records
	rawUpdate(t, f.path, func(b bkts) error {
		var tree tlog.Frontier
		var prev []byte
		for s := uint64(1); s <= 10; s++ {
			rec := b.events.Get(seqKey(s))
			tree.Append(tlog.LeafHash(rec))
			prev = []byte(RecordHash(rec))
		}
		for s := uint64(11); s <= 12; s++ {
			_ = b.events.Delete(seqKey(s))
			_ = b.sigs.Delete(seqKey(s))
		}
		_ = b.itemEvents.Bucket([]byte("item-c")).Delete(seqKey(11))
		_ = b.itemEvents.Bucket([]byte("item-b")).Delete(seqKey(12))
		_ = b.meta.Put(metaHeadSeq, seqKey(10))
		_ = b.meta.Put(metaHeadHash, prev)
		if err := b.meta.Put(metaTree, mustFrontier(tree)); err != nil {
			return err
		}
		return dropDerived(b)
	})
	f.open(Options{})
	f.requireClean()
	if _, err := f.l.VerifyAgainst(ctx, cp, key.NoteVerifier()); !errors.Is(err, ErrCheckpoint) {
		t.Errorf("truncated: %v", err)
	}
}

func TestRotateKey(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	ctx := context.Background()
	f := newSignedFixture(t, k1)
	populate(f) // 1..12
	cp1, err := f.l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.RotateKey(ctx, k1); !errors.Is(err, ErrInvalid) {
		t.Errorf("rotating to the same key: %v", err)
	}
	rot, err := f.l.RotateKey(ctx, k2)
	if err != nil {
		t.Fatal(err)
	}
	if rot.Seq != 13 || rot.Type != KeyRotated || rot.Details["previous_key_id"] != k1.KeyID() || rot.Details["key_id"] != k2.KeyID() {
		t.Fatalf("rotation event %+v", rot)
	}
	after := f.append(Event{Type: Accessed, Actor: "auditor"}, nil)
	rec := recordBytes(t, f, after.Seq)
	sig, _ := f.l.Signature(ctx, after.Seq)
	if !ed25519.Verify(k2.Public(), rec, sig) {
		t.Error("the record after the rotation is not signed by the new key")
	}
	sig, _ = f.l.Signature(ctx, rot.Seq)
	if !ed25519.Verify(k1.Public(), recordBytes(t, f, rot.Seq), sig) {
		t.Error("the rotation is not signed by the old key")
	}
	st := f.requireClean()
	if st.Signed != 14 {
		t.Errorf("stats %+v", st)
	}
	keys, _ := f.l.Keys(ctx)
	if len(keys) != 2 || keys[1].FromSeq != 14 || keys[1].KeyID != k2.KeyID() {
		t.Errorf("keys %+v", keys)
	}
	cp2, err := f.l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.VerifyAgainst(ctx, cp2, k2.NoteVerifier()); err != nil {
		t.Errorf("new checkpoint with the new key: %v", err)
	}
	if _, err := f.l.VerifyAgainst(ctx, cp1, k1.NoteVerifier()); err != nil {
		t.Errorf("old checkpoint with the old key: %v", err)
	}
	if _, err := f.l.VerifyAgainst(ctx, cp2, k1.NoteVerifier()); !errors.Is(err, ErrCheckpoint) {
		t.Errorf("new checkpoint with the old key: %v", err)
	}
	// Reopening with the old key is refused; with the new one, fine.
	f.close()
	f.open(Options{Signer: k1})
	if _, err := f.l.Append(ctx, Event{Type: Accessed, Actor: "x"}, nil); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("old key after rotation: %v", err)
	}
	f.close()
	f.open(Options{Signer: k2})
	f.append(Event{Type: Accessed, Actor: "x"}, nil)
	// A record after the rotation signed with the old key is named.
	f.tamper(func(b bkts) error {
		sig, _ := k1.Sign(b.events.Get(seqKey(15)))
		return b.sigs.Put(seqKey(15), sig)
	})
	ps, _ := f.verify()
	if !hasProblem(ps, 15, "", "record 15: signature does not verify with key "+k2.KeyID()) {
		t.Errorf("old-key signature after rotation not named:\n%s", dump(ps))
	}
}

func recordBytes(t testing.TB, f *fixture, seq uint64) []byte {
	t.Helper()
	var out []byte
	_ = f.l.Records(context.Background(), seq, func(s uint64, rec []byte) error {
		if s == seq {
			out = rec
		}
		return errStop
	})
	if out == nil {
		t.Fatalf("no record %d", seq)
	}
	return out
}

func TestProofsAgainstLedger(t *testing.T) {
	key := newKey(t)
	ctx := context.Background()
	f := newSignedFixture(t, key)
	populate(f)
	head, err := f.l.TreeHead(ctx)
	if err != nil || head.Size != 12 || head.Origin != "evidenced/"+testHost {
		t.Fatalf("tree head %+v %v", head, err)
	}
	for seq := uint64(1); seq <= 12; seq++ {
		for size := seq; size <= 12; size++ {
			p, err := f.l.InclusionProof(ctx, seq, size)
			if err != nil {
				t.Fatal(err)
			}
			root, err := f.l.RootAt(ctx, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Verify(tlog.LeafHash(recordBytes(t, f, seq)), tlog.Hash{}, root); err != nil {
				t.Fatalf("inclusion of %d in %d: %v", seq, size, err)
			}
		}
	}
	for old := uint64(0); old <= 12; old++ {
		p, err := f.l.ConsistencyProof(ctx, old, 0)
		if err != nil {
			t.Fatal(err)
		}
		oldRoot, _ := f.l.RootAt(ctx, old)
		if err := p.Verify(tlog.Hash{}, oldRoot, head.Root); err != nil {
			t.Fatalf("consistency %d to 12: %v", old, err)
		}
	}
	if _, err := f.l.InclusionProof(ctx, 13, 12); !errors.Is(err, tlog.ErrRange) {
		t.Errorf("inclusion beyond the tree: %v", err)
	}
	if _, err := f.l.RootAt(ctx, 13); !errors.Is(err, ErrCheckpoint) {
		t.Errorf("root beyond the head: %v", err)
	}

	// Anchor: since 0, then since 12 after more events.
	a, err := f.l.Anchor(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.Checkpoint.Size != 12 || len(a.Records) != 12 || !bytes.Equal(a.PublicKeyPEM, key.PublicPEM()) {
		t.Fatalf("anchor %+v", a.Checkpoint)
	}
	f.append(Event{Type: Undocked, Camera: "BWC-1"}, nil)
	b, err := f.l.Anchor(ctx, 12)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Records) != 1 || b.Records[0].Seq != 13 || !ed25519.Verify(key.Public(), b.Records[0].Record, b.Records[0].Sig) {
		t.Fatalf("anchor since 12: %+v", b.Records)
	}
	c1, err := tlog.OpenCheckpoint(a.Note, "", key.NoteVerifier())
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := tlog.OpenCheckpoint(b.Note, "", key.NoteVerifier())
	if err := b.Consistency.Verify(tlog.Hash{}, c1.Root, c2.Root); err != nil {
		t.Errorf("anchored consistency proof: %v", err)
	}
	if _, err := f.l.Anchor(ctx, 99); !errors.Is(err, ErrCheckpoint) {
		t.Errorf("anchor since a size beyond the ledger: %v", err)
	}
}

// TestMigrate1to2 opens a schema 1 ledger written by the schema 1 code (see
// testdata/README.md).
func TestMigrate1to2(t *testing.T) {
	ctx := context.Background()
	src, err := os.ReadFile("testdata/ledger-v1.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ledger.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	before := dumpRecords(t, path)
	if len(before) != 7 {
		t.Fatalf("fixture has %d records, want 7", len(before))
	}

	// Read-only: readable and verifiable as schema 1, not migrated.
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var notes []Notice
	st, err := ro.VerifyNotices(ctx, func(p Problem) { t.Errorf("schema 1 read-only problem: %+v", p) }, func(n Notice) { notes = append(notes, n) })
	if err != nil || st.Unsigned != 7 || len(notes) != 2 {
		t.Errorf("read-only v1 verify: %+v %v notices %+v", st, err, notes)
	}
	th, err := ro.TreeHead(ctx)
	if err != nil || th.Size != 7 {
		t.Errorf("tree head of v1: %+v %v", th, err)
	}
	if _, err := ro.Item(ctx, "item-a"); err != nil {
		t.Errorf("read item from v1: %v", err)
	}
	_ = ro.Close()
	if b, _ := os.ReadFile(path); !bytes.Equal(b, src) {
		t.Fatal("a read-only open changed the file")
	}

	// Writable with a key: migrates, then signs from the next record on.
	key := newKey(t)
	l, err := Open(path, Options{Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, path: path, l: l}
	if got := dumpRecordsOpen(t, f); !equalRecords(got, before) {
		t.Fatal("migration changed the records")
	}
	if l.version != 2 {
		t.Fatalf("version %d after migration", l.version)
	}
	th2, err := l.TreeHead(ctx)
	if err != nil || th2.Size != th.Size || th2.Root != th.Root {
		t.Errorf("stored tree head %+v, want the one computed from the v1 records %+v (%v)", th2, th, err)
	}
	notes = nil
	st, err = l.VerifyNotices(ctx, func(p Problem) { t.Errorf("migrated problem: %+v", p) }, func(n Notice) { notes = append(notes, n) })
	if err != nil || st.Unsigned != 7 || st.Signed != 0 || len(notes) != 1 ||
		!strings.Contains(notes[0].What, "records 1 to 7 are unsigned (created before signing, schema v1)") {
		t.Errorf("migrated verify %+v %v %+v", st, err, notes)
	}
	_, headHash, _ := l.Head(ctx)
	ev := f.append(Event{Type: HostStarted}, nil)
	evs := f.events()
	if ev.Seq != 9 || evs[7].Type != HostKey || evs[7].PrevHash != headHash {
		t.Fatalf("after migration: HOST_KEY must be record 8 chaining over the v1 head; have %+v", evs[7])
	}
	notes = nil
	st, err = l.VerifyNotices(ctx, func(p Problem) { t.Errorf("problem: %+v", p) }, func(n Notice) { notes = append(notes, n) })
	if err != nil || st.Unsigned != 7 || st.Signed != 2 || len(notes) != 1 {
		t.Errorf("after first signed append: %+v %v %+v", st, err, notes)
	}
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.VerifyAgainst(ctx, cp, key.NoteVerifier()); err != nil {
		t.Errorf("verify against own checkpoint: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Migrating again is a no-op.
	l, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	if st, err := l.Verify(ctx, func(p Problem) { t.Errorf("reopened: %+v", p) }); err != nil || st.Events != 9 {
		t.Errorf("reopened %+v %v", st, err)
	}
}

func TestMigrate1to2RefusesDamagedLedger(t *testing.T) {
	src, err := os.ReadFile("testdata/ledger-v1.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ledger.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	rawUpdate(t, path, func(b bkts) error { return b.events.Delete(seqKey(3)) })
	damaged, _ := os.ReadFile(path)
	if _, err := Open(path, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("migrating a ledger with a gap: %v, want ErrCorrupt", err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, damaged) {
		t.Error("a refused migration changed the file")
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ro.Close() }()
	var ps []Problem
	if _, err := ro.Verify(context.Background(), func(p Problem) { ps = append(ps, p) }); err != nil || !hasProblem(ps, 3, "", "record 3 is missing") {
		t.Errorf("verify of the damaged v1 ledger: %v\n%s", err, dump(ps))
	}
}

func dumpRecords(t testing.TB, path string) [][]byte {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var out [][]byte
	_ = db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketV1).Bucket(bucketEvents).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			out = append(out, append(bytes.Clone(k), v...))
		}
		return nil
	})
	return out
}

func dumpRecordsOpen(t testing.TB, f *fixture) [][]byte {
	var out [][]byte
	_ = f.l.Records(context.Background(), 0, func(seq uint64, rec []byte) error {
		out = append(out, append(binary.BigEndian.AppendUint64(nil, seq), rec...))
		return nil
	})
	return out
}

func equalRecords(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// RotateKeyBy records who rotated and why, and a caller's details never
// replace the key fields a verifier follows.
func TestRotateKeyBy(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	ctx := context.Background()
	f := newSignedFixture(t, k1)
	populate(f)
	rot, err := f.l.RotateKeyBy(ctx, k2, "custodian", map[string]string{"reason": "yearly", "key_id": "forged", "public_key": "forged", "previous_key_id": "forged", "note_key": "forged"})
	if err != nil {
		t.Fatal(err)
	}
	d := rot.Details
	if rot.Actor != "custodian" || d["reason"] != "yearly" || d["key_id"] != k2.KeyID() || d["previous_key_id"] != k1.KeyID() || d["public_key"] == "forged" || d["note_key"] == "forged" {
		t.Fatalf("rotation event %+v", rot)
	}
	f.append(Event{Type: Accessed, Actor: "auditor"}, nil)
	f.requireClean()
}
