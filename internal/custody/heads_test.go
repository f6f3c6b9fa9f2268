package custody

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tlog"
)

// rewriteRecord is the attacker with root on the host but without the key:
// it edits record seq's details, then recomputes every later prev_hash,
// the head, the Merkle tree state in v1/meta, and (by dropping them and
// letting a writable Open rebuild them) the stored Merkle nodes and the
// hash over the signatures. The signed tree heads in v1/heads are kept:
// without the key they cannot be re-signed.
func rewriteRecord(t *testing.T, path string, seq uint64) {
	t.Helper()
	rawUpdate(t, path, func(b bkts) error {
		prev := GenesisHash
		var tree tlog.Frontier
		c := b.events.Cursor()
		var keys [][]byte
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			ev, err := DecodeRecord(b.events.Get(k))
			if err != nil {
				return err
			}
			if ev.Seq == seq {
				ev.Details = map[string]string{"note": "rewritten"}
			}
			ev.PrevHash = prev
			rec, err := EncodeRecord(ev)
			if err != nil {
				return err
			}
			if err := b.events.Put(k, rec); err != nil {
				return err
			}
			prev = RecordHash(rec)
			tree.Append(tlog.LeafHash(rec))
		}
		if err := b.meta.Put(metaHeadHash, []byte(prev)); err != nil {
			return err
		}
		return b.meta.Put(metaTree, mustFrontier(tree))
	})
	rebuildNodes(t, path)
}

// rebuildNodes drops the stored nodes and signature hash (not the heads)
// and lets a writable Open rebuild them from what the file holds now.
func rebuildNodes(t *testing.T, path string) {
	t.Helper()
	rawUpdate(t, path, func(b bkts) error {
		if err := b.meta.Tx().Bucket(bucketV1).DeleteBucket(bucketNodes); err != nil {
			return err
		}
		return b.meta.Delete(metaNodesSize)
	})
	l, err := Open(path, Options{Host: testHost})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// verifyFile runs Verify on the file at path (read-only) and returns its
// problems and stats.
func verifyFile(t *testing.T, path string) ([]Problem, VerifyStats) {
	t.Helper()
	l, err := Open(path, Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	var ps []Problem
	st, err := l.Verify(context.Background(), func(p Problem) { ps = append(ps, p) })
	if err != nil {
		t.Fatal(err)
	}
	return ps, st
}

// TestEveryRecordAuthenticated: every record is authenticated by a
// signature that covers it, its own or the signed tree head of its key
// (package documentation, Invariants). A record or signature changed by
// someone without the key fails Verify even when everything derived from
// them (prev_hash chain, head, tree state, stored nodes, signature hash)
// is recomputed, and Verify names exactly what it names when it checks
// every signature on its own (the file with the heads removed).
func TestEveryRecordAuthenticated(t *testing.T) {
	key := newKey(t)
	other := newKey(t)
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, path string)
		seq    uint64
	}{
		{"record rewritten, chain and stored tree recomputed", func(t *testing.T, path string) {
			rewriteRecord(t, path, 6)
		}, 6},
		{"signature swapped, signature hash recomputed", func(t *testing.T, path string) {
			rawUpdate(t, path, func(b bkts) error {
				return b.sigs.Put(seqKey(3), bytes.Clone(b.sigs.Get(seqKey(4))))
			})
			rebuildNodes(t, path)
		}, 3},
		{"record rewritten and its head re-signed by another key", func(t *testing.T, path string) {
			rewriteRecord(t, path, 6)
			rawUpdate(t, path, func(b bkts) error {
				f, err := readTree(b.meta)
				if err != nil {
					return err
				}
				sh := b.meta.Get(metaSigsHash)
				ns, err := signing.NoteSignerFor(testHost, other)
				if err != nil {
					return err
				}
				msg, err := tlog.SignCheckpoint(headText(testHost, f.Size, f.Root(), tlog.Hash(sh[8:])), ns)
				if err != nil {
					return err
				}
				return b.heads.Put(seqKey(1), msg)
			})
		}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSignedFixture(t, key)
			populate(f)
			f.close()
			ps, st := verifyFile(t, f.path)
			if len(ps) != 0 || st.Vouched != st.Signed || st.Signed != st.Events {
				t.Fatalf("before tampering: %d problems, %d signed, %d vouched by the head, %d records\n%s",
					len(ps), st.Signed, st.Vouched, st.Events, dump(ps))
			}
			tc.tamper(t, f.path)
			got, st := verifyFile(t, f.path)
			if !hasProblem(got, tc.seq, "", "signature does not verify with key "+key.KeyID()) {
				t.Fatalf("record %d is not named:\n%s", tc.seq, dump(got))
			}
			if st.Vouched != 0 {
				t.Errorf("%d signatures vouched for by a head that does not check out", st.Vouched)
			}
			// The same file with no heads: every signature checked on its own.
			rawUpdate(t, f.path, dropDerived)
			want, _ := verifyFile(t, f.path)
			if !slices.Equal(got, want) {
				t.Errorf("problems differ from a verify of every signature:\ngot\n%s\nwant\n%s", dump(got), dump(want))
			}
		})
	}
}

