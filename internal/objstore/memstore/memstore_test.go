package memstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
)

const mib = 1 << 20

func randBytes(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func put(t *testing.T, s objstore.Store, key string, data []byte, mutate ...func(*objstore.PutRequest)) (objstore.PutResult, error) {
	t.Helper()
	req := objstore.PutRequest{
		Key: key, Body: bytes.NewReader(data), Size: int64(len(data)), SHA256: digest.Bytes(data),
		Tags:     map[string]string{"camera": "BWC-0001"},
		Metadata: map[string]string{"sha256": digest.Bytes(data).Hex()},
		LockMode: objstore.LockGovernance, RetainUntil: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for _, m := range mutate {
		m(&req)
	}
	return s.Put(context.Background(), req)
}

// TestMultipartDropsLock: the RGW quirk the uploader repairs after a
// multipart upload is reproduced, and only for multipart objects.
func TestMultipartDropsLock(t *testing.T) {
	ctx := context.Background()
	m := &memstore.Store{MultipartThreshold: 8 * mib, MultipartDropsLock: true, NoChecksums: true}
	big, small := randBytes(9*mib), randBytes(100)
	res, err := put(t, m, "big", big)
	if err != nil {
		t.Fatal(err)
	}
	if res.ETag != "" || res.ChecksumSHA256 != "" || res.Parts != 2 {
		t.Errorf("multipart put result %+v: want no ETag, no checksum, 2 parts", res)
	}
	info, err := m.Stat(ctx, "big", res.VersionID)
	if err != nil {
		t.Fatal(err)
	}
	if info.LockMode != "" || !info.RetainUntil.IsZero() || len(info.Tags) != 0 || info.ETag == "" || info.ChecksumSHA256 != "" {
		t.Errorf("multipart object %+v: want no lock, no tags, an ETag, no checksum", info)
	}
	res, err = put(t, m, "small", small)
	if err != nil {
		t.Fatal(err)
	}
	info, _ = m.Stat(ctx, "small", res.VersionID)
	if info.LockMode != objstore.LockGovernance || info.Tags["camera"] != "BWC-0001" || res.ETag == "" {
		t.Errorf("single put %+v, result %+v: want lock, tags and ETag kept", info, res)
	}
}

func TestMemoryPutStatOpen(t *testing.T) {
	ctx := context.Background()
	m := memstore.New()
	data := randBytes(1000)
	res, err := put(t, m, "a/b.mp4", data)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reused || res.VersionID == "" || res.ChecksumSHA256 != digest.Bytes(data).Base64() || res.Parts != 0 {
		t.Errorf("first put: %+v", res)
	}
	info, err := m.Stat(ctx, "a/b.mp4", res.VersionID)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != 1000 || info.SHA256 != digest.Bytes(data).Hex() || info.ChecksumType != objstore.ChecksumFullObject ||
		info.LockMode != objstore.LockGovernance || !info.RetainUntil.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) ||
		info.Tags["camera"] != "BWC-0001" {
		t.Errorf("stat: %+v", info)
	}
	rc, err := m.Open(ctx, "a/b.mp4", "")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Error("open returned different bytes")
	}
	if _, err := m.Stat(ctx, "nope", ""); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("stat missing: %v", err)
	}
	if _, err := m.Stat(ctx, "a/b.mp4", "v999"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("stat missing version: %v", err)
	}
}

