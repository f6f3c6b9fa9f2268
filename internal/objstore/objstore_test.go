package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
)

const mib = 1 << 20

func randBytes(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

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

func TestMemoryPutStatOpen(t *testing.T) {
	ctx := context.Background()
	m := objstore.NewMemory()
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
	m := objstore.NewMemory()
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
	m := objstore.NewMemory()
	data := randBytes(100)
	_, err := put(t, m, "k", data, func(r *objstore.PutRequest) { r.SHA256 = digest.Bytes([]byte("other")) })
	if !errors.Is(err, objstore.ErrChecksumMismatch) || !objstore.IsPermanent(err) {
		t.Errorf("wrong sha256: err %v", err)
	}
	if m.Versions("k") != 0 {
		t.Error("a refused put left a version behind")
	}
	m.NoChecksums = true
	if _, err := put(t, m, "k", data, func(r *objstore.PutRequest) { r.SHA256 = digest.Bytes([]byte("other")) }); err != nil {
		t.Errorf("NoChecksums store refused: %v", err)
	}
}

// TestMemoryLostResponse is the crash-after-write case: the version is
// stored, the caller sees an error, and the retry must reuse the version.
func TestMemoryLostResponse(t *testing.T) {
	m := objstore.NewMemory()
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
	m := objstore.NewMemory()
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
	m := &objstore.Memory{MultipartThreshold: 8 * mib}
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

func TestVerify(t *testing.T) {
	ctx := context.Background()
	small := randBytes(4096)
	big := randBytes(9*mib + 77)
	damaged := bytes.Clone(big)
	damaged[0] ^= 1
	tests := []struct {
		name        string
		store       func() *objstore.Memory
		data        []byte
		local       []byte // nil: no local copy
		corrupt     bool
		wantMethod  string
		wantErr     error
		overrideLen int64
	}{
		{name: "full object checksum", store: objstore.NewMemory, data: small, local: small, wantMethod: objstore.MethodStoreChecksum},
		{name: "full object checksum corrupt", store: objstore.NewMemory, data: small, corrupt: true, wantMethod: objstore.MethodStoreChecksum, wantErr: objstore.ErrChecksumMismatch},
		{name: "composite with local", store: mp, data: big, local: big, wantMethod: objstore.MethodCompositeChecksum},
		{name: "composite corrupt with local", store: mp, data: big, local: big, corrupt: true, wantMethod: objstore.MethodReadBack, wantErr: objstore.ErrChecksumMismatch},
		{name: "composite without local", store: mp, data: big, wantMethod: objstore.MethodReadBack},
		{name: "composite corrupt without local", store: mp, data: big, corrupt: true, wantMethod: objstore.MethodReadBack, wantErr: objstore.ErrChecksumMismatch},
		{name: "composite damaged local copy", store: mp, data: big, local: damaged, wantMethod: objstore.MethodReadBack},
		{name: "no checksum reported", store: noSums, data: small, local: small, wantMethod: objstore.MethodReadBack},
		{name: "no checksum reported corrupt", store: noSums, data: small, local: small, corrupt: true, wantMethod: objstore.MethodReadBack, wantErr: objstore.ErrChecksumMismatch},
		{name: "size differs", store: objstore.NewMemory, data: small, overrideLen: 4095, wantErr: objstore.ErrChecksumMismatch},
		{name: "empty object", store: objstore.NewMemory, data: []byte{}, local: []byte{}, wantMethod: objstore.MethodStoreChecksum},
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
	m := objstore.NewMemory()
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

func mp() *objstore.Memory     { return &objstore.Memory{MultipartThreshold: 8 * mib} }
func noSums() *objstore.Memory { return &objstore.Memory{NoChecksums: true} }
