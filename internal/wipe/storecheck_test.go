package wipe

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/evidenced/evidenced/internal/custody"
)

// newReadBackFixture is a fixture whose store reports no checksums (as Ceph
// RGW): condition (c) can then only be proven by reading the object back,
// so the store's verification is the whole of the check.
func newReadBackFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, "wipe_after_verify: true\n")
	f.store.NoChecksums = true
	f.ingest(t, "BWC-0001")
	return f
}

// TestWipeRefusedWhenStoreReadBackDiffers: the store kept other bytes than
// were sent, and reports no checksum that would say so: the version,
// its size and its sha256 metadata all look right. The read-back of check
// (c) is what finds it; the wipe is refused on that check and the camera
// file stays.
func TestWipeRefusedWhenStoreReadBackDiffers(t *testing.T) {
	f := newReadBackFixture(t)
	if !f.store.Corrupt(f.item(t).ObjectKey) {
		t.Fatal("no object to corrupt")
	}
	if err := f.w.Wipe(context.Background(), f.id); !errors.Is(err, ErrRefused) {
		t.Fatalf("wipe of an object that reads back wrong: %v, want ErrRefused", err)
	}
	if !f.sourceExists(t) {
		t.Fatal("the camera file was deleted although the store holds other bytes")
	}
	evs, err := f.ledger.Custody(context.Background(), f.id)
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	if last.Type != custody.WipeRefused || last.Details["check"] != CheckStore {
		t.Errorf("last event %s %v, want WIPE_REFUSED on check %s", last.Type, last.Details, CheckStore)
	}
	if got := f.types(t); slices.Contains(got, "WIPE_CHECKED:"+CheckStore) || slices.Contains(got, "WIPED") {
		t.Errorf("custody %v: check (c) passed or the file was wiped", got)
	}
}

// TestWipeWaitsOutStoreVerifyFailure: the read-back of check (c) cannot
// reach the store (a transient error). Nothing proves the object, so the
// wipe stops with that error, records no check (c) and keeps the file; once
// the store answers again, the same attempt completes.
func TestWipeWaitsOutStoreVerifyFailure(t *testing.T) {
	f := newReadBackFixture(t)
	down := errors.New("connection reset by peer")
	f.store.SetHook(func(op, _ string) error {
		if op == "open" {
			return down
		}
		return nil
	})
	err := f.w.Wipe(context.Background(), f.id)
	if err == nil || errors.Is(err, ErrRefused) || !errors.Is(err, down) {
		t.Fatalf("wipe while the store read-back fails: %v, want that transient error", err)
	}
	if !f.sourceExists(t) {
		t.Fatal("the camera file was deleted although the store could not be verified")
	}
	got := f.types(t)
	if slices.Contains(got, "WIPE_CHECKED:"+CheckStore) || slices.Contains(got, "WIPE_UNLINKING") || slices.Contains(got, "WIPED") {
		t.Fatalf("custody %v: check (c) recorded as passed, or the unlink began", got)
	}

	f.store.SetHook(nil)
	if err := f.w.Wipe(context.Background(), f.id); err != nil {
		t.Fatalf("wipe once the store answers: %v", err)
	}
	if f.sourceExists(t) {
		t.Error("the camera file is still there after the store came back")
	}
	got = f.types(t)
	if !slices.Contains(got, "WIPE_CHECKED:"+CheckStore) || got[len(got)-1] != "WIPED" {
		t.Errorf("custody %v, want check (c) passed and WIPED", got)
	}
}
