// Package digest is the one place evidenced constructs its content hash.
//
// Every SHA-256 in the project (the hash taken while copying off a camera, the
// cold read-back of the vault, the object-store checksum, the ledger chain) is
// built by New, so the implementation choice is made once and kept honest by
// the benchmark beside it (digest_test.go). Both candidates use the CPU's SHA
// extensions on amd64; sha256-simd is kept because it also accelerates arm64
// docks without the Go toolchain's assembly paths being present.
package digest

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	sha256 "github.com/minio/sha256-simd"
)

// Size is the length in bytes of a digest.
const Size = sha256.Size

// Sum is a SHA-256 digest.
type Sum [Size]byte

// New returns a new SHA-256 hash.
func New() hash.Hash { return sha256.New() }

// Bytes hashes b in one call.
func Bytes(b []byte) Sum { return sha256.Sum256(b) }

// Hex is the lower-case hex form used in the ledger, in tags and in reports.
func (s Sum) Hex() string { return hex.EncodeToString(s[:]) }

// Base64 is the form S3 uses in x-amz-checksum-sha256.
func (s Sum) Base64() string { return base64.StdEncoding.EncodeToString(s[:]) }

// IsZero reports whether s was never set.
func (s Sum) IsZero() bool { return s == Sum{} }

// FromHash copies the current digest of h (which must come from New).
func FromHash(h hash.Hash) Sum {
	var s Sum
	copy(s[:], h.Sum(nil))
	return s
}

// ParseHex parses a lower- or upper-case 64-digit hex digest.
func ParseHex(v string) (Sum, error) {
	var s Sum
	if len(v) != 2*Size {
		return s, fmt.Errorf("sha256 %q: want %d hex digits, have %d", v, 2*Size, len(v))
	}
	if _, err := hex.Decode(s[:], []byte(v)); err != nil {
		return s, fmt.Errorf("sha256 %q: %w", v, err)
	}
	return s, nil
}

// Reader hashes r to EOF, returning the digest and the number of bytes read.
func Reader(r io.Reader) (Sum, int64, error) {
	h := New()
	n, err := io.CopyBuffer(h, r, make([]byte, 1<<20))
	if err != nil {
		return Sum{}, n, err
	}
	return FromHash(h), n, nil
}
