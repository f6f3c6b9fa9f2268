package ingest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/vault"
)

// TestVaultedRecordsPartSums: the cold read-back also hashes the copy in
// the upload's parts (objstore.PartSize of its size); the sums are kept
// beside the copy and the VAULTED record holds their part size, count and
// composite, which the kept file reproduces, and they are the SHA-256s of
// the copy's parts. A sums file an earlier attempt left without a record
// (a crash between the two) is replaced, not trusted.
func TestVaultedRecordsPartSums(t *testing.T) {
	f := newFixture(t)
	f.in.cfg.Upload.PartSumsAtIngest = true // the default; set so that the test does not depend on it
	ctx := context.Background()
	data := make([]byte, 2*objstore.MinPartSize+4097)
	for i := range data {
		data[i] = byte(i*17 + 3)
	}
	f.write(t, "DCIM/A.MP4", data)
	id := f.itemOf(t, "DCIM/A.MP4")
	ps := objstore.PartSize(int64(len(data)))
	stale := []digest.Sum{digest.Bytes([]byte("a")), digest.Bytes([]byte("b")), digest.Bytes([]byte("c"))}
	if err := f.vault.WritePartSums(id, ps, stale); err != nil {
		t.Fatal(err)
	}
	if res, err := f.dock(t, nil); err != nil || !res.SafeToUndock {
		t.Fatalf("dock: %+v %v", res, err)
	}
	var vaulted *custody.Event
	if err := f.ledger.Events(ctx, 0, func(e custody.Event) error {
		if e.Item == id && e.Type == custody.Vaulted {
			vaulted = &e
		}
		return nil
	}); err != nil || vaulted == nil {
		t.Fatalf("no VAULTED record for %s (%v)", id, err)
	}
	sums, err := f.vault.RecordedPartSums(id, vaulted.Details, ps)
	if err != nil {
		t.Fatalf("the VAULTED record's part sums (%v) are not reproduced by the kept file: %v", vaulted.Details, err)
	}
	var want []digest.Sum
	if _, err := objstore.HashPartsEach(ctx, bytes.NewReader(data), int64(len(data)), ps, func(_ int, s digest.Sum) { want = append(want, s) }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sums, want) {
		t.Errorf("recorded part sums are not the SHA-256s of the copy's %d-byte parts", ps)
	}
	if _, err := f.vault.RecordedPartSums(id, vault.PartSumsDetails(ps, stale), ps); err == nil {
		t.Error("the stale sums file left before the dock was not replaced")
	}
	if _, err := os.Stat(filepath.Join(f.vault.Dir(), "parts", id[:2], id)); err != nil {
		t.Errorf("sums file: %v", err)
	}
}

// TestPartSumsAtIngestOff: with upload.part_sums_at_ingest off the
// read-back hashes the whole only: VAULTED names no part sums and none are
// kept, so the upload hashes the copy as before.
func TestPartSumsAtIngestOff(t *testing.T) {
	f := newFixture(t)
	f.in.cfg.Upload.PartSumsAtIngest = false
	f.write(t, "DCIM/A.MP4", bytes.Repeat([]byte("x"), 3<<20))
	id := f.itemOf(t, "DCIM/A.MP4")
	if res, err := f.dock(t, nil); err != nil || !res.SafeToUndock {
		t.Fatalf("dock: %+v %v", res, err)
	}
	if err := f.ledger.Events(context.Background(), 0, func(e custody.Event) error {
		if e.Item == id && e.Type == custody.Vaulted {
			if _, ok := e.Details[vault.DetailPartSums]; ok {
				t.Errorf("VAULTED names part sums with part_sums_at_ingest off: %v", e.Details)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.vault.Dir(), "parts", id[:2], id)); err == nil {
		t.Error("part sums kept with part_sums_at_ingest off")
	}
}
