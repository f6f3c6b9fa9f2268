package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
)

// ingestOne docks one file on a vault-only service and returns its item id.
func ingestOne(t *testing.T, s *Service, dir string, who Caller) string {
	t.Helper()
	cam := filepath.Join(dir, "cam")
	if err := os.MkdirAll(filepath.Join(cam, "DCIM"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cam, "DCIM", "A.MP4"), bytes.Repeat([]byte("footage "), 512), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Ingest(context.Background(), who, IngestOptions{Camera: "BWC-0001", From: cam})
	if err != nil || len(rep.Recorded) != 1 {
		t.Fatalf("ingest: %+v, %v", rep, err)
	}
	return rep.Recorded[0].ID
}

// A retrieval and an export are anchored off the host before a byte
// leaves: when the anchor cannot be written nothing is released, and the
// access that was recorded is followed by one saying it failed. The
// caller's claimed name is on_behalf_of beside the actor, never instead.
func TestAnchorBeforeReleaseAndFailedAccess(t *testing.T) {
	ctx := context.Background()
	s, dir := openVaultOnly(t)
	who := Caller{Actor: "alice", OnBehalfOf: "officer-4711", Peer: "uid=1000,pid=42"}
	id := ingestOne(t, s, dir, who)

	st := memstore.New()
	s.anchors = anchor.NewRunner(s.ledger, st, s.config.HostID, time.Hour, 24*time.Hour, anchor.Options{})

	// The anchor store works: the access is anchored, then released.
	var out bytes.Buffer
	if err := s.Get(ctx, who, GetOptions{ID: id, Reason: "review"}, &out, nil); err != nil || out.Len() == 0 {
		t.Fatalf("get with a working anchor store: %d bytes, %v", out.Len(), err)
	}
	head, err := s.ledger.TreeHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, found, err := anchor.Latest(ctx, st, s.config.HostID, ^uint64(0))
	if err != nil || !found || got.Size != head.Size {
		t.Fatalf("after get the anchored checkpoint has size %d (found %v, %v), the ledger %d", got.Size, found, err, head.Size)
	}

	// The anchor store refuses: nothing is released.
	st.Fail(errors.New("anchor store down"))
	out.Reset()
	err = s.Get(ctx, who, GetOptions{ID: id, Reason: "review again"}, &out, nil)
	if err == nil || out.Len() != 0 {
		t.Fatalf("get with the anchor store down: %d bytes released, %v", out.Len(), err)
	}
	out.Reset()
	if _, err := s.Export(ctx, who, ExportOptions{IDs: []string{id}, Reason: "court"}, &out); err == nil || out.Len() != 0 {
		t.Fatalf("export with the anchor store down: %d bytes released, %v", out.Len(), err)
	}

	evs, err := s.Accesses(ctx, who, AccessFilter{Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, ev := range evs {
		trail = append(trail, ev.Details["action"]+":"+ev.Details["outcome"])
		if ev.Details["on_behalf_of"] != "officer-4711" {
			t.Errorf("%s recorded without on_behalf_of: %v", ev.Details["action"], ev.Details)
		}
	}
	want := "[retrieve: retrieve: retrieve:failed export: export:failed]"
	if fmt.Sprint(trail) != want {
		t.Errorf("access trail %v, want %s", trail, want)
	}
}

// verify names a vault file no item in the ledger claims.
func TestVerifyNamesUnclaimedVaultFiles(t *testing.T) {
	ctx := context.Background()
	s, dir := openVaultOnly(t)
	who := Caller{Actor: "auditor"}
	id := ingestOne(t, s, dir, who)
	it, err := s.ledger.Item(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(filepath.Dir(it.VaultPath), "ffff"+filepath.Base(it.VaultPath)[4:])
	if err := os.WriteFile(stray, []byte("footage the ledger does not know"), 0o440); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(ctx, who, VerifyOptions{Reason: "audit"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || len(rep.Problems) != 1 || rep.Problems[0].Kind != "vault" {
		t.Fatalf("verify with an unclaimed vault file: %+v", rep)
	}
}

// A copy interrupted between its COPIED and its VAULTED (a crash or a power
// cut after the rename) leaves a vault file the ledger names by its COPIED:
// verify reports it as a notice naming the file, and finds nothing wrong.
// The same file with no COPIED on record (a ledger that lost it) is a
// failure.
func TestVerifyTellsInterruptedCopyFromUnclaimed(t *testing.T) {
	ctx := context.Background()
	s, dir := openVaultOnly(t)
	who := Caller{Actor: "auditor"}
	id := ingestOne(t, s, dir, who)
	it, err := s.ledger.Item(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	interrupted := "eeee" + id[4:]
	if _, err := s.ledger.Append(ctx, custody.Event{Type: custody.Copied, Actor: "t", Camera: it.Camera, Item: interrupted, SHA256: it.SHA256}, nil); err != nil {
		t.Fatal(err)
	}
	shard := filepath.Join(filepath.Dir(filepath.Dir(it.VaultPath)), interrupted[:2])
	if err := os.MkdirAll(shard, 0o750); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(shard, interrupted)
	if err := os.WriteFile(path, []byte("copied, never read back"), 0o440); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(ctx, who, VerifyOptions{Reason: "audit"})
	if err != nil {
		t.Fatal(err)
	}
	noticed := false
	for _, n := range rep.Notices {
		noticed = noticed || strings.Contains(n.What, "interrupted copy") && strings.Contains(n.What, path)
	}
	if !rep.OK || len(rep.Problems) != 0 || !noticed {
		t.Fatalf("verify beside an interrupted copy: ok=%v problems=%+v notices=%+v", rep.OK, rep.Problems, rep.Notices)
	}
	// A later record of the item (here: its failure) means the file is no
	// longer the copy in flight: it is unclaimed footage again.
	if _, err := s.ledger.Append(ctx, custody.Event{Type: custody.CopyFailed, Actor: "t", Camera: it.Camera, Item: interrupted}, nil); err != nil {
		t.Fatal(err)
	}
	rep, err = s.Verify(ctx, who, VerifyOptions{Reason: "audit"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].What, path) {
		t.Fatalf("verify beside a copy recorded as failed: ok=%v problems=%+v", rep.OK, rep.Problems)
	}
}
