package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
	"github.com/evidenced/evidenced/internal/objstore/storetest"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

const mib = 1 << 20

var randBytes = storetest.RandBytes

type env struct {
	srv    *s3srv.Server
	bucket string
	st     *s3store.Store
}

func setup(t *testing.T, prefix string) env {
	t.Helper()
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	st, err := s3store.New(context.Background(), s3store.Config{
		Endpoint: srv.Endpoint, Bucket: bucket, Region: "us-east-1", PathStyle: true,
		Prefix: prefix, MultipartThreshold: 8 * mib,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return env{srv, bucket, st}
}

func request(key string, data []byte, mode string, until time.Time) objstore.PutRequest {
	sum := digest.Bytes(data)
	return objstore.PutRequest{
		Key: key, Body: bytes.NewReader(data), Size: int64(len(data)), SHA256: sum,
		Tags:        map[string]string{"camera": "BWC-0001", "assigned_to": "officer 4711", "sha256": sum.Hex()},
		Metadata:    map[string]string{"sha256": sum.Hex(), "item-id": "item-1"},
		ContentType: "video/mp4", LockMode: mode, RetainUntil: until,
	}
}

func TestPutStatVerify(t *testing.T) {
	e := setup(t, "evidence/")
	ctx := context.Background()
	until := time.Now().UTC().Add(48 * time.Hour).Truncate(time.Second)
	tests := []struct {
		name       string
		size       int
		mode       string
		wantParts  int
		wantType   string
		wantMethod string // with the local copy at hand
	}{
		{"single", 3*mib + 11, objstore.LockGovernance, 0, objstore.ChecksumFullObject, objstore.MethodStoreChecksum},
		{"multipart", 17*mib + 5, objstore.LockCompliance, 3, objstore.ChecksumComposite, objstore.MethodCompositeChecksum},
		{"empty", 0, objstore.LockGovernance, 0, objstore.ChecksumFullObject, objstore.MethodStoreChecksum},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := randBytes(uint64(i), tt.size)
			key := "cam/" + tt.name + ".mp4"
			res, err := e.st.Put(ctx, request(key, data, tt.mode, until))
			if err != nil {
				t.Fatal(err)
			}
			if res.Reused || res.VersionID == "" || res.Parts != tt.wantParts {
				t.Errorf("put: %+v, want %d parts", res, tt.wantParts)
			}
			if tt.wantParts > 0 && !strings.HasSuffix(res.ChecksumSHA256, fmt.Sprintf("-%d", tt.wantParts)) {
				t.Errorf("multipart put checksum %q, want a composite of %d parts", res.ChecksumSHA256, tt.wantParts)
			}
			if tt.wantParts == 0 && res.ChecksumSHA256 != digest.Bytes(data).Base64() {
				t.Errorf("put checksum %q, want %q", res.ChecksumSHA256, digest.Bytes(data).Base64())
			}

			info, err := e.st.Stat(ctx, key, res.VersionID)
			if err != nil {
				t.Fatal(err)
			}
			sum := digest.Bytes(data)
			if info.Key != key || info.VersionID != res.VersionID || info.Size != int64(tt.size) || info.SHA256 != sum.Hex() ||
				info.Metadata["item-id"] != "item-1" || info.ChecksumType != tt.wantType {
				t.Errorf("stat: %+v", info)
			}
			if info.LockMode != tt.mode || !info.RetainUntil.Equal(until) {
				t.Errorf("stat lock: %s until %s, want %s until %s", info.LockMode, info.RetainUntil, tt.mode, until)
			}
			if info.Tags["camera"] != "BWC-0001" || info.Tags["assigned_to"] != "officer 4711" || info.Tags["sha256"] != sum.Hex() {
				t.Errorf("stat tags: %v", info.Tags)
			}
			if info.LegalHold {
				t.Error("legal hold on, never set")
			}

			// The key is stored under the prefix.
			if _, err := e.srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(e.bucket), Key: aws.String("evidence/" + key)}); err != nil {
				t.Errorf("object not under the prefix: %v", err)
			}

			method, err := objstore.Verify(ctx, e.st, key, res.VersionID, int64(tt.size), sum, bytes.NewReader(data))
			if err != nil || method != tt.wantMethod {
				t.Errorf("verify with local copy: %s, %v; want %s", method, err, tt.wantMethod)
			}
			if tt.wantParts > 0 {
				method, err := objstore.Verify(ctx, e.st, key, res.VersionID, int64(tt.size), sum, nil)
				if err != nil || method != objstore.MethodReadBack {
					t.Errorf("verify without local copy: %s, %v; want read-back", method, err)
				}
			}
			wrong := digest.Bytes([]byte("not it"))
			if _, err := objstore.Verify(ctx, e.st, key, res.VersionID, int64(tt.size), wrong, nil); !errors.Is(err, objstore.ErrChecksumMismatch) {
				t.Errorf("verify against the wrong sha256: %v", err)
			}

			rc, err := e.st.Open(ctx, key, res.VersionID)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("open: %d bytes, err %v; content equal %v", len(got), err, bytes.Equal(got, data))
			}

			// A retry of the same put reuses the version.
			again, err := e.st.Put(ctx, request(key, data, tt.mode, until))
			if err != nil {
				t.Fatal(err)
			}
			if !again.Reused || again.VersionID != res.VersionID || again.Parts != tt.wantParts {
				t.Errorf("second put: %+v, first %+v", again, res)
			}
			if n, err := e.st.CountVersions(ctx, key); err != nil || n != 1 {
				t.Errorf("CountVersions(%s) = %d, %v; want 1", key, n, err)
			}
		})
	}
	if n, err := e.st.CountVersions(ctx, ""); err != nil || n != len(tests) {
		t.Errorf("CountVersions = %d, %v; want %d", n, err, len(tests))
	}
}

