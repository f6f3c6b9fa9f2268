package objstore

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/evidenced/evidenced/internal/digest"
)

// Verification methods, as recorded in the custody ledger.
const (
	MethodStoreChecksum     = "store-checksum"
	MethodCompositeChecksum = "store-composite-checksum"
	MethodReadBack          = "read-back"
)

// Verify checks that the stored version of key holds size bytes whose
// SHA-256 is want, choosing the cheapest proof the store allows:
//
//   - "store-checksum": the store reports a full-object SHA-256 (it computed
//     and checked it on upload) equal to want. local is not read.
//   - "store-composite-checksum": the store reports a composite multipart
//     checksum and local (the vault copy) is at hand: the per-part SHA-256s
//     are recomputed from local with the part size Put used (PartSize(size),
//     checked against the part count the store reports) and the composite
//     compared. A composite that does not match is settled by a read-back,
//     so a damaged local copy is never blamed on the store.
//   - "read-back": otherwise (no checksum reported, as Ceph RGW does, or no
//     local copy) the version is streamed and hashed.
//
// A mismatch returns an error wrapping ErrChecksumMismatch that names the key
// and version. Other errors are the store's (see IsPermanent).
func Verify(ctx context.Context, s Store, key, versionID string, size int64, want digest.Sum, local io.ReaderAt) (method string, err error) {
	return VerifyKnown(ctx, s, key, versionID, size, want, local, nil)
}

// KnownParts are the per-part SHA-256s of content whose whole SHA-256 is
// Whole, cut in parts of PartSize bytes: what HashParts returned for it.
type KnownParts struct {
	Whole    digest.Sum
	PartSize int64
	Sums     []digest.Sum
}

// usable reports whether k describes the want-content of size bytes cut
// the way the store's composite checksum of parts parts was (part size ps,
// from compositePartSize). Anything else is not used: the composite of
// other boundaries could never match, and sums of other content prove
// nothing about this object.
func (k *KnownParts) usable(want digest.Sum, size, ps int64, parts int) bool {
	return k != nil && k.Whole == want && k.PartSize == ps && len(k.Sums) == parts &&
		PartCount(size, k.PartSize) == parts
}

// VerifyKnown is Verify for a caller that already holds the part sums of
// the content (known, may be nil): where the store reports a composite
// checksum and known matches its part count and part size, the composite is
// computed from known instead of hashing local, so a multipart object is
// proven without reading the vault copy again. Otherwise it is Verify.
//
// Why this is sound: known.Sums must come from the same pass over the bytes
// that found their whole SHA-256 to be known.Whole (HashParts does both), and
// known is only used when known.Whole == want. The store's composite is the
// SHA-256 of its parts' SHA-256s, so a match means each stored part hashes to
// the part of the content that hashes to want, which is what Verify proves
// by hashing local. It is the stronger proof when local may have changed
// since: it rests on the bytes that were checked against want, not on what
// the file holds now. A composite that does not match is settled by a
// read-back exactly as in Verify (local is not consulted then: the read-back
// decides either way), so wrong sums can cost a read-back, never a false
// pass.
func VerifyKnown(ctx context.Context, s Store, key, versionID string, size int64, want digest.Sum, local io.ReaderAt, known *KnownParts) (method string, err error) {
	info, err := s.Stat(ctx, key, versionID)
	if err != nil {
		return "", fmt.Errorf("verify %s (version %s): %w", key, versionID, err)
	}
	if info.Size != size {
		return "", fmt.Errorf("verify %s (version %s): store holds %d bytes, want %d: %w", key, versionID, info.Size, size, ErrChecksumMismatch)
	}
	sum, parts, composite := splitChecksum(info.ChecksumSHA256, info.ChecksumType)
	switch {
	case sum == "":
		// Nothing reported: only reading it back proves anything.
	case !composite:
		if sum != want.Base64() {
			return MethodStoreChecksum, fmt.Errorf("verify %s (version %s): store checksum sha256 %s, want %s: %w", key, versionID, sum, want.Base64(), ErrChecksumMismatch)
		}
		return MethodStoreChecksum, nil
	case parts > 0:
		ps, ok := compositePartSize(size, parts)
		if !ok {
			break
		}
		var got string
		switch {
		case known.usable(want, size, ps, parts):
			got = Composite(known.Sums)
		case local != nil:
			if got, err = CompositeChecksum(ctx, local, size, ps); err != nil {
				return "", fmt.Errorf("verify %s (version %s): hash local copy: %w", key, versionID, err)
			}
		}
		if got != "" && (got == info.ChecksumSHA256 || got == sum+"-"+strconv.Itoa(parts)) {
			return MethodCompositeChecksum, nil
		}
	}
	return MethodReadBack, readBack(ctx, s, key, versionID, size, want)
}