// TestSignedHeadAloneIsReported: a damaged signed head or stored node on an
// otherwise sound ledger is a problem (it is not the ledger's state), and
// every signature is then checked on its own.
func TestSignedHeadAloneIsReported(t *testing.T) {
	key := newKey(t)
	for _, tc := range []struct {
		name   string
		tamper func(b bkts) error
		want   string
	}{
		{"head signature flipped", func(b bkts) error {
			h := bytes.Clone(b.heads.Get(seqKey(1)))
			h[len(h)-5] ^= 1
			return b.heads.Put(seqKey(1), h)
		}, "signed tree head in v1/heads of the key in force from record 1"},
		{"head for no key period", func(b bkts) error {
			return b.heads.Put(seqKey(5), bytes.Clone(b.heads.Get(seqKey(1))))
		}, "no HOST_KEY or KEY_ROTATED record introduced"},
		{"stored node changed", func(b bkts) error {
			k, v := b.nodes.Cursor().First()
			v = bytes.Clone(v)
			v[0] ^= 1
			return b.nodes.Put(bytes.Clone(k), v)
		}, "stored Merkle node at level 1, index 0"},
		{"stored node added", func(b bkts) error {
			return b.nodes.Put(seqKey(1<<40), make([]byte, 32))
		}, "beyond the nodes of the records"},
		{"signature hash changed", func(b bkts) error {
			sh := bytes.Clone(b.meta.Get(metaSigsHash))
			sh[20] ^= 1
			return b.meta.Put(metaSigsHash, sh)
		}, "sigs_hash is not the hash over the signatures"},
		{"nodes bucket removed", func(b bkts) error {
			return b.meta.Tx().Bucket(bucketV1).DeleteBucket(bucketNodes)
		}, "incomplete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSignedFixture(t, key)
			populate(f)
			f.close()
			rawUpdate(t, f.path, tc.tamper)
			ps, _ := verifyFile(t, f.path)
			if !hasProblem(ps, 0, "", tc.want) {
				t.Fatalf("no problem %q in\n%s", tc.want, dump(ps))
			}
		})
	}
}

