// Package objstore is the boundary between evidenced and the object store
// that keeps the second, off-site copy of every recording.
//
// It owns the Store contract, the error classification callers use to decide
// whether a failure is worth retrying, the part size used for multipart
// uploads, and Verify, the one function that decides whether a stored version
// really holds the bytes the custody ledger recorded.
//
// internal/objstore/storetest states this contract as tests and runs it on
// memstore, VersityGW and Ceph RGW; where a server departs from S3 it says
// so there (storetest.Quirks).
//
// Invariants every Store implementation keeps:
//   - Put never trusts the transport: the SHA-256 the caller computed travels
//     with the upload and the store checks it (whole object for a single put,
//     each part for a multipart one); a mismatch fails with ErrChecksumMismatch
//     and leaves no version behind. (s3store sends it as
//     x-amz-checksum-sha256 and as the signed payload hash; Ceph RGW ignores
//     the first and enforces the second. Parts drop the second only on a
//     store seen to refuse a wrong first: s3store.PartBinding.)
//   - Put is idempotent per (key, SHA-256, size): when the newest version of
//     the key already holds that content, Put returns it (Reused) and writes
//     nothing, so a retry after a crash or a lost response never creates a
//     second version of evidence that Object Lock would then keep for years.
//   - Errors wrap the sentinels below so IsPermanent can classify them without
//     knowing which store produced them.
package objstore

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/evidenced/evidenced/internal/digest"
)

// Store is an S3-like versioned object store with Object Lock.
type Store interface {
	// Put stores Body (exactly Size bytes, read via ReadAt so retries can
	// re-read it) under Key as a new version, with the store checking SHA256
	// (whole object for a single put; per-part SHA-256 for multipart).
	// Idempotent: if the newest version of Key already has metadata sha256 ==
	// req.SHA256 and size == Size, Put returns that version with Reused=true
	// and writes nothing.
	Put(ctx context.Context, req PutRequest) (PutResult, error)
	// Stat returns the version's info (versionID "" = latest); ErrNotFound if
	// absent.
	Stat(ctx context.Context, key, versionID string) (ObjectInfo, error)
	// Open streams the version's content (versionID "" = latest); ErrNotFound
	// if absent. The caller closes it.
	Open(ctx context.Context, key, versionID string) (io.ReadCloser, error)
}

// PutRequest is one object to store.
type PutRequest struct {
	Key  string
	Body io.ReaderAt
	Size int64
	// SHA256 is the content's digest as computed when the recording was
	// vaulted; the store must check it.
	SHA256      digest.Sum
	Tags        map[string]string
	Metadata    map[string]string
	ContentType string
	// LockMode is GOVERNANCE, COMPLIANCE or "" (no Object Lock on the version).
	LockMode    string
	RetainUntil time.Time
}

// PutResult describes the version Put created or reused.
type PutResult struct {
	VersionID string
	ETag      string
	// ChecksumSHA256 is the checksum as the store reported it: base64, with a
	// "-N" suffix for a composite (multipart) checksum. Empty when the store
	// reports none.
	ChecksumSHA256 string
	// Parts is the number of parts of a multipart upload, 0 for a single put.
	Parts int
	// Reused is true when the newest version already held this content and
	// nothing was written.
	Reused bool
}

// Checksum types as S3 reports them.
const (
	ChecksumFullObject = "FULL_OBJECT"
	ChecksumComposite  = "COMPOSITE"
)

// Object Lock modes.
const (
	LockGovernance = "GOVERNANCE"
	LockCompliance = "COMPLIANCE"
)

// ObjectInfo is what the store says about one version.
type ObjectInfo struct {
	Key       string
	VersionID string
	Size      int64
	// ChecksumSHA256 is the store's checksum (base64, "-N" suffix when
	// composite); ChecksumType is FULL_OBJECT, COMPOSITE or "" (none reported).
	ChecksumSHA256 string
	ChecksumType   string
	// ETag is the store's entity tag of the version (quoted, as S3 sends
	// it); some stores return none from CompleteMultipartUpload but do
	// report it here.
	ETag string
	// SHA256 is evidenced's own sha256 metadata (lower hex), "" if absent.
	SHA256      string
	Metadata    map[string]string
	LockMode    string
	RetainUntil time.Time
	LegalHold   bool
	Tags        map[string]string
}

// Sentinel errors. Implementations wrap them with the operation and key.
var (
	ErrNotFound         = errors.New("object not found")
	ErrChecksumMismatch = errors.New("checksum mismatch")
	ErrAccessDenied     = errors.New("access denied")
	ErrNoSuchBucket     = errors.New("no such bucket")
	// ErrInvalidRequest is a request the store refused as malformed (a bad
	// lock date, an invalid tag): sending it again cannot succeed.
	ErrInvalidRequest = errors.New("invalid request")
)

// IsPermanent reports whether retrying the operation that returned err
// cannot help: access denied, no such bucket, checksum mismatch and invalid
// requests are permanent; everything else (network, 5xx, throttling, a
// cancelled context) is treated as transient. ErrNotFound is not permanent on
// its own: callers decide what an absent object means for them.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	for _, p := range []error{ErrAccessDenied, ErrNoSuchBucket, ErrChecksumMismatch, ErrInvalidRequest} {
		if errors.Is(err, p) {
			return true
		}
	}
	return false
}

// Part size limits of the S3 API.
const (
	MiB          = 1 << 20
	MinPartSize  = 8 * MiB // S3's own minimum is 5 MiB; 8 MiB keeps request overhead low
	MaxPartSize  = 5 << 30
	MaxParts     = 10000
	MaxPutSize   = 5 << 30 // largest single PutObject
	MaxObjectLen = MaxParts * MaxPartSize
)

// PartSize is the part size for a multipart upload of size bytes: at least
// MinPartSize, grown in whole MiB so the object fits in MaxParts parts, at
// most MaxPartSize. It is a pure function of size so that Verify can
// recompute a composite checksum from the local copy without having recorded
// how the object was cut.
func PartSize(size int64) int64 {
	ps := int64(MinPartSize)
	if size > ps*MaxParts {
		ps = (size + MaxParts - 1) / MaxParts
		ps = (ps + MiB - 1) / MiB * MiB
	}
	return min(ps, MaxPartSize)
}

// PartCount is how many parts of partSize bytes hold size bytes (at least 1).
func PartCount(size, partSize int64) int {
	if size <= 0 {
		return 1
	}
	return int((size + partSize - 1) / partSize)
}
