package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
)

// countingLocal is a vault copy that counts the bytes read from it.
type countingLocal struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingLocal) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// TestVerifyKnown: part sums the caller already holds (from the pass that
// matched the whole SHA-256) prove a composite without reading the local
// copy; sums that do not fit the object are not used (the local copy is
// hashed as before); wrong sums never pass: the read-back decides.
func TestVerifyKnown(t *testing.T) {
	ctx := context.Background()
	big := randBytes(17*mib + 77) // 3 parts of 8 MiB
	want := digest.Bytes(big)
	ps := objstore.PartSize(int64(len(big)))
	whole, sums, err := objstore.HashParts(ctx, bytes.NewReader(big), int64(len(big)), ps)
	if err != nil || whole != want || len(sums) != 3 {
		t.Fatalf("hash parts: %v, %d parts", err, len(sums))
	}
	good := &objstore.KnownParts{Whole: whole, PartSize: ps, Sums: sums}
	wrongSum := &objstore.KnownParts{Whole: whole, PartSize: ps, Sums: append([]digest.Sum{sums[0], digest.Bytes([]byte("x"))}, sums[2:]...)}
	// 6 MiB parts also make 3 parts of this object, but not the ones Put cut.
	_, sums6, err := objstore.HashParts(ctx, bytes.NewReader(big), int64(len(big)), 6*mib)
	if err != nil || len(sums6) != 3 {
		t.Fatalf("hash 6 MiB parts: %v, %d parts", err, len(sums6))
	}
	otherSize := &objstore.KnownParts{Whole: whole, PartSize: 6 * mib, Sums: sums6}
	otherCount := &objstore.KnownParts{Whole: whole, PartSize: ps, Sums: sums[:2]}
	otherWhole := &objstore.KnownParts{Whole: digest.Bytes([]byte("other content")), PartSize: ps, Sums: sums}
	small := randBytes(4096)
	size := int64(len(big))

	tests := []struct {
		name       string
		store      func() *memstore.Store
		data       []byte
		corrupt    bool
		local      bool // a local copy at hand
		known      *objstore.KnownParts
		wantMethod string
		wantErr    error
		wantRead   int64 // bytes read from the local copy
	}{
		{name: "known sums, no local read", store: mp, data: big, local: true, known: good, wantMethod: objstore.MethodCompositeChecksum},
		{name: "known sums, no local copy", store: mp, data: big, known: good, wantMethod: objstore.MethodCompositeChecksum},
		{name: "known sums, store corrupt", store: mp, data: big, local: true, known: good, corrupt: true, wantMethod: objstore.MethodReadBack, wantErr: objstore.ErrChecksumMismatch},
		{name: "wrong known sum, store intact", store: mp, data: big, local: true, known: wrongSum, wantMethod: objstore.MethodReadBack},
		{name: "wrong known sum, store corrupt", store: mp, data: big, local: true, known: wrongSum, corrupt: true, wantMethod: objstore.MethodReadBack, wantErr: objstore.ErrChecksumMismatch},
		{name: "other part size: local hashed", store: mp, data: big, local: true, known: otherSize, wantMethod: objstore.MethodCompositeChecksum, wantRead: size},
		{name: "other part count: local hashed", store: mp, data: big, local: true, known: otherCount, wantMethod: objstore.MethodCompositeChecksum, wantRead: size},
		{name: "other content: local hashed", store: mp, data: big, local: true, known: otherWhole, wantMethod: objstore.MethodCompositeChecksum, wantRead: size},
		{name: "other part size, no local copy", store: mp, data: big, known: otherSize, wantMethod: objstore.MethodReadBack},
		{name: "no known sums: local hashed", store: mp, data: big, local: true, wantMethod: objstore.MethodCompositeChecksum, wantRead: size},
		{name: "no checksum reported", store: noSums, data: big, local: true, known: good, wantMethod: objstore.MethodReadBack},
		// A single put: the store's full-object checksum is the proof, the
		// local copy is not read with or without known sums.
		{name: "full object, no known sums", store: memstore.New, data: small, local: true, wantMethod: objstore.MethodStoreChecksum},
		{name: "full object, known sums ignored", store: memstore.New, data: small, local: true, known: good, wantMethod: objstore.MethodStoreChecksum},
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
			lc := &countingLocal{r: bytes.NewReader(tt.data)}
			var local io.ReaderAt
			if tt.local {
				local = lc
			}
			method, err := objstore.VerifyKnown(ctx, s, "k", res.VersionID, int64(len(tt.data)), digest.Bytes(tt.data), local, tt.known)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("VerifyKnown error %v, want %v", err, tt.wantErr)
			}
			if method != tt.wantMethod {
				t.Errorf("method %q, want %q", method, tt.wantMethod)
			}
			if err != nil && !strings.Contains(err.Error(), res.VersionID) {
				t.Errorf("error does not name the version: %v", err)
			}
			if got := lc.n.Load(); got != tt.wantRead {
				t.Errorf("read %d bytes of the local copy, want %d", got, tt.wantRead)
			}
		})
	}
}
