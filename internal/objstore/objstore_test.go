package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
	"github.com/evidenced/evidenced/internal/objstore/storetest"
)

const mib = 1 << 20

func randBytes(n int) []byte { return storetest.RandBytes(42, n) }

func TestPartSize(t *testing.T) {
	tests := []struct {
		size int64
		want int64
	}{
		{0, 8 * mib},
		{1, 8 * mib},
		{64 * mib, 8 * mib},
		{8 * mib * 10000, 8 * mib},
		{8*mib*10000 + 1, 9 * mib},
		{100 << 30, 11 * mib}, // 100 GiB / 10,000 = 10.24 MiB → 11 MiB
		{objstore.MaxObjectLen, 5 << 30},
		{objstore.MaxObjectLen * 2, 5 << 30},
	}
	for _, tt := range tests {
		got := objstore.PartSize(tt.size)
		if got != tt.want {
			t.Errorf("PartSize(%d) = %d, want %d", tt.size, got, tt.want)
		}
		if got < objstore.MinPartSize || got > objstore.MaxPartSize {
			t.Errorf("PartSize(%d) = %d outside [%d, %d]", tt.size, got, objstore.MinPartSize, objstore.MaxPartSize)
		}
		if tt.size <= objstore.MaxObjectLen && objstore.PartCount(tt.size, got) > objstore.MaxParts {
			t.Errorf("PartSize(%d) = %d gives %d parts", tt.size, got, objstore.PartCount(tt.size, got))
		}
	}
}

