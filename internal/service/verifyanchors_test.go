package service

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// failingListing is a store whose listing of the anchored checkpoints
// breaks off with an error that is not the network's: the store answered,
// but the check could not be made.
type failingListing struct{ anchor.Store }

var errListing = errors.New("list page 2: the continuation token was refused")

func (f failingListing) ListVersions(ctx context.Context, prefix string) ([]objstore.Version, error) {
	if strings.Contains(prefix, "checkpoints/") {
		return nil, errListing
	}
	return f.Store.ListVersions(ctx, prefix)
}

// anchoredHost is dock-01 on versitygw with one recording ingested and
// anchored, the caller that did it, the server and the bucket.
func anchoredHost(t *testing.T) (*Service, Caller, *s3srv.Server, string) {
	t.Helper()
	ctx := context.Background()
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	dir := t.TempDir()
	s := openHost(t, srv, bucket, dir, "host_id: dock-01\ncameras:\n  - {serial: BWC-0001, kind: body, assigned_to: officer-1}\n")
	cam := filepath.Join(dir, "cam")
	if err := os.MkdirAll(filepath.Join(cam, "DCIM"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cam, "DCIM", "A.MP4"), bytes.Repeat([]byte("frame"), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	who := Caller{Actor: "custodian-1"}
	if _, err := s.Ingest(ctx, who, IngestOptions{Camera: "BWC-0001", From: cam}); err != nil {
		t.Fatal(err)
	}
	if err := s.AnchorNow(ctx, false); err != nil {
		t.Fatal(err)
	}
	return s, who, srv, bucket
}

// An anchored-checkpoint check that could not be made (CheckWith's error,
// as opposed to its Problems) leaves `verify --remote` incomplete (exit 1,
// naming what was not checked), never failed: exit 3 means something was
// found wrong. The same ledger and store, listing, verify OK.
func TestVerifyAnchorsThatCouldNotBeCheckedIsIncomplete(t *testing.T) {
	ctx := context.Background()
	s, who, _, _ := anchoredHost(t)
	rep, err := s.Verify(ctx, who, VerifyOptions{Remote: true})
	if err != nil || !rep.OK || !rep.Complete() || rep.Checkpoints == 0 {
		t.Fatalf("verify --remote with the store listing: %+v %v", rep, err)
	}

	s.anchorStore = failingListing{s.anchorStore}
	rep, err = s.Verify(ctx, who, VerifyOptions{Remote: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Problems) != 0 {
		t.Errorf("a check that could not be made is reported as a finding: %+v", rep.Problems)
	}
	if rep.Complete() || !strings.Contains(rep.Unchecked(), "the anchored checkpoints were not checked: _custody/dock-01/ in the object store") ||
		!strings.Contains(rep.Unchecked(), errListing.Error()) {
		t.Errorf("unchecked %q, want the anchored checkpoints named with the listing's error", rep.Unchecked())
	}
}

// failingRead is a store whose reads of the anchored checkpoints (those
// under prefix) fail with an error that may pass (not the store being
// down: it answered).
type failingRead struct {
	anchor.Store
	prefix string
}

var errRead = errors.New("read checkpoint: the connection was reset mid-body")

func (f failingRead) Open(ctx context.Context, key, versionID string) (io.ReadCloser, error) {
	if strings.HasPrefix(key, f.prefix) && strings.HasSuffix(key, ".note") {
		return nil, errRead
	}
	return f.Store.Open(ctx, key, versionID)
}

// What the anchored-checkpoint check found wrong is reported (exit 3)
// even when another of its reads could not be made: the check's error
// leaves the report incomplete as well, it does not hide the finding
// (an object evidenced does not write among the checkpoints, here)
// behind "not checked".
func TestVerifyAnchorsFindingSurvivesAReadThatFailed(t *testing.T) {
	ctx := context.Background()
	s, who, _, _ := anchoredHost(t)
	junk := anchor.Prefix("dock-01") + "checkpoints/notes.txt"
	b := []byte("not a checkpoint")
	sum := digest.Bytes(b)
	if _, err := s.anchorStore.Put(ctx, objstore.PutRequest{Key: junk, Body: bytes.NewReader(b), Size: int64(len(b)), SHA256: sum,
		Metadata: map[string]string{"sha256": sum.Hex()}}); err != nil {
		t.Fatal(err)
	}
	s.anchorStore = failingRead{s.anchorStore, ""}
	rep, err := s.Verify(ctx, who, VerifyOptions{Remote: true})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range rep.Problems {
		found = found || strings.HasPrefix(p.Object, junk)
	}
	if rep.OK || !found {
		t.Errorf("verify --remote with %s in the store and a checkpoint unreadable: ok %v, problems %+v; want the object named", junk, rep.OK, rep.Problems)
	}
	if rep.Complete() || !strings.Contains(rep.Unchecked(), errRead.Error()) {
		t.Errorf("unchecked %q, want the failed read named", rep.Unchecked())
	}
}

// At a console, an audit of the dock hosts' anchored histories that could
// not be made (a checkpoint the store could not hand back just then)
// leaves verify --remote incomplete, naming it, never failed: exit 3
// means something was found wrong.
func TestConsoleVerifyAuditThatCouldNotBeMadeIsIncomplete(t *testing.T) {
	ctx := context.Background()
	d, who, srv, bucket := anchoredHost(t)
	key := filepath.Join(t.TempDir(), "dock-01.pem")
	if err := os.WriteFile(key, d.HostKey().PublicPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Close()
	c := openHost(t, srv, bucket, t.TempDir(), "role: console\nhost_id: hq\nconsole:\n  hosts:\n    - {id: dock-01, public_key_file: "+key+"}\n")
	// A search first: the console's ledger then holds its host key, with
	// which its own (no) checkpoints are checked.
	if _, err := c.Find(ctx, who, FindOptions{Reason: "before the check"}); err != nil {
		t.Fatal(err)
	}
	if rep, err := c.Verify(ctx, who, VerifyOptions{Remote: true}); err != nil || !rep.OK || !rep.Complete() {
		t.Fatalf("verify --remote at the console: %+v %v", rep, err)
	}
	c.catalog.Close()
	c.anchorStore = failingRead{c.anchorStore, anchor.Prefix("dock-01")}
	if err := c.openConsole(); err != nil {
		t.Fatal(err)
	}
	rep, err := c.Verify(ctx, who, VerifyOptions{Remote: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Problems) != 0 {
		t.Errorf("an audit that could not be made is reported as a finding: %+v", rep.Problems)
	}
	if rep.Complete() || !strings.Contains(rep.Unchecked(), "dock-01") || !strings.Contains(rep.Unchecked(), errRead.Error()) {
		t.Errorf("unchecked %q, want dock-01's audit named with the failed read", rep.Unchecked())
	}
}

// A ledger with no record yet holds no host key: verify --remote of such a
// host is complete when the store holds nothing anchored under its name
// (nothing could have been), and a failure when it does (the ledger that
// anchored it was lost or replaced), not "could not check" either way.
func TestVerifyAnchorsOfALedgerWithNoKey(t *testing.T) {
	ctx := context.Background()
	d, who, srv, bucket := anchoredHost(t)
	d.Close()
	fresh := openHost(t, srv, srv.NewBucket(t), t.TempDir(), "host_id: dock-01\n")
	rep, err := fresh.Verify(ctx, who, VerifyOptions{Remote: true})
	if err != nil || !rep.OK || !rep.Complete() {
		t.Errorf("verify --remote of a new host: %+v %v", rep, err)
	}
	lost := openHost(t, srv, bucket, t.TempDir(), "host_id: dock-01\n")
	rep, err = lost.Verify(ctx, who, VerifyOptions{Remote: true})
	if err != nil || rep.OK || len(rep.Problems) == 0 || rep.Problems[0].Kind != "checkpoint" {
		t.Errorf("verify --remote of an empty ledger whose host anchored before: %+v %v", rep, err)
	}
}
