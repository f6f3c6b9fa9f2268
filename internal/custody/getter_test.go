package custody

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestGetterIsGet: getter answers every lookup as Bucket.Get does (the
// value, nil for a missing key or a nested bucket's key), whatever the order
// of the keys asked for: the same key again, the next one, one past a gap,
// one beyond the last key, smaller ones, on pages far apart. It keeps the
// cursor's position between lookups, so a wrong shortcut would answer from
// the wrong place.
func TestGetterIsGet(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "g.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	// Keys 2, 4, 6, ... 2n (odd keys are missing), a nested bucket at 1000,
	// values that name their key; enough of them for many pages.
	const n = 5000
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		for i := uint64(1); i <= n; i++ {
			if i == 500 {
				if _, err := b.CreateBucket(seqKey(2 * i)); err != nil {
					return err
				}
				continue
			}
			if err := b.Put(seqKey(2*i), append([]byte("v"), seqKey(2*i)...)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	r := rand.New(rand.NewPCG(1, 2))
	var asc []uint64 // every key and gap in order, some asked twice
	for q := uint64(0); q <= 2*n+3; q++ {
		asc = append(asc, q)
		if r.IntN(4) == 0 {
			asc = append(asc, q)
		}
	}
	var runs []uint64 // short ascending runs that restart anywhere
	for len(runs) < 4*n {
		start := uint64(r.IntN(2*n + 4))
		for q := start; q < start+uint64(r.IntN(20)); q += uint64(1 + r.IntN(3)) {
			runs = append(runs, q)
		}
	}
	random := make([]uint64, 4*n)
	for i := range random {
		random[i] = uint64(r.IntN(2*n + 4))
	}
	desc := slices.Clone(asc)
	slices.Reverse(desc)

	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("b"))
		for name, order := range map[string][]uint64{"ascending": asc, "runs": runs, "random": random, "descending": desc} {
			var g getter
			hits := 0
			for i, q := range order {
				got, want := g.get(b, seqKey(q)), b.Get(seqKey(q))
				if !bytes.Equal(got, want) || (got == nil) != (want == nil) {
					t.Fatalf("%s, lookup %d (key %d): getter gave %q, Get %q", name, i, q, got, want)
				}
				if want != nil {
					hits++
				}
			}
			if hits == 0 {
				t.Fatalf("%s: no lookup found a key", name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
