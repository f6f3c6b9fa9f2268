package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
)

// The resumable multipart primitives against the real server: a part the
// server holds is listed with its SHA-256, a part whose bytes do not match
// its checksum is refused, an upload survives in the listing until
// completed or aborted, and the completed object verifies by composite.
func TestMultipartPrimitives(t *testing.T) {
	e := setup(t, "p/")
	ctx := context.Background()
	size := 2*objstore.MinPartSize + 1234
	data := randBytes(42, size)
	ps := objstore.PartSize(int64(size))
	whole, sums, err := objstore.HashParts(ctx, bytes.NewReader(data), int64(size), ps)
	if err != nil || whole != digest.Bytes(data) || len(sums) != 3 {
		t.Fatalf("hash parts: %v %d", err, len(sums))
	}
	req := request("cam/mp.mp4", data, objstore.LockGovernance, time.Now().Add(24*time.Hour).Truncate(time.Second))
	if e.st.MultipartThreshold() != 8*mib {
		t.Errorf("threshold %d", e.st.MultipartThreshold())
	}
	if _, ok, err := e.st.Existing(ctx, req); ok || err != nil {
		t.Fatalf("existing before any upload: %v %v", ok, err)
	}
	id, err := e.st.CreateMultipart(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.NewReader(data)
	// Part 2 with the wrong checksum is refused.
	if _, err := e.st.UploadPart(ctx, req.Key, id, 2, body, ps, ps, sums[0]); !errors.Is(err, objstore.ErrChecksumMismatch) {
		t.Errorf("part with a wrong checksum: %v, want ErrChecksumMismatch", err)
	}
	p1, err := e.st.UploadPart(ctx, req.Key, id, 1, body, 0, ps, sums[0])
	if err != nil {
		t.Fatal(err)
	}
	parts, err := e.st.ListParts(ctx, req.Key, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || parts[0].Number != 1 || parts[0].Size != ps || parts[0].ChecksumSHA256 != sums[0].Base64() || parts[0].ETag == "" {
		t.Errorf("list parts after part 1: %+v", parts)
	}
	ups, err := e.st.ListMultipart(ctx, "")
	if err != nil || len(ups) != 1 || ups[0].UploadID != id || ups[0].Key != req.Key {
		t.Errorf("list multipart: %+v %v", ups, err)
	}
	all := []objstore.Part{p1}
	for n := 2; n <= 3; n++ {
		off := int64(n-1) * ps
		p, err := e.st.UploadPart(ctx, req.Key, id, n, body, off, min(ps, int64(size)-off), sums[n-1])
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p)
	}
	res, err := e.st.CompleteMultipart(ctx, req.Key, id, all)
	if err != nil {
		t.Fatal(err)
	}
	if res.ChecksumSHA256 != objstore.Composite(sums) {
		t.Errorf("complete checksum %q, want %q", res.ChecksumSHA256, objstore.Composite(sums))
	}
	if m, err := objstore.Verify(ctx, e.st, req.Key, res.VersionID, int64(size), whole, bytes.NewReader(data)); err != nil || m != objstore.MethodCompositeChecksum {
		t.Errorf("verify: %s %v", m, err)
	}
	if _, err := e.st.ListParts(ctx, req.Key, id); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("list parts of a completed upload: %v, want ErrNotFound", err)
	}
	if got, ok, err := e.st.Existing(ctx, req); !ok || err != nil || got.VersionID != res.VersionID || !got.Reused {
		t.Errorf("existing after complete: %+v %v %v", got, ok, err)
	}
	// An upload aborted is gone from the listing.
	id2, err := e.st.CreateMultipart(ctx, request("cam/other.mp4", data, "", time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.AbortMultipart(ctx, "cam/other.mp4", id2); err != nil {
		t.Fatal(err)
	}
	if ups, err := e.st.ListMultipart(ctx, ""); err != nil || len(ups) != 0 {
		t.Errorf("uploads after abort: %+v %v", ups, err)
	}
}

// TestVerifyKnownOnServer: against the server's own composite checksum, the
// part sums from the hashing pass prove a multipart object without reading
// the local copy, and a wrong sum among them falls to a read-back that
// decides (here: the object is intact).
func TestVerifyKnownOnServer(t *testing.T) {
	e := setup(t, "")
	ctx := context.Background()
	size := 2*objstore.MinPartSize + 99
	data := randBytes(51, size)
	req := request("known/mp.mp4", data, "", time.Time{})
	res, err := e.st.Put(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	ps := objstore.PartSize(int64(size))
	whole, sums, err := objstore.HashParts(ctx, bytes.NewReader(data), int64(size), ps)
	if err != nil || res.Parts != len(sums) {
		t.Fatalf("hash parts: %v; put %+v", err, res)
	}
	local := &countingReaderAt{r: bytes.NewReader(data)}
	known := &objstore.KnownParts{Whole: whole, PartSize: ps, Sums: sums}
	if m, err := objstore.VerifyKnown(ctx, e.st, req.Key, res.VersionID, int64(size), whole, local, known); err != nil || m != objstore.MethodCompositeChecksum {
		t.Errorf("verify with known sums: %s %v, want %s", m, err, objstore.MethodCompositeChecksum)
	}
	wrong := &objstore.KnownParts{Whole: whole, PartSize: ps, Sums: append([]digest.Sum{digest.Bytes(nil)}, sums[1:]...)}
	if m, err := objstore.VerifyKnown(ctx, e.st, req.Key, res.VersionID, int64(size), whole, local, wrong); err != nil || m != objstore.MethodReadBack {
		t.Errorf("verify with a wrong known sum: %s %v, want %s", m, err, objstore.MethodReadBack)
	}
	if n := local.n.Load(); n != 0 {
		t.Errorf("verify with known sums read %d bytes of the local copy, want 0", n)
	}
	// Sums of other content are not used against want: the local copy is.
	other := digest.Bytes([]byte("other"))
	if m, err := objstore.VerifyKnown(ctx, e.st, req.Key, res.VersionID, int64(size), other, nil, known); !errors.Is(err, objstore.ErrChecksumMismatch) || m != objstore.MethodReadBack {
		t.Errorf("verify against another sha256 with these sums: %s %v, want a read-back mismatch", m, err)
	}
}