func TestIsPermanent(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("connection reset"), false},
		{context.DeadlineExceeded, false},
		{fmt.Errorf("put k: %w", objstore.ErrNotFound), false},
		{fmt.Errorf("put k: %w", objstore.ErrAccessDenied), true},
		{fmt.Errorf("put k: %w", objstore.ErrNoSuchBucket), true},
		{fmt.Errorf("put k: %w", objstore.ErrChecksumMismatch), true},
		{fmt.Errorf("put k: %w", objstore.ErrInvalidRequest), true},
	}
	for _, tt := range tests {
		if got := objstore.IsPermanent(tt.err); got != tt.want {
			t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestComposite(t *testing.T) {
	data := randBytes(17*mib + 5)
	sums, err := objstore.PartSums(context.Background(), bytes.NewReader(data), int64(len(data)), 8*mib)
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 3 {
		t.Fatalf("%d parts, want 3", len(sums))
	}
	want := []digest.Sum{digest.Bytes(data[:8*mib]), digest.Bytes(data[8*mib : 16*mib]), digest.Bytes(data[16*mib:])}
	for i := range want {
		if sums[i] != want[i] {
			t.Errorf("part %d sum %s, want %s", i+1, sums[i].Hex(), want[i].Hex())
		}
	}
	cat := append(append(append([]byte{}, want[0][:]...), want[1][:]...), want[2][:]...)
	if got, w := objstore.Composite(sums), digest.Bytes(cat).Base64()+"-3"; got != w {
		t.Errorf("Composite = %s, want %s", got, w)
	}
	whole, sums2, err := objstore.HashParts(context.Background(), bytes.NewReader(data), int64(len(data)), 8*mib)
	if err != nil || whole != digest.Bytes(data) || len(sums2) != 3 || sums2[2] != want[2] {
		t.Errorf("HashParts: whole %s (want %s), %d parts, err %v", whole.Hex(), digest.Bytes(data).Hex(), len(sums2), err)
	}
	if _, err := objstore.PartSums(context.Background(), bytes.NewReader(data[:10]), int64(len(data)), 8*mib); err == nil {
		t.Error("PartSums of a short reader: no error")
	}
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

func TestVerify(t *testing.T) {
	ctx := context.Background()
	small := randBytes(4096)
	big := randBytes(9*mib + 77)
	damaged := bytes.Clone(big)
	damaged[0] ^= 1
	tests := []struct {
		name        string
		store       func() *memstore.Store
		data        []byte
		local       []byte // nil: no local copy
		corrupt     bool
		wantMethod  string
		wantErr     error
		overrideLen int64
	}{
		{name: "full object checksum", store: memstore.New, data: small, local: small, wantMethod: objstore.MethodStoreChecksum},
		{name: "full object checksum corrupt", store: memstore.New, data: small, corrupt: true, wantMethod: objstore.MethodStoreChecksum, wantErr: objstore.ErrChecksumMismatch},
		{name: "composite with local", store: mp, data: big, local: big, wantMethod: objstore.MethodCompositeChecksum},
		{name: "composite corrupt with local", store: mp, data: big, local: big, corrupt: true, wantMethod: objstore.MethodReadBack, wantErr: objstore.ErrChecksumMismatch},
		{name: "composite without local", store: mp, data: big, wantMethod: objstore.MethodReadBack},
		{name: "composite corrupt without local", store: mp, data: big, corrupt: true, wantMethod: objstore.MethodReadBack, wantErr: objstore.ErrChecksumMismatch},
		{name: "composite damaged local copy", store: mp, data: big, local: damaged, wantMethod: objstore.MethodReadBack},
		{name: "no checksum reported", store: noSums, data: small, local: small, wantMethod: objstore.MethodReadBack},
		{name: "no checksum reported corrupt", store: noSums, data: small, local: small, corrupt: true, wantMethod: objstore.MethodReadBack, wantErr: objstore.ErrChecksumMismatch},
		{name: "size differs", store: memstore.New, data: small, overrideLen: 4095, wantErr: objstore.ErrChecksumMismatch},
		{name: "empty object", store: memstore.New, data: []byte{}, local: []byte{}, wantMethod: objstore.MethodStoreChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.store()
			res, err := put(t, s, "k", tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if tt.corrupt && !s.Corrupt("k") {
				t.Fatal("Corrupt found no object")
			}
			var local io.ReaderAt
			if tt.local != nil {
				local = bytes.NewReader(tt.local)
			}
			size := int64(len(tt.data))
			if tt.overrideLen != 0 {
				size = tt.overrideLen
			}
			method, err := objstore.Verify(ctx, s, "k", res.VersionID, size, digest.Bytes(tt.data), local)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Verify error %v, want %v", err, tt.wantErr)
			}
			if tt.wantMethod != "" && method != tt.wantMethod {
				t.Errorf("method %q, want %q", method, tt.wantMethod)
			}
			if err != nil && !bytes.Contains([]byte(err.Error()), []byte(res.VersionID)) {
				t.Errorf("error does not name the version: %v", err)
			}
		})
	}
}

func TestVerifyStoreErrors(t *testing.T) {
	m := memstore.New()
	if _, err := objstore.Verify(context.Background(), m, "missing", "", 1, digest.Bytes(nil), nil); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("missing object: %v", err)
	}
	data := randBytes(10)
	res, _ := put(t, m, "k", data)
	m.SetHook(func(op, key string) error {
		if op == "open" {
			return errors.New("connection reset")
		}
		return nil
	})
	m.NoChecksums = true
	// Existing version still reports its checksum; a new one does not.
	res2, err := put(t, m, "k2", data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := objstore.Verify(context.Background(), m, "k2", res2.VersionID, 10, digest.Bytes(data), nil); err == nil || objstore.IsPermanent(err) {
		t.Errorf("read-back with a failing store: %v (want transient)", err)
	}
	if method, err := objstore.Verify(context.Background(), m, "k", res.VersionID, 10, digest.Bytes(data), nil); err != nil || method != objstore.MethodStoreChecksum {
		t.Errorf("store checksum: %s %v", method, err)
	}
}

func mp() *memstore.Store     { return &memstore.Store{MultipartThreshold: 8 * mib} }
func noSums() *memstore.Store { return &memstore.Store{NoChecksums: true} }
