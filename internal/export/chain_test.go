package export

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/tlog"
)

// rewrittenLedger serves an unsigned ledger as someone who edited its file
// would leave it: record seq's prev_hash pointed elsewhere, and the Merkle
// tree recomputed over the edited records. Nothing signs an unsigned ledger,
// so every record then has a valid inclusion proof in the package and the
// manifest is right: only the prev_hash chain shows the edit.
type rewrittenLedger struct {
	*custody.Ledger
	recs   map[uint64][]byte
	leaves []tlog.Hash
	head   tlog.Checkpoint
}

func rewriteChain(t *testing.T, l *custody.Ledger, seq uint64) *rewrittenLedger {
	t.Helper()
	ctx := context.Background()
	r := &rewrittenLedger{Ledger: l, recs: map[uint64][]byte{}}
	var leaves []tlog.Hash
	err := l.Records(ctx, 1, func(s uint64, rec []byte) error {
		rec = bytes.Clone(rec)
		if s == seq {
			ev, err := custody.DecodeRecord(rec)
			if err != nil {
				return err
			}
			ev.PrevHash = custody.GenesisHash
			if rec, err = custody.EncodeRecord(ev); err != nil {
				return err
			}
		}
		r.recs[s] = rec
		leaves = append(leaves, tlog.LeafHash(rec))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.head, err = l.TreeHead(ctx); err != nil {
		t.Fatal(err)
	}
	if r.head.Size != uint64(len(leaves)) {
		t.Fatalf("tree head of size %d over %d records", r.head.Size, len(leaves))
	}
	r.head.Root = tlog.RootOf(leaves)
	r.leaves = leaves
	return r
}

// InclusionProof and ConsistencyProof are over the edited records, as the
// stored nodes of an edited file would be.
func (r *rewrittenLedger) InclusionProof(_ context.Context, seq, size uint64) (tlog.Proof, error) {
	p, err := tlog.InclusionProof(r.leaves[:size], seq-1)
	return tlog.Proof{Kind: tlog.Inclusion, A: seq - 1, B: size, Hashes: p}, err
}

func (r *rewrittenLedger) ConsistencyProof(_ context.Context, old, size uint64) (tlog.Proof, error) {
	p, err := tlog.ConsistencyProof(r.leaves[:size], old)
	return tlog.Proof{Kind: tlog.Consistency, A: old, B: size, Hashes: p}, err
}

func (r *rewrittenLedger) Records(ctx context.Context, from uint64, fn func(uint64, []byte) error) error {
	for s := from; s <= r.head.Size; s++ {
		if err := fn(s, r.recs[s]); err != nil {
			return err
		}
	}
	return nil
}

func (r *rewrittenLedger) Custody(ctx context.Context, id string) ([]custody.Event, error) {
	evs, err := r.Ledger.Custody(ctx, id)
	for i := range evs {
		if err != nil {
			break
		}
		evs[i], err = custody.DecodeRecord(r.recs[evs[i].Seq])
	}
	return evs, err
}

func (r *rewrittenLedger) TreeHead(context.Context) (tlog.Checkpoint, error) { return r.head, nil }

// TestVerifyFollowsTheChain: a package that is consistent in every other
// way (tree, proofs, manifest, derived files) is refused when a record's
// prev_hash is not the hash of the record before it.
func TestVerifyFollowsTheChain(t *testing.T) {
	f := newFixture(t, unsigned)
	for _, tc := range []struct {
		name string
		seq  uint64 // 0: nothing rewritten, the control
	}{{"control", 0}, {"record 3 rewritten", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "pkg")
			if _, err := Build(context.Background(), rewriteChain(t, f.l, tc.seq), memFootage(f.footage), NewDirSink(dir), Options{
				IDs: f.ids, Footage: true, ExportedBy: "custodian-1", Reason: "case 2026/113", Tool: "evidenced test",
				Now: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC),
			}); err != nil {
				t.Fatal(err)
			}
			r := mustVerify(t, dir)
			if tc.seq == 0 {
				if !r.OK() {
					t.Fatalf("the unedited package does not verify: %v", r.Problems)
				}
				return
			}
			named := false
			for _, p := range r.Problems {
				named = named || p.File == "records/3.json" && strings.Contains(p.Msg, "the chain is broken")
			}
			if !named {
				t.Fatalf("the broken chain at records/3.json is not named: %v", r.Problems)
			}
		})
	}
}
