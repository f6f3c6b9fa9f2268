package upload

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
)

// TestSweepAbortsLeftProbeUpload: an upload at the part probe's key (left by
// a process killed mid-probe) is aborted by the start-up sweep at once,
// however young, since no probe upload is ever completed; a run that sends
// no part never probes, so without this it would stay. A young upload the
// ledger does not know is not the probe's and is kept until
// upload.abandoned_after. Real versitygw.
func TestSweepAbortsLeftProbeUpload(t *testing.T) {
	r := newStreamRig(t)
	sum := digest.Bytes([]byte("x"))
	probe, err := r.st.CreateMultipart(r.ctx, objstore.PutRequest{Key: objstore.PartProbeKey, Size: 1, SHA256: sum})
	if err != nil {
		t.Fatal(err)
	}
	const other = "_probe/part-checksum-not-the-probe"
	keep, err := r.st.CreateMultipart(r.ctx, objstore.PutRequest{Key: other, Size: 1, SHA256: sum})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.st.AbortMultipart(r.ctx, other, keep) })

	n, err := r.u.Sweep(r.ctx)
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	ups, err := r.st.ListMultipart(r.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || len(ups) != 1 || ups[0].Key != other || ups[0].UploadID != keep {
		t.Errorf("sweep aborted %d and left %+v; want the probe's upload %s aborted and only %s %s left", n, ups, probe, other, keep)
	}
}

// TestSweepAbortsUploadsNobodyResumes: what a kill can leave open at a
// recording's key is aborted at the next start, and what the ledger resumes
// is kept. Real versitygw, real ledger:
//   - a vaulted item's upload opened but never recorded (a kill between
//     CreateMultipartUpload and UPLOAD_STARTED): aborted, UPLOAD_ABORTED
//     recorded, so nothing resumes or keeps it;
//   - beside it a second item's recorded upload (UPLOAD_STARTED) and a
//     stray one at the same key: the recorded one kept, the stray aborted;
//   - an upload this ledger does not know (another host's, or a lost
//     ledger's): kept while younger than upload.abandoned_after, aborted
//     once older, while the recorded upload is still kept whatever its age.
func TestSweepAbortsUploadsNobodyResumes(t *testing.T) {
	r := newStreamRig(t)
	data := pattern(9<<20, 5)
	sum := digest.Bytes(data)
	open := func(key string) string {
		t.Helper()
		id, err := r.st.CreateMultipart(r.ctx, objstore.PutRequest{Key: key, Size: int64(len(data)), SHA256: sum})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	lost := r.item(t, strings.Repeat("0", 23)+"5", data, sum)
	lostID := open(ObjectKey(lost))
	resumed := r.item(t, strings.Repeat("0", 23)+"6", data, sum)
	key := ObjectKey(resumed)
	keep := open(key)
	r.recordStarted(t, resumed, key, keep)
	stray := open(key)
	const foreign = "OTHER-CAM/2026/01/01/ffffffffffffffffffffffff.mp4"
	foreignID := open(foreign)
	t.Cleanup(func() {
		for k, id := range map[string]string{key: keep, foreign: foreignID} {
			_ = r.st.AbortMultipart(context.Background(), k, id)
		}
	})

	left := func() map[string]bool {
		t.Helper()
		ups, err := r.st.ListMultipart(r.ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, u := range ups {
			m[u.Key+" "+u.UploadID] = true
		}
		return m
	}
	n, err := r.u.Sweep(r.ctx)
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	got := left()
	want := map[string]bool{key + " " + keep: true, foreign + " " + foreignID: true}
	if n != 2 || !maps.Equal(got, want) {
		t.Errorf("first sweep aborted %d and left %v; want the unrecorded %s and the stray %s aborted, %v left", n, got, lostID, stray, want)
	}
	aborted := map[string]string{}
	for _, it := range []custody.Item{lost, resumed} {
		evs, err := r.l.Custody(r.ctx, it.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Type == custody.UploadAborted {
				aborted[e.Details["upload_id"]] = it.ID
			}
		}
	}
	if aborted[lostID] != lost.ID || aborted[stray] != resumed.ID || len(aborted) != 2 {
		t.Errorf("UPLOAD_ABORTED records: %v; want %s for %s and %s for %s", aborted, lostID, lost.ID, stray, resumed.ID)
	}

	r.cfg.Upload.AbandonedAfter = config.Duration{Duration: time.Millisecond}
	time.Sleep(1100 * time.Millisecond) // past the store's second-granular Initiated
	if n, err := r.u.Sweep(r.ctx); err != nil || n != 1 {
		t.Errorf("second sweep, abandoned_after 1ms: aborted %d (%v), want the foreign upload", n, err)
	}
	if got, want := left(), map[string]bool{key + " " + keep: true}; !maps.Equal(got, want) {
		t.Errorf("after the second sweep: %v, want only the recorded upload %v", got, want)
	}
}

// abortRefused is the real store, refusing every abort.
type abortRefused struct{ *partWatch }

func (abortRefused) AbortMultipart(context.Context, string, string) error {
	return errors.New("abort refused (injected)")
}

// TestSweepCountsOnlyWhatItAborted: an abort the store refuses is not
// counted (nor logged) as done: the probe's leftover and an abandoned
// foreign upload both stay in the bucket, and Sweep says it aborted
// nothing. Real versitygw behind a store whose aborts fail.
func TestSweepCountsOnlyWhatItAborted(t *testing.T) {
	r := newStreamRig(t)
	sum := digest.Bytes([]byte("x"))
	const foreign = "OTHER-CAM/2026/01/01/eeeeeeeeeeeeeeeeeeeeeeee.mp4"
	for _, key := range []string{objstore.PartProbeKey, foreign} {
		id, err := r.st.CreateMultipart(r.ctx, objstore.PutRequest{Key: key, Size: 1, SHA256: sum})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.st.AbortMultipart(context.Background(), key, id) })
	}
	r.cfg.Upload.AbandonedAfter = config.Duration{Duration: time.Millisecond}
	time.Sleep(1100 * time.Millisecond) // past the store's second-granular Initiated
	u := New(r.cfg, r.l, dirVault{r.dir}, abortRefused{r.watch}, "unit", nil)
	n, err := u.Sweep(r.ctx)
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	ups, err := r.st.ListMultipart(r.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 || len(ups) != 2 {
		t.Errorf("sweep with every abort refused says it aborted %d, %d uploads left; want 0 aborted, both left", n, len(ups))
	}
}
