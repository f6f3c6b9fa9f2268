package memstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
	"github.com/evidenced/evidenced/internal/objstore/storetest"
)

const mib = 1 << 20

func put(t *testing.T, s objstore.Store, key string, data []byte, mutate ...func(*objstore.PutRequest)) (objstore.PutResult, error) {
	t.Helper()
	req := storetest.Request(key, data)
	for _, m := range mutate {
		m(&req)
	}
	return s.Put(context.Background(), req)
}

func randBytes(n int) []byte { return storetest.RandBytes(7, n) }

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

func TestChecksumMismatch(t *testing.T) {
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

// TestLostResponse is the crash-after-write case: the version is
// stored, the caller sees an error, and the retry must reuse the version.
func TestLostResponse(t *testing.T) {
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

func TestFail(t *testing.T) {
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

// TestContract runs the store contract against the stand-in, with the
// quirks it can reproduce both off (S3 as documented, VersityGW) and on
// (Ceph RGW).
func TestContract(t *testing.T) {
	t.Run("S3", func(t *testing.T) {
		storetest.Run(t, storetest.Quirks{}, func(t *testing.T) objstore.Store {
			return &memstore.Store{MultipartThreshold: 8 * mib}
		})
	})
	t.Run("RGW", func(t *testing.T) {
		q := storetest.Quirks{NoChecksums: true, MultipartDropsLock: true, MultipartNoETag: true}
		storetest.Run(t, q, func(t *testing.T) objstore.Store {
			return &memstore.Store{MultipartThreshold: 8 * mib, NoChecksums: true, MultipartDropsLock: true}
		})
	})
}
