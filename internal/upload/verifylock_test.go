package upload

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore"
)

// downgradingStore keeps every version it is given under GOVERNANCE,
// whatever lock was asked for: a store that ignores part of the Object Lock
// request (as some servers do with the lock headers of a multipart upload),
// or an administrator who re-locked the version. Only the verification's
// comparison of the stored lock mode with the class can notice.
type downgradingStore struct{ objstore.Store }

func (s downgradingStore) Put(ctx context.Context, req objstore.PutRequest) (objstore.PutResult, error) {
	if req.LockMode != "" {
		req.LockMode = objstore.LockGovernance
	}
	return s.Store.Put(ctx, req)
}

// TestVerifyRefusesWeakerLockMode: a COMPLIANCE recording that the store
// holds only under GOVERNANCE (which a privileged user can lift) is never
// VERIFIED: one permanent VERIFY_FAILED naming the lock modes, and
// VerifyObject (what `verify --remote` runs) says the same.
func TestVerifyRefusesWeakerLockMode(t *testing.T) {
	f := newFixture(t)
	f.cfg.Retention.Classes[0].Mode = config.ModeCompliance
	f.u = New(f.cfg, f.l, f.v, downgradingStore{f.store}, "unit", nil)
	it := f.item(t, 1, f.cfg.Retention.Classes[0].Name, time.Now().UTC())
	ctx := context.Background()
	if err := f.u.Process(ctx, it.ID); !errors.Is(err, ErrPermanent) {
		t.Fatalf("Process of a version locked GOVERNANCE for a COMPLIANCE class: %v, want ErrPermanent", err)
	}
	evs, err := f.l.Custody(ctx, it.ID)
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, e := range evs {
		switch e.Type {
		case custody.Verified:
			t.Fatalf("VERIFIED recorded for a version locked GOVERNANCE: %v", e.Details)
		case custody.VerifyFailed:
			failed++
			if !strings.Contains(e.Details["reason"], "lock mode") {
				t.Errorf("VERIFY_FAILED does not name the lock mode: %v", e.Details)
			}
		}
	}
	if failed != 1 {
		t.Errorf("%d VERIFY_FAILED events, want 1", failed)
	}
	got, err := f.l.Item(ctx, it.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State == custody.StateVerified {
		t.Fatalf("item state %s", got.State)
	}
	if _, _, err := VerifyObject(ctx, f.store, f.v, got, f.cfg); err == nil || !strings.Contains(err.Error(), `lock mode "GOVERNANCE"`) {
		t.Errorf("VerifyObject: %v, want the lock mode named", err)
	}
}