// TestStoredNodeProofs: proofs read from the stored nodes are the RFC 6962
// proofs computed from all the leaves (and golang.org/x/mod/sumdb/tlog
// accepts them), for every size and index of a ledger appended one record
// and several records at a time, and with key rotation; a ledger whose
// nodes were dropped (an older release's file) gets the same nodes back on
// a writable Open.
func TestStoredNodeProofs(t *testing.T) {
	ctx := context.Background()
	k1, k2 := newKey(t), newKey(t)
	f := newSignedFixture(t, k1)
	populate(f)
	f.l.chunk = defaultChunk
	fill(t, f.l, 40, true)
	if _, err := f.l.RotateKey(ctx, k2); err != nil {
		t.Fatal(err)
	}
	f.close()
	f.open(Options{Signer: k2})
	for range 5 {
		f.append(Event{Type: Accessed, Actor: "auditor", Item: "item-a"}, nil)
	}
	var leaves []tlog.Hash
	if err := f.l.Records(ctx, 1, func(_ uint64, rec []byte) error {
		leaves = append(leaves, tlog.LeafHash(rec))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	n := uint64(len(leaves))
	for size := uint64(1); size <= n; size++ {
		root := tlog.RootOf(leaves[:size])
		for i := uint64(0); i < size; i++ {
			got, ok, err := f.l.fromNodes(ctx, size, func(r xtlog.HashReader) ([]xtlog.Hash, error) {
				return xtlog.ProveRecord(int64(size), int64(i), r)
			})
			if err != nil || !ok {
				t.Fatalf("inclusion %d/%d from stored nodes: ok %v, %v", i, size, ok, err)
			}
			want, _ := tlog.InclusionProof(leaves[:size], i)
			if !slices.Equal(got, want) {
				t.Fatalf("inclusion %d/%d differs from the proof over all leaves", i, size)
			}
			p, err := f.l.InclusionProof(ctx, i+1, size)
			if err != nil || !slices.Equal(p.Hashes, want) || tlog.VerifyInclusion(leaves[i], i, size, p.Hashes, root) != nil {
				t.Fatalf("InclusionProof %d/%d: %v", i+1, size, err)
			}
		}
		for old := uint64(1); old < size; old++ {
			p, err := f.l.ConsistencyProof(ctx, old, size)
			want, _ := tlog.ConsistencyProof(leaves[:size], old)
			if err != nil || !slices.Equal(p.Hashes, want) {
				t.Fatalf("ConsistencyProof %d→%d: %v", old, size, err)
			}
			if err := tlog.VerifyConsistency(old, size, tlog.RootOf(leaves[:old]), root, p.Hashes); err != nil {
				t.Fatal(err)
			}
		}
	}
	ps, st := f.verify()
	if len(ps) != 0 || st.Vouched != st.Signed {
		t.Fatalf("%d of %d signatures vouched for by the heads; problems:\n%s", st.Vouched, st.Signed, dump(ps))
	}

	// An older release's file: no nodes, no heads. A writable Open
	// rebuilds the nodes and the signature hash exactly.
	f.close()
	before := derivedDump(t, f.path)
	rawUpdate(t, f.path, dropDerived)
	f.open(Options{})
	f.close()
	after := derivedDump(t, f.path)
	if !bytes.Equal(before.nodes, after.nodes) || !bytes.Equal(before.meta, after.meta) {
		t.Fatalf("rebuilt nodes or meta differ from those Append wrote")
	}
	if len(after.heads) != 0 {
		t.Fatalf("heads appeared without a key")
	}
	f.open(Options{Signer: k2})
	f.append(Event{Type: Accessed, Actor: "auditor", Item: "item-b"}, nil)
	if ps, st := f.verify(); len(ps) != 0 || st.Vouched == 0 {
		t.Fatalf("after the rebuild and one append: %d vouched; problems:\n%s", st.Vouched, dump(ps))
	}
}

type derived struct{ nodes, heads, meta []byte }

func derivedDump(t *testing.T, path string) derived {
	t.Helper()
	var d derived
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	_ = db.View(func(tx *bolt.Tx) error {
		b, err := buckets(tx)
		if err != nil {
			return err
		}
		dumpBucket := func(bk *bolt.Bucket) []byte {
			var out []byte
			if bk != nil {
				_ = bk.ForEach(func(k, v []byte) error { out = append(append(out, k...), v...); return nil })
			}
			return out
		}
		d.nodes, d.heads = dumpBucket(b.nodes), dumpBucket(b.heads)
		d.meta = append(bytes.Clone(b.meta.Get(metaNodesSize)), b.meta.Get(metaSigsHash)...)
		return nil
	})
	return d
}

// TestOlderReleaseAppended: an older release appends without keeping the
// stored nodes, signature hash or head. Verify of such a file reports no
// problem, says so in a Notice and checks the later signatures on their
// own; a flipped signature hash is still caught; a writable Open brings
// the nodes back to the head.
func TestOlderReleaseAppended(t *testing.T) {
	key := newKey(t)
	f := newSignedFixture(t, key)
	populate(f)
	f.close()
	at := derivedDump(t, f.path)
	var atNodes [][2][]byte
	rawUpdate(t, f.path, func(b bkts) error {
		return b.nodes.ForEach(func(k, v []byte) error {
			atNodes = append(atNodes, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
			return nil
		})
	})
	f.open(Options{Signer: key})
	for range 3 {
		f.append(Event{Type: Accessed, Actor: "auditor", Item: "item-a"}, nil)
	}
	f.close()
	head := at.heads // the head as it was: the older release wrote none since
	olderRelease := func(b bkts) error {
		if err := b.meta.Tx().Bucket(bucketV1).DeleteBucket(bucketNodes); err != nil {
			return err
		}
		nodes, err := b.meta.Tx().Bucket(bucketV1).CreateBucket(bucketNodes)
		if err != nil {
			return err
		}
		for _, kv := range atNodes {
			if err := nodes.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
		if err := b.heads.Put(head[:8], head[8:]); err != nil {
			return err
		}
		if err := b.meta.Put(metaNodesSize, at.meta[:8]); err != nil {
			return err
		}
		return b.meta.Put(metaSigsHash, at.meta[8:])
	}
	rawUpdate(t, f.path, olderRelease)
	l, err := Open(f.path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var ps []Problem
	var ns []Notice
	st, err := l.VerifyNotices(context.Background(), func(p Problem) { ps = append(ps, p) }, func(n Notice) { ns = append(ns, n) })
	_ = l.Close()
	if err != nil || len(ps) != 0 {
		t.Fatalf("%v; problems:\n%s", err, dump(ps))
	}
	if len(ns) != 1 || !bytes.Contains([]byte(ns[0].What), []byte("stored Merkle nodes end at record 12")) {
		t.Fatalf("notices: %+v", ns)
	}
	if st.Vouched != 12 || st.Signed != 15 {
		t.Fatalf("%d signed, %d vouched; want 15 and 12", st.Signed, st.Vouched)
	}
	rawUpdate(t, f.path, func(b bkts) error {
		sh := bytes.Clone(b.meta.Get(metaSigsHash))
		sh[30] ^= 1
		return b.meta.Put(metaSigsHash, sh)
	})
	if ps, _ := verifyFile(t, f.path); !hasProblem(ps, 0, "", "sigs_hash is not the hash over the signatures") {
		t.Fatalf("flipped signature hash of a stale ledger not reported:\n%s", dump(ps))
	}
	rawUpdate(t, f.path, olderRelease)
	f.open(Options{})
	if ps, _ := f.verify(); len(ps) != 0 {
		t.Fatalf("after a writable Open:\n%s", dump(ps))
	}
	f.close()
	if d := derivedDump(t, f.path); !bytes.Equal(d.meta[:8], seqKey(15)) {
		t.Fatalf("nodes_size %x after a writable Open, want 15", d.meta[:8])
	}
}
