package fleetgen

import (
	"fmt"
	"slices"
	"testing"

	"github.com/evidenced/evidenced/internal/tlog"
)

// The incremental tree gives exactly the root and the consistency proofs
// the whole-tree functions give, at every size and every older size:
// checkpoints and proofs of a generated fleet are what a dock host writes.
func TestTreeMatchesWholeTree(t *testing.T) {
	var tr tree
	var leaves []tlog.Hash
	for n := 1; n <= 70; n++ {
		l := tlog.LeafHash([]byte(fmt.Sprint(n)))
		tr.append(l)
		leaves = append(leaves, l)
		if got, want := tr.f.Root(), tlog.RootOf(leaves); got != want {
			t.Fatalf("size %d: root %s, want %s", n, got, want)
		}
		if got, want := tr.hash(0, uint64(n)), tlog.RootOf(leaves); got != want {
			t.Fatalf("size %d: hash %s, want %s", n, got, want)
		}
		for m := range uint64(n) + 1 {
			want, err := tlog.ConsistencyProof(leaves, m)
			if err != nil {
				t.Fatal(err)
			}
			if got := tr.consistency(m); !slices.Equal(got, want) {
				t.Fatalf("consistency %d→%d: %v, want %v", m, n, got, want)
			}
		}
	}
}