func TestNewContentIsNewVersion(t *testing.T) {
	e := setup(t, "")
	ctx := context.Background()
	a, b := randBytes(1, 1000), randBytes(2, 1000)
	ra, err := e.st.Put(ctx, request("k", a, "", time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	rb, err := e.st.Put(ctx, request("k", b, "", time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	if rb.Reused || rb.VersionID == ra.VersionID {
		t.Errorf("different content reused a version: %+v %+v", ra, rb)
	}
	if n, _ := e.st.CountVersions(ctx, "k"); n != 2 {
		t.Errorf("%d versions, want 2", n)
	}
	info, err := e.st.Stat(ctx, "k", ra.VersionID)
	if err != nil || info.SHA256 != digest.Bytes(a).Hex() || info.LockMode != "" {
		t.Errorf("old version: %+v %v", info, err)
	}
}

func TestWrongChecksumRefused(t *testing.T) {
	e := setup(t, "")
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	for _, size := range []int{1000, 9 * mib} {
		data := randBytes(3, size)
		req := request("bad", data, objstore.LockGovernance, until)
		req.SHA256 = digest.Bytes([]byte("something else"))
		req.Metadata["sha256"] = req.SHA256.Hex()
		_, err := e.st.Put(ctx, req)
		if !errors.Is(err, objstore.ErrChecksumMismatch) || !objstore.IsPermanent(err) || !strings.Contains(err.Error(), "bad") {
			t.Errorf("size %d: wrong sha256 put: %v", size, err)
		}
	}
	if n, err := e.st.CountVersions(ctx, ""); err != nil || n != 0 {
		t.Errorf("refused puts left %d versions (%v)", n, err)
	}
	uploads, err := e.srv.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(e.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(uploads.Uploads) != 0 {
		t.Errorf("%d multipart uploads left behind, want aborted", len(uploads.Uploads))
	}
}

func TestErrors(t *testing.T) {
	e := setup(t, "")
	ctx := context.Background()
	if _, err := e.st.Stat(ctx, "missing", ""); !errors.Is(err, objstore.ErrNotFound) || objstore.IsPermanent(err) {
		t.Errorf("stat missing: %v", err)
	}
	if _, err := e.st.Open(ctx, "missing", ""); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("open missing: %v", err)
	}
	nob, err := s3store.New(ctx, s3store.Config{Endpoint: e.srv.Endpoint, Bucket: "no-such-bucket-here", Region: "us-east-1", PathStyle: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nob.Put(ctx, request("k", []byte("x"), "", time.Time{})); !errors.Is(err, objstore.ErrNoSuchBucket) || !objstore.IsPermanent(err) {
		t.Errorf("put to a missing bucket: %v", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
	bad, err := s3store.New(ctx, s3store.Config{Endpoint: e.srv.Endpoint, Bucket: e.bucket, Region: "us-east-1", PathStyle: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Put(ctx, request("k", []byte("x"), "", time.Time{})); !errors.Is(err, objstore.ErrAccessDenied) || !objstore.IsPermanent(err) {
		t.Errorf("put with a wrong secret: %v", err)
	}
}

func TestEnsureBucket(t *testing.T) {
	srv := s3srv.Start(t)
	srv.SetEnv(t)
	ctx := context.Background()
	newStore := func(bucket string) *s3store.Store {
		st, err := s3store.New(ctx, s3store.Config{Endpoint: srv.Endpoint, Bucket: bucket, Region: "us-east-1", PathStyle: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := newStore("evt-ensure")
	for i := range 2 { // creates, then finds it fine
		if err := st.EnsureBucket(ctx); err != nil {
			t.Fatalf("EnsureBucket #%d: %v", i+1, err)
		}
	}
	c := srv.Client()
	lc, err := c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String("evt-ensure")})
	if err != nil || lc.ObjectLockConfiguration.ObjectLockEnabled != types.ObjectLockEnabledEnabled {
		t.Errorf("object lock after EnsureBucket: %+v %v", lc, err)
	}
	v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("evt-ensure")})
	if err != nil || v.Status != types.BucketVersioningStatusEnabled {
		t.Errorf("versioning after EnsureBucket: %+v %v", v, err)
	}

	// A plain bucket (no lock, no versioning) is refused by name.
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("evt-plain")}); err != nil {
		t.Fatal(err)
	}
	err = newStore("evt-plain").EnsureBucket(ctx)
	if err == nil || !strings.Contains(err.Error(), "evt-plain") {
		t.Errorf("EnsureBucket on a plain bucket: %v", err)
	}
}

// TestServerRestart: objects survive a killed and restarted server, and the
// retry after it reuses the version.
func TestServerRestart(t *testing.T) {
	e := setup(t, "")
	ctx := context.Background()
	data := randBytes(9, 2000)
	res, err := e.st.Put(ctx, request("k", data, "", time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Kill()
	if _, err := e.st.Stat(ctx, "k", ""); err == nil || objstore.IsPermanent(err) {
		t.Errorf("stat with the server down: %v (want a transient error)", err)
	}
	e.srv.Restart(t)
	again, err := e.st.Put(ctx, request("k", data, "", time.Time{}))
	if err != nil || !again.Reused || again.VersionID != res.VersionID {
		t.Errorf("put after restart: %+v %v", again, err)
	}
}

// changing returns different bytes once the first size bytes have been
// read: a vault copy that changes between hashing and sending.
type changing struct {
	r    io.ReaderAt
	size int64
	read atomic.Int64
}

func (c *changing) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	if c.read.Add(int64(n)) > c.size {
		for i := range p[:n] {
			p[i] ^= 0x5a
		}
	}
	return n, err
}

// TestPartChecksumCheckedByServer: parts whose bytes differ from the
// SHA-256 sent with them are refused by the server, and the upload aborted.
func TestPartChecksumCheckedByServer(t *testing.T) {
	e := setup(t, "")
	ctx := context.Background()
	data := randBytes(4, 9*mib)
	req := request("changing", data, "", time.Time{})
	req.Body = &changing{r: bytes.NewReader(data), size: int64(len(data))}
	_, err := e.st.Put(ctx, req)
	if !errors.Is(err, objstore.ErrChecksumMismatch) {
		t.Fatalf("put of a body that changed after hashing: %v", err)
	}
	if n, _ := e.st.CountVersions(ctx, ""); n != 0 {
		t.Errorf("%d versions after a refused multipart upload", n)
	}
	uploads, err := e.srv.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(e.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(uploads.Uploads) != 0 {
		t.Errorf("%d multipart uploads left behind, want aborted", len(uploads.Uploads))
	}
}
