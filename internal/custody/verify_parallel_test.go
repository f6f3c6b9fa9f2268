package custody

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestVerifyParallelNamesTheFirst runs Verify the way a large ledger is
// verified (chunks of 1,000 records, each decoded in blocks of 128 by four
// workers while the chain is checked in order; the other tests' tiny chunks
// never start a worker) on a signed ledger of 3,000 records, altered by
// someone without the key: the first record, one in a block another
// worker decoded, the last, a signature only, a record re-hashed with the
// chain and tree recomputed, a chain link (a prev_hash), and two records
// at once, in blocks and chunks decoded in either order. Each altered
// record must be named, the first record named must be the lowest altered
// one, and the chain's reports must come in record order: a failure a
// later block finds first must not come before, or hide, an earlier one.
func TestVerifyParallelNamesTheFirst(t *testing.T) {
	old := runtime.GOMAXPROCS(4)
	defer runtime.GOMAXPROCS(old)
	key := newKey(t)
	base := newSignedFixture(t, key)
	fill(t, base.l, 3000, true)
	last, _, err := base.l.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	base.close()

	alter := func(seqs ...uint64) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			rawUpdate(t, path, func(b bkts) error {
				for _, s := range seqs {
					ev, err := DecodeRecord(b.events.Get(seqKey(s)))
					if err != nil {
						return err
					}
					ev.Actor += "-altered"
					rec, err := EncodeRecord(ev)
					if err != nil {
						return err
					}
					if err := b.events.Put(seqKey(s), rec); err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, path string)
		named  []uint64 // altered records, lowest first
	}{
		{"first record", alter(1), []uint64{1}},
		{"record in the second block", alter(200), []uint64{200}},
		{"last record", alter(last), []uint64{last}},
		{"signature only", func(t *testing.T, path string) {
			rawUpdate(t, path, func(b bkts) error {
				sig := []byte(string(b.sigs.Get(seqKey(1500))))
				sig[5] ^= 0x10
				return b.sigs.Put(seqKey(1500), sig)
			})
		}, []uint64{1500}},
		{"record re-hashed, chain and tree recomputed", func(t *testing.T, path string) {
			rewriteRecord(t, path, 1300)
		}, []uint64{1300}},
		{"chain link", func(t *testing.T, path string) {
			rawUpdate(t, path, func(b bkts) error {
				ev, err := DecodeRecord(b.events.Get(seqKey(701)))
				if err != nil {
					return err
				}
				ev.PrevHash = sha("forged")
				rec, err := EncodeRecord(ev)
				if err != nil {
					return err
				}
				return b.events.Put(seqKey(701), rec)
			})
		}, []uint64{700}},
		{"two records in blocks of one chunk", alter(100, 200), []uint64{100, 200}},
		{"two records in the last block of a chunk and the first of the next", alter(990, 1010), []uint64{990, 1010}},
		{"two records far apart", alter(130, 2900), []uint64{130, 2900}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ledger.db")
			copyFile(t, base.path, path)
			tc.tamper(t, path)
			l, err := Open(path, Options{ReadOnly: true, Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = l.Close() }()
			l.chunk = 1000
			var ps []Problem
			if _, err := l.Verify(context.Background(), func(p Problem) { ps = append(ps, p) }); err != nil {
				t.Fatal(err)
			}
			var first *Problem
			for i := range ps {
				if ps[i].Seq != 0 {
					first = &ps[i]
					break
				}
			}
			if first == nil || first.Seq != tc.named[0] || !strings.Contains(first.What, fmt.Sprintf("record %d", tc.named[0])) {
				t.Fatalf("first record named is not %d:\n%s", tc.named[0], dump(ps))
			}
			for _, s := range tc.named {
				named := false
				for _, p := range ps {
					named = named || p.Seq == s && strings.Contains(p.What, fmt.Sprintf("record %d", s))
				}
				if !named {
					t.Errorf("record %d is not named:\n%s", s, dump(ps))
				}
			}
			var prev uint64
			for _, p := range ps {
				if strings.Contains(p.What, "was altered") {
					if p.Seq <= prev {
						t.Fatalf("chain reports out of record order (%d after %d):\n%s", p.Seq, prev, dump(ps))
					}
					prev = p.Seq
				}
			}
		})
	}
}