func TestMemoryReuseAndVersions(t *testing.T) {
	m := memstore.New()
	data := randBytes(100)
	first, err := put(t, m, "k", data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := put(t, m, "k", data)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Reused || again.VersionID != first.VersionID || m.Versions("k") != 1 || m.Puts() != 1 {
		t.Errorf("second put: %+v, %d versions", again, m.Versions("k"))
	}
	other := randBytes(101)
	third, err := put(t, m, "k", other)
	if err != nil {
		t.Fatal(err)
	}
	if third.Reused || third.VersionID == first.VersionID || m.Versions("k") != 2 {
		t.Errorf("different content: %+v, %d versions", third, m.Versions("k"))
	}
	if n, _ := m.CountVersions(context.Background(), ""); n != 2 {
		t.Errorf("CountVersions = %d, want 2", n)
	}
}

func TestMemoryChecksumMismatch(t *testing.T) {
	m := memstore.New()
	data := randBytes(100)
	_, err := put(t, m, "k", data, func(r *objstore.PutRequest) { r.SHA256 = digest.Bytes([]byte("other")) })
	if !errors.Is(err, objstore.ErrChecksumMismatch) || !objstore.IsPermanent(err) {
		t.Errorf("wrong sha256: err %v", err)
	}
	if m.Versions("k") != 0 {
		t.Error("a refused put left a version behind")
	}
	// RGW reports no checksum but checks the signed payload hash: a wrong
	// SHA-256 is refused there too.
	m.NoChecksums = true
	if _, err := put(t, m, "k", data, func(r *objstore.PutRequest) { r.SHA256 = digest.Bytes([]byte("other")) }); !errors.Is(err, objstore.ErrChecksumMismatch) {
		t.Errorf("NoChecksums store, wrong sha256: err %v", err)
	}
	if m.Versions("k") != 0 {
		t.Error("a refused put left a version behind (NoChecksums)")
	}
}

// TestMemoryLostResponse is the crash-after-write case: the version is
// stored, the caller sees an error, and the retry must reuse the version.
func TestMemoryLostResponse(t *testing.T) {
	m := memstore.New()
	lost := errors.New("connection reset")
	m.SetHook(func(op, key string) error {
		if op == "put-stored" {
			return lost
		}
		return nil
	})
	data := randBytes(100)
	if _, err := put(t, m, "k", data); !errors.Is(err, lost) {
		t.Fatalf("put: %v", err)
	}
	m.SetHook(nil)
	res, err := put(t, m, "k", data)
	if err != nil || !res.Reused || m.Versions("k") != 1 {
		t.Errorf("retry: %+v %v, %d versions", res, err, m.Versions("k"))
	}
}

func TestMemoryFail(t *testing.T) {
	m := memstore.New()
	m.Fail(objstore.ErrAccessDenied)
	_, err := put(t, m, "k", randBytes(10))
	if !errors.Is(err, objstore.ErrAccessDenied) {
		t.Errorf("put: %v", err)
	}
	if _, err := m.Stat(context.Background(), "k", ""); !errors.Is(err, objstore.ErrAccessDenied) {
		t.Errorf("stat: %v", err)
	}
	m.Fail(nil)
	if _, err := put(t, m, "k", randBytes(10)); err != nil {
		t.Errorf("after Fail(nil): %v", err)
	}
}

func TestMemoryMultipart(t *testing.T) {
	m := &memstore.Store{MultipartThreshold: 8 * mib}
	data := randBytes(9 * mib)
	res, err := put(t, m, "big", data)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := objstore.CompositeChecksum(context.Background(), bytes.NewReader(data), int64(len(data)), 8*mib)
	if res.Parts != 2 || res.ChecksumSHA256 != want {
		t.Errorf("multipart put: %+v, want checksum %s", res, want)
	}
	info, _ := m.Stat(context.Background(), "big", "")
	if info.ChecksumType != objstore.ChecksumComposite {
		t.Errorf("checksum type %q", info.ChecksumType)
	}
}

func TestMemoryRetainer(t *testing.T) {
	ctx := context.Background()
	m := memstore.New()
	data := []byte("recording")
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	res, err := m.Put(ctx, objstore.PutRequest{Key: "k", Body: bytes.NewReader(data), Size: int64(len(data)), SHA256: digest.Bytes(data), LockMode: objstore.LockGovernance, RetainUntil: until})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.PutRetention(ctx, "k", res.VersionID, objstore.LockCompliance, until.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := m.PutRetention(ctx, "k", res.VersionID, objstore.LockCompliance, until); !errors.Is(err, objstore.ErrRetentionShortened) {
		t.Errorf("shorten: %v", err)
	}
	if err := m.PutLegalHold(ctx, "k", res.VersionID, true); err != nil {
		t.Fatal(err)
	}
	info, _ := m.Stat(ctx, "k", res.VersionID)
	if info.LockMode != objstore.LockCompliance || !info.RetainUntil.Equal(until.Add(time.Hour)) || !info.LegalHold {
		t.Errorf("after changes: %+v", info)
	}
	if err := m.PutRetention(ctx, "missing", "", objstore.LockGovernance, until); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
}
