package upload

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
)

// lostComplete is the real store where the answer to one Complete is lost
// (the process sending it killed): the store completes the upload, the
// uploader hears an error. hide makes the next Existing calls find nothing,
// as while the store is still assembling that Complete; parts counts the
// parts sent.
type lostComplete struct {
	*partWatch
	lose  atomic.Bool
	hide  atomic.Int32
	parts atomic.Int64
}

func (s *lostComplete) UploadPart(ctx context.Context, key, uploadID string, n int, body io.ReaderAt, off, size int64, sum digest.Sum) (objstore.Part, error) {
	s.parts.Add(1)
	return s.partWatch.UploadPart(ctx, key, uploadID, n, body, off, size, sum)
}

func (s *lostComplete) CompleteMultipart(ctx context.Context, key, uploadID string, parts []objstore.Part) (objstore.PutResult, error) {
	res, err := s.partWatch.CompleteMultipart(ctx, key, uploadID, parts)
	if err == nil && s.lose.CompareAndSwap(true, false) {
		return objstore.PutResult{}, errors.New("connection reset: the answer to Complete was lost")
	}
	return res, err
}

func (s *lostComplete) Existing(ctx context.Context, req objstore.PutRequest) (objstore.PutResult, bool, error) {
	if s.hide.Add(-1) >= 0 {
		return objstore.PutResult{}, false, nil
	}
	return s.partWatch.Existing(ctx, req)
}

// completedUnrecorded uploads a 3-part recording whose Complete the store
// carried out but whose answer was lost: the store holds its version, the
// ledger an open upload. It returns the item and that upload's id.
func completedUnrecorded(t *testing.T, r *streamRig, s *lostComplete, id string) (custody.Item, string) {
	t.Helper()
	data := pattern(2*(8<<20)+333, 9)
	it := r.item(t, id, data, digest.Bytes(data))
	s.lose.Store(true)
	if err := r.u.Process(r.ctx, it.ID); err == nil || errors.Is(err, ErrPermanent) {
		t.Fatalf("first attempt, its Complete's answer lost: %v, want a transient failure", err)
	}
	evs, err := r.l.Custody(r.ctx, it.ID)
	if err != nil {
		t.Fatal(err)
	}
	st := findOpenUpload(evs)
	if st == nil {
		t.Fatal("no open upload recorded after the lost Complete")
	}
	if vs, err := r.st.ListVersions(r.ctx, ObjectKey(it)); err != nil || len(vs) != 1 {
		t.Fatalf("versions after the lost Complete: %v (%v), want the completed one", vs, err)
	}
	return it, st.uploadID
}

// settled checks what must hold once the recording is verified: exactly
// one version, no upload left open at its key, the ledger resuming none,
// and started uploads as many as want.
func settled(t *testing.T, r *streamRig, it custody.Item, wantStarted int) {
	t.Helper()
	got, err := r.l.Item(r.ctx, it.ID)
	if err != nil || got.State != custody.StateVerified {
		t.Errorf("item is %s (%v), want verified", got.State, err)
	}
	key := ObjectKey(it)
	if vs, err := r.st.ListVersions(r.ctx, key); err != nil || len(vs) != 1 {
		t.Errorf("versions of %s: %d (%v), want 1", key, len(vs), err)
	}
	if ups, err := r.st.ListMultipart(r.ctx, key); err != nil || len(ups) != 0 {
		t.Errorf("uploads left open at %s: %+v (%v), want none", key, ups, err)
	}
	evs, err := r.l.Custody(r.ctx, it.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st := findOpenUpload(evs); st != nil {
		t.Errorf("the ledger still resumes upload %s", st.uploadID)
	}
	started := 0
	for _, e := range evs {
		if e.Type == custody.UploadStarted {
			started++
		}
	}
	if started != wantStarted {
		t.Errorf("%d UPLOAD_STARTED, want %d", started, wantStarted)
	}
}

// TestStoredVersionAbortsOpenUpload: a process sent Complete and was killed
// before UPLOADED; the next found no version yet (the store still
// assembling), opened a new upload, recorded it and was killed too; the
// next finds the first's version and reuses it. The second upload is then
// aborted and recorded so: nothing would complete or resume it, and the
// start-up sweep keeps the open upload of a vaulted item, so it would stay
// in the bucket for good. Real versitygw.
func TestStoredVersionAbortsOpenUpload(t *testing.T) {
	r := newStreamRig(t)
	s := &lostComplete{partWatch: r.watch}
	r.u = New(r.cfg, r.l, dirVault{r.dir}, s, "unit", nil)
	it, _ := completedUnrecorded(t, r, s, strings.Repeat("0", 23)+"7")
	key := ObjectKey(it)
	second, err := r.st.CreateMultipart(r.ctx, objstore.PutRequest{Key: key, Size: it.Size})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.st.AbortMultipart(context.Background(), key, second) })
	r.recordStarted(t, it, key, second)

	if err := r.u.Process(r.ctx, it.ID); err != nil {
		t.Fatalf("attempt finding the stored version: %v", err)
	}
	settled(t, r, it, 2)
	if got := abortedUploads(t, r, it); len(got) != 1 || got[second] != "superseded: the store already holds the version" {
		t.Errorf("UPLOAD_ABORTED records %v, want only the second upload %s, superseded", got, second)
	}
}

