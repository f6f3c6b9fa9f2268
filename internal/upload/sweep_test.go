package upload

import (
	"testing"

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