func readBack(ctx context.Context, s Store, key, versionID string, size int64, want digest.Sum) error {
	rc, err := s.Open(ctx, key, versionID)
	if err != nil {
		return fmt.Errorf("verify %s (version %s): read back: %w", key, versionID, err)
	}
	defer rc.Close()
	got, n, err := digest.Reader(ctxReader{ctx, rc})
	if err != nil {
		return fmt.Errorf("verify %s (version %s): read back: %w", key, versionID, err)
	}
	if n != size || got != want {
		return fmt.Errorf("verify %s (version %s): read back %d bytes with sha256 %s, want %d bytes with %s: %w", key, versionID, n, got.Hex(), size, want.Hex(), ErrChecksumMismatch)
	}
	return nil
}

// splitChecksum parses a reported checksum: "abc=" is a full-object
// checksum, "abc=-3" a composite one of 3 parts. typ, when the store gives
// it, overrides the guess from the suffix.
func splitChecksum(v, typ string) (sum string, parts int, composite bool) {
	if v == "" {
		return "", 0, false
	}
	sum = v
	if i := strings.LastIndexByte(v, '-'); i > 0 {
		if n, err := strconv.Atoi(v[i+1:]); err == nil && n > 0 {
			sum, parts, composite = v[:i], n, true
		}
	}
	switch typ {
	case ChecksumFullObject:
		composite = false
		sum = v
	case ChecksumComposite:
		composite = true
	}
	return sum, parts, composite
}

// compositePartSize finds the part size that cut size bytes into parts
// parts: PartSize(size) (what Put uses), else the smallest whole-MiB size
// that gives that count (what other uploaders with even parts would use).
func compositePartSize(size int64, parts int) (int64, bool) {
	if ps := PartSize(size); PartCount(size, ps) == parts {
		return ps, true
	}
	ps := (size + int64(parts) - 1) / int64(parts)
	ps = (ps + MiB - 1) / MiB * MiB
	if ps > 0 && PartCount(size, ps) == parts {
		return ps, true
	}
	return 0, false
}

// PartSums hashes r (size bytes) in parts of partSize bytes, the per-part
// SHA-256s S3 checks on UploadPart.
func PartSums(ctx context.Context, r io.ReaderAt, size, partSize int64) ([]digest.Sum, error) {
	_, sums, err := HashParts(ctx, r, size, partSize)
	return sums, err
}

// HashParts reads r (size bytes) once and returns both the SHA-256 of the
// whole and of each partSize part: a multipart upload needs the part sums
// for the store to check, and the whole to prove the parts are the content
// the caller meant (the store never sees a whole-object SHA-256 then).
func HashParts(ctx context.Context, r io.ReaderAt, size, partSize int64) (digest.Sum, []digest.Sum, error) {
	sums := make([]digest.Sum, 0, PartCount(size, max(partSize, 1)))
	whole, err := HashPartsEach(ctx, r, size, partSize, func(_ int, sum digest.Sum) { sums = append(sums, sum) })
	if err != nil {
		return digest.Sum{}, nil, err
	}
	return whole, sums, nil
}

// HashPartsEach is HashParts handing each part's SHA-256 to fn (part
// index from 0, in order) as soon as that part is read, so a caller can
// send part i while later parts are still being hashed. The whole is known
// only at the end: a caller that acts on a part before then must not treat
// the parts as the intended content until the whole is checked.
func HashPartsEach(ctx context.Context, r io.ReaderAt, size, partSize int64, fn func(i int, sum digest.Sum)) (digest.Sum, error) {
	if partSize <= 0 {
		return digest.Sum{}, fmt.Errorf("part size %d", partSize)
	}
	n := PartCount(size, partSize)
	whole, part := digest.New(), digest.New()
	buf := make([]byte, 1<<20)
	for i := range n {
		off := int64(i) * partSize
		l := min(partSize, size-off)
		part.Reset()
		got, err := io.CopyBuffer(io.MultiWriter(whole, part), ctxReader{ctx, io.NewSectionReader(r, off, l)}, buf)
		if err != nil {
			return digest.Sum{}, fmt.Errorf("part %d: %w", i+1, err)
		}
		if got != l {
			return digest.Sum{}, fmt.Errorf("part %d: read %d bytes, want %d: %w", i+1, got, l, io.ErrUnexpectedEOF)
		}
		fn(i, digest.FromHash(part))
	}
	return digest.FromHash(whole), nil
}

// Composite is S3's composite checksum of a multipart object: the SHA-256
// of the concatenated part digests, base64, with "-N" appended.
func Composite(parts []digest.Sum) string {
	buf := make([]byte, 0, len(parts)*digest.Size)
	for _, p := range parts {
		buf = append(buf, p[:]...)
	}
	return digest.Bytes(buf).Base64() + "-" + strconv.Itoa(len(parts))
}

// CompositeChecksum is Composite(PartSums(r, size, partSize)).
func CompositeChecksum(ctx context.Context, r io.ReaderAt, size, partSize int64) (string, error) {
	sums, err := PartSums(ctx, r, size, partSize)
	if err != nil {
		return "", err
	}
	return Composite(sums), nil
}

// ctxReader stops a long hash when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