// abortedUploads maps the upload ids of it's UPLOAD_ABORTED records to
// their reasons.
func abortedUploads(t *testing.T, r *streamRig, it custody.Item) map[string]string {
	t.Helper()
	evs, err := r.l.Custody(r.ctx, it.ID)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range evs {
		if e.Type == custody.UploadAborted {
			m[e.Details["upload_id"]] = e.Details["reason"]
		}
	}
	return m
}

// TestCompletedUploadNotRecordedAborted: the commonest case of a stored
// version found first: the ledger's open upload is the one whose Complete
// made it (the answer lost). It is gone from the store, completed, so the
// ledger does not call it aborted: its custody reads started, parts,
// uploaded. Real versitygw.
func TestCompletedUploadNotRecordedAborted(t *testing.T) {
	r := newStreamRig(t)
	s := &lostComplete{partWatch: r.watch}
	r.u = New(r.cfg, r.l, dirVault{r.dir}, s, "unit", nil)
	it, first := completedUnrecorded(t, r, s, strings.Repeat("0", 23)+"9")

	if err := r.u.Process(r.ctx, it.ID); err != nil {
		t.Fatalf("attempt finding the stored version: %v", err)
	}
	settled(t, r, it, 1)
	if got := abortedUploads(t, r, it); len(got) != 0 {
		t.Errorf("UPLOAD_ABORTED records %v for upload %s, which was completed", got, first)
	}
}

// TestGoneUploadFoundCompleted: the ledger's open upload is gone from the
// store because a Complete sent by a killed process has just finished:
// Existing found no version yet (still assembling), ListParts no upload.
// The version is then found and reused, not uploaded a second time under a
// new upload (a 1 GiB recording sent twice, two versions of it). Real
// versitygw.
func TestGoneUploadFoundCompleted(t *testing.T) {
	r := newStreamRig(t)
	s := &lostComplete{partWatch: r.watch}
	r.u = New(r.cfg, r.l, dirVault{r.dir}, s, "unit", nil)
	it, first := completedUnrecorded(t, r, s, strings.Repeat("0", 23)+"8")
	s.hide.Store(1)
	before := s.parts.Load()

	if err := r.u.Process(r.ctx, it.ID); err != nil {
		t.Fatalf("attempt after the upload was completed unseen: %v", err)
	}
	settled(t, r, it, 1)
	if n := s.parts.Load() - before; n != 0 {
		t.Errorf("%d parts sent again; upload %s was completed", n, first)
	}
	if got := abortedUploads(t, r, it); len(got) != 0 {
		t.Errorf("UPLOAD_ABORTED records %v for upload %s, which was completed", got, first)
	}
}
