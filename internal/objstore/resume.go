package objstore

import (
	"context"
	"io"
	"time"

	"github.com/evidenced/evidenced/internal/digest"
)

// Multipart is what a Store offers so that a multipart upload can outlive
// the process that started it: the caller (the uploader) records the upload
// id and the parts it completed in the custody ledger, and after a crash
// asks the store which parts it really holds (ListParts) instead of starting
// from zero.
//
// Contract:
//   - CreateMultipart asks for req's metadata, tags, content type and Object
//     Lock on the object the upload will become; req.Body is not read. Some
//     stores drop the lock and tags (Ceph RGW 16.2), so whoever completes
//     an upload checks the new version and applies what is missing
//     (Retainer, Tagger; the uploader does).
//   - UploadPart sends size bytes of body from off as part n (1-based) with
//     sum as its x-amz-checksum-sha256; the store refuses a part whose bytes
//     do not hash to sum (ErrChecksumMismatch). Sending a part number again
//     replaces the part.
//   - ListParts returns the parts the store holds for the upload, by number,
//     each with its size, its ETag (as UploadPart returned it) and the
//     SHA-256 the store computed (base64) when it reports one (RGW does
//     not); ErrNotFound when the upload no longer exists (completed or
//     aborted).
//   - CompleteMultipart's result may carry no ETag (RGW); Stat reports it.
//   - CompleteMultipart assembles parts (1..N, all present) into a new
//     version and returns it; AbortMultipart discards the upload and its
//     parts (ErrNotFound if it is gone already).
//   - ListMultipart lists the uploads in progress whose keys start with
//     prefix (relative to the store's own prefix).
//   - Existing is Put's idempotence check on its own: the newest version of
//     req.Key when it already holds req.SHA256 and req.Size (Reused), so a
//     crash after CompleteMultipart but before it was recorded is found.
type Multipart interface {
	Store
	// MultipartThreshold is the size from which objects are uploaded in parts.
	MultipartThreshold() int64
	Existing(ctx context.Context, req PutRequest) (PutResult, bool, error)
	CreateMultipart(ctx context.Context, req PutRequest) (uploadID string, err error)
	UploadPart(ctx context.Context, key, uploadID string, n int, body io.ReaderAt, off, size int64, sum digest.Sum) (Part, error)
	ListParts(ctx context.Context, key, uploadID string) ([]Part, error)
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part) (PutResult, error)
	AbortMultipart(ctx context.Context, key, uploadID string) error
	ListMultipart(ctx context.Context, prefix string) ([]Upload, error)
}

// Part is one part of a multipart upload as the store holds it.
type Part struct {
	Number int
	Size   int64
	ETag   string
	// ChecksumSHA256 is the part's SHA-256 as the store reports it (base64);
	// "" when the store reports none.
	ChecksumSHA256 string
}

// PartProbeKey is the key (relative to the store's prefix) of the upload a
// store may open to learn how it checks parts (s3store.ProbeParts). Such an
// upload is always aborted, never completed, so any upload found at this key
// is left over by a process stopped mid-probe (a kill, a power cut) and is
// aborted by whoever finds it: the next probe, and the uploader's start-up
// sweep (a run that sends no part never probes). No recording's key is
// ever this one: those are <camera>/<yyyy>/<mm>/<dd>/<id>[.ext].
const PartProbeKey = "_probe/part-checksum"

// Upload is one multipart upload in progress.
type Upload struct {
	Key       string
	UploadID  string
	Initiated time.Time
}

// Limiter paces bytes on the wire (a bandwidth limit). WaitN blocks until n
// more bytes may be sent or ctx ends.
type Limiter interface {
	WaitN(ctx context.Context, n int) error
}
