package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
)

// countingReaderAt counts the bytes read through it: how often the body of
// an upload is read on this host.
type countingReaderAt struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// TestBodyReadOnce: with the body's SHA-256 handed to the SigV4 signer, the
// SDK no longer reads (and hashes) a body before sending it over plain HTTP:
// a single put and a part are read exactly once, by the transport, and the
// store's own multipart Put reads the object twice (its whole-object check,
// then the parts on the wire) instead of three times.
func TestBodyReadOnce(t *testing.T) {
	e := setup(t, "")
	ctx := context.Background()

	t.Run("put", func(t *testing.T) {
		data := randBytes(21, 3*mib+11)
		req := request("once/single.mp4", data, objstore.LockGovernance, time.Now().Add(time.Hour))
		body := &countingReaderAt{r: bytes.NewReader(data)}
		req.Body = body
		res, err := e.st.Put(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Parts != 0 {
			t.Fatalf("put of %d bytes went multipart: %+v", len(data), res)
		}
		t.Logf("PutObject of %d bytes read %d bytes of the body", len(data), body.n.Load())
		if got := body.n.Load(); got != int64(len(data)) {
			t.Errorf("PutObject of %d bytes read %d bytes of the body, want %d (one pass)", len(data), got, len(data))
		}
	})

	t.Run("part", func(t *testing.T) {
		data := randBytes(22, objstore.MinPartSize+5)
		req := request("once/part.mp4", data, "", time.Time{})
		id, err := e.st.CreateMultipart(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		defer e.st.AbortMultipart(context.WithoutCancel(ctx), req.Key, id)
		ps := objstore.PartSize(int64(len(data)))
		body := &countingReaderAt{r: bytes.NewReader(data)}
		if _, err := e.st.UploadPart(ctx, req.Key, id, 1, body, 0, ps, digest.Bytes(data[:ps])); err != nil {
			t.Fatal(err)
		}
		t.Logf("UploadPart of %d bytes read %d bytes of the body", ps, body.n.Load())
		if got := body.n.Load(); got != ps {
			t.Errorf("UploadPart of %d bytes read %d bytes of the body, want %d (one pass)", ps, got, ps)
		}
	})

	t.Run("multipart put", func(t *testing.T) {
		data := randBytes(23, 2*objstore.MinPartSize+7)
		req := request("once/multi.mp4", data, "", time.Time{})
		body := &countingReaderAt{r: bytes.NewReader(data)}
		req.Body = body
		res, err := e.st.Put(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Parts != 3 {
			t.Fatalf("put of %d bytes: %+v, want 3 parts", len(data), res)
		}
		t.Logf("multipart Put of %d bytes read %d bytes of the body", len(data), body.n.Load())
		if got := body.n.Load(); got != 2*int64(len(data)) {
			t.Errorf("multipart Put of %d bytes read %d bytes of the body, want %d (whole-object check + send)", len(data), got, 2*len(data))
		}
	})
}

// TestWrongKnownSumRefused: with the known SHA-256 now also the signed
// payload hash, a body sent with a sum it does not have is still refused by
// the server (VersityGW checks x-amz-content-sha256 against the body first,
// XAmzContentSHA256Mismatch, then x-amz-checksum-sha256, BadDigest), mapped
// to ErrChecksumMismatch, naming the key, and leaves nothing behind.
func TestWrongKnownSumRefused(t *testing.T) {
	e := setup(t, "")
	ctx := context.Background()
	wrong := digest.Bytes([]byte("not this body"))

	t.Run("put", func(t *testing.T) {
		data := randBytes(31, 2*mib+3)
		req := request("wrong/single.mp4", data, objstore.LockGovernance, time.Now().Add(time.Hour))
		req.SHA256 = wrong
		req.Metadata["sha256"] = wrong.Hex()
		_, err := e.st.Put(ctx, req)
		if !errors.Is(err, objstore.ErrChecksumMismatch) || !objstore.IsPermanent(err) || !strings.Contains(err.Error(), req.Key) {
			t.Errorf("put with a wrong known sha256: %v, want ErrChecksumMismatch naming %s", err, req.Key)
		}
		if n, err := e.st.CountVersions(ctx, "wrong/"); err != nil || n != 0 {
			t.Errorf("refused put left %d versions (%v)", n, err)
		}
	})

	t.Run("part", func(t *testing.T) {
		data := randBytes(32, objstore.MinPartSize)
		req := request("wrong/part.mp4", data, "", time.Time{})
		id, err := e.st.CreateMultipart(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		defer e.st.AbortMultipart(context.WithoutCancel(ctx), req.Key, id)
		_, err = e.st.UploadPart(ctx, req.Key, id, 1, bytes.NewReader(data), 0, int64(len(data)), wrong)
		if !errors.Is(err, objstore.ErrChecksumMismatch) || !strings.Contains(err.Error(), req.Key) {
			t.Errorf("part with a wrong known sha256: %v, want ErrChecksumMismatch naming %s", err, req.Key)
		}
		if parts, err := e.st.ListParts(ctx, req.Key, id); err != nil || len(parts) != 0 {
			t.Errorf("refused part is held by the store: %+v %v", parts, err)
		}
	})

	// The sum handed to the signer is what the server checks the body
	// against: signed with a wrong payload hash but the right
	// x-amz-checksum-sha256, a body is refused as XAmzContentSHA256Mismatch.
	// (Had the SDK hashed the body itself, the request would have passed.)
	t.Run("signed payload hash is checked", func(t *testing.T) {
		data := randBytes(33, 1*mib+1)
		sum := digest.Bytes(data)
		in := func() *s3.PutObjectInput {
			return &s3.PutObjectInput{
				Bucket: aws.String(e.bucket), Key: aws.String("wrong/signed.bin"),
				Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
				ChecksumAlgorithm: types.ChecksumAlgorithmSha256, ChecksumSHA256: aws.String(sum.Base64()),
			}
		}
		_, err := e.st.Client().PutObject(ctx, in(), s3store.WithPayloadSHA256(wrong))
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "XAmzContentSHA256Mismatch" {
			t.Errorf("put signed with a wrong payload hash: %v, want XAmzContentSHA256Mismatch", err)
		}
		if _, err := e.st.Client().PutObject(ctx, in(), s3store.WithPayloadSHA256(sum)); err != nil {
			t.Errorf("put signed with the right payload hash: %v", err)
		}
	})
}
