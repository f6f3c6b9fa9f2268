package vault

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Finding 6: `verify` on a replaced ledger said OK while the vault held
// footage no item claimed. Unclaimed names every such file.
func TestUnclaimed(t *testing.T) {
	ctx := context.Background()
	v, err := Open(t.TempDir(), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for _, id := range []string{"aa11", "bb22"} {
		b := []byte("footage " + id)
		if _, err := v.Store(ctx, id, bytes.NewReader(b), int64(len(b)), nil); err != nil {
			t.Fatal(err)
		}
	}
	stray := filepath.Join(v.Dir(), "items", "cc", "NOT-AN-ID")
	os.MkdirAll(filepath.Dir(stray), 0o750)
	os.WriteFile(stray, []byte("x"), 0o440)
	misplaced := filepath.Join(v.Dir(), "items", "zz", "aa11") // the right name in the wrong shard
	os.MkdirAll(filepath.Dir(misplaced), 0o750)
	os.WriteFile(misplaced, []byte("x"), 0o440)
	got, err := v.Unclaimed(ctx, func(id string) bool { return id == "aa11" })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{v.Path("bb22"), stray, misplaced}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Unclaimed = %v, want %v", got, want)
	}
	if got, _ := v.Unclaimed(ctx, func(string) bool { return true }); len(got) != 2 {
		t.Errorf("with every id claimed: %v, want only the stray and the misplaced file", got)
	}
}
