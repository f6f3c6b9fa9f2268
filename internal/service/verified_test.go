package service

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
	"github.com/evidenced/evidenced/internal/upload"
)

// Classify and hold follow one rule: an item whose object is not yet
// verified in the store is refused (ErrNotVerified, nothing recorded,
// nothing asked of the store), whether it is only vaulted or uploaded but
// not verified; once verified, both apply.
func TestClassifyAndHoldWaitForVerification(t *testing.T) {
	ctx := context.Background()
	s, dir := openVaultOnly(t)
	store := memstore.New()
	s.store = store
	who := Caller{Actor: "investigator-1"}

	cam := filepath.Join(dir, "cam")
	os.MkdirAll(filepath.Join(cam, "DCIM"), 0o755)
	if err := os.WriteFile(filepath.Join(cam, "DCIM", "A.MP4"), bytes.Repeat([]byte("footage "), 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Ingest(ctx, who, IngestOptions{Camera: "BWC-0001", From: cam})
	if err != nil || len(rep.Recorded) != 1 {
		t.Fatalf("ingest: %+v, %v", rep, err)
	}
	id := rep.Recorded[0].ID

	asked := 0
	store.SetHook(func(op, _ string) error {
		if op == "put-legal-hold" || op == "put-retention" || op == "put-tags" {
			asked++
		}
		if op == "stat" {
			return errors.New("stat refused by the test: the upload stays unverified")
		}
		return nil
	})
	refuse := func(state custody.State) {
		t.Helper()
		head, _, _ := s.ledger.Head(ctx)
		_, herr := s.Hold(ctx, who, HoldOptions{ID: id, Case: "C-1", Reason: "complaint"})
		_, cerr := s.Classify(ctx, who, ClassifyOptions{ID: id, Class: "uncategorized", Reason: "complaint"})
		for what, err := range map[string]error{"hold": herr, "classify": cerr} {
			if !errors.Is(err, ErrNotVerified) || !strings.Contains(err.Error(), "is "+string(state)+", not yet verified") ||
				!strings.Contains(err.Error(), what+" it once it is verified") {
				t.Errorf("%s of a %s item: %v, want ErrNotVerified saying to wait", what, state, err)
			}
		}
		if after, _, _ := s.ledger.Head(ctx); after != head {
			t.Errorf("a refused request on a %s item was recorded (%d → %d)", state, head, after)
		}
		if asked != 0 {
			t.Errorf("the store was asked to change a %s item's version %d time(s)", state, asked)
		}
	}
	refuse(custody.StateVaulted)

	up := upload.New(s.config, s.ledger, s.vault, store, "test", nil)
	if err := up.Process(ctx, id); err == nil {
		t.Fatal("upload verified with stat refused")
	}
	if it, _ := s.ledger.Item(ctx, id); it.State != custody.StateUploaded || it.VersionID == "" {
		t.Fatalf("item after an unverified upload: %+v", it)
	}
	refuse(custody.StateUploaded)

	store.SetHook(nil)
	if err := up.Process(ctx, id); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if res, err := s.Hold(ctx, who, HoldOptions{ID: id, Case: "C-1", Reason: "complaint"}); err != nil || !res.On() {
		t.Errorf("hold of a verified item: %+v, %v", res, err)
	}
	if _, err := s.Classify(ctx, who, ClassifyOptions{ID: id, Class: "uncategorized", Reason: "complaint"}); err != nil {
		t.Errorf("classify of a verified item: %v", err)
	}
}
