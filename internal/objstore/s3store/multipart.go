package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
)

var _ objstore.Multipart = (*Store)(nil)

// DefaultResponseTimeout bounds the wait for a response once a request has
// been sent: a server (or middlebox) that accepts a part and then says
// nothing must not hold an upload forever. CompleteMultipartUpload of a
// large object can take a while on a busy server, hence the margin.
const DefaultResponseTimeout = 2 * time.Minute

// newHTTPClient is the SDK's own client with a response-header timeout and,
// when lim is set, every write to the network paced by lim: the bandwidth
// limit is applied to the bytes on the wire, not to reads of the body, which
// the SDK makes more than once when it retries.
func newHTTPClient(lim objstore.Limiter, respTimeout time.Duration) *awshttp.BuildableClient {
	if respTimeout <= 0 {
		respTimeout = DefaultResponseTimeout
	}
	return awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.ResponseHeaderTimeout = respTimeout
		// The SDK asks for "Expect: 100-continue" on bodies over 2 MB;
		// servers that never answer it (VersityGW) would cost the client's
		// 1 s wait on every part. Send the body at once: a refusal still
		// arrives, just after the bytes.
		t.ExpectContinueTimeout = 0
		if lim == nil {
			return
		}
		dial := t.DialContext
		if dial == nil {
			dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		}
		t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			cctx, cancel := context.WithCancel(context.Background())
			return &limitedConn{Conn: c, lim: lim, ctx: cctx, cancel: cancel}, nil
		}
	})
}

// limitedConn paces writes. Its context ends when the connection is closed,
// so a write blocked on the limiter ends with the request that owns it.
type limitedConn struct {
	net.Conn
	lim    objstore.Limiter
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

// limitChunk is the most one limiter wait covers, so that pacing is smooth
// and a closed connection is noticed quickly.
const limitChunk = 32 << 10

func (c *limitedConn) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), limitChunk)
		if err := c.lim.WaitN(c.ctx, k); err != nil {
			return n, fmt.Errorf("bandwidth limit: %w", err)
		}
		w, err := c.Conn.Write(p[:k])
		n += w
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

func (c *limitedConn) Close() error {
	c.once.Do(c.cancel)
	return c.Conn.Close()
}

// MultipartThreshold implements objstore.Multipart.
func (s *Store) MultipartThreshold() int64 { return s.threshold }

// Existing implements objstore.Multipart.
func (s *Store) Existing(ctx context.Context, req objstore.PutRequest) (objstore.PutResult, bool, error) {
	return s.existing(ctx, req)
}

// CreateMultipart implements objstore.Multipart.
func (s *Store) CreateMultipart(ctx context.Context, req objstore.PutRequest) (string, error) {
	if req.Key == "" {
		return "", fmt.Errorf("create multipart upload: no key: %w", objstore.ErrInvalidRequest)
	}
	var mode types.ObjectLockMode
	var until *time.Time
	switch req.LockMode {
	case "":
	case objstore.LockGovernance, objstore.LockCompliance:
		if req.RetainUntil.IsZero() {
			return "", fmt.Errorf("create multipart upload %s: lock mode %s without a retain-until date: %w", req.Key, req.LockMode, objstore.ErrInvalidRequest)
		}
		mode, until = types.ObjectLockMode(req.LockMode), aws.Time(req.RetainUntil.UTC())
	default:
		return "", fmt.Errorf("create multipart upload %s: unknown lock mode %q: %w", req.Key, req.LockMode, objstore.ErrInvalidRequest)
	}
	out, err := s.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.key(req.Key)),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		ContentType:       optString(req.ContentType),
		Metadata:          req.Metadata,
		Tagging:           optString(encodeTags(req.Tags)),
		ObjectLockMode:    mode, ObjectLockRetainUntilDate: until,
	})
	if err != nil {
		return "", mapErr("create multipart upload", req.Key, err)
	}
	id := aws.ToString(out.UploadId)
	if id == "" {
		return "", fmt.Errorf("create multipart upload %s: the store returned no upload id", req.Key)
	}
	return id, nil
}

// UploadPart implements objstore.Multipart.
func (s *Store) UploadPart(ctx context.Context, key, uploadID string, n int, body io.ReaderAt, off, size int64, sum digest.Sum) (objstore.Part, error) {
	if n < 1 || n > objstore.MaxParts || size < 0 || size > objstore.MaxPartSize {
		return objstore.Part{}, fmt.Errorf("upload part %d of %s: %d bytes: %w", n, key, size, objstore.ErrInvalidRequest)
	}
	out, err := s.c.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.key(key)), UploadId: aws.String(uploadID),
		PartNumber:        aws.Int32(int32(n)),
		Body:              io.NewSectionReader(body, off, size),
		ContentLength:     aws.Int64(size),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		ChecksumSHA256:    aws.String(sum.Base64()),
	}, s.partSigning(s.PartBinding(ctx), sum))
	if err != nil {
		return objstore.Part{}, mapErr(fmt.Sprintf("upload part %d of", n), key, err)
	}
	got := aws.ToString(out.ChecksumSHA256)
	if got != "" && got != sum.Base64() {
		// The store says it kept other bytes than the ones we hashed.
		return objstore.Part{}, fmt.Errorf("upload part %d of %s: store checksum %s, sent %s: %w", n, key, got, sum.Base64(), objstore.ErrChecksumMismatch)
	}
	return objstore.Part{Number: n, Size: size, ETag: aws.ToString(out.ETag), ChecksumSHA256: sum.Base64()}, nil
}

// ListParts implements objstore.Multipart.
func (s *Store) ListParts(ctx context.Context, key, uploadID string) ([]objstore.Part, error) {
	p := s3.NewListPartsPaginator(s.c, &s3.ListPartsInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.key(key)), UploadId: aws.String(uploadID),
	})
	var parts []objstore.Part
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, mapErr("list parts of", key, err)
		}
		for _, pt := range page.Parts {
			parts = append(parts, objstore.Part{
				Number: int(aws.ToInt32(pt.PartNumber)), Size: aws.ToInt64(pt.Size),
				ETag: aws.ToString(pt.ETag), ChecksumSHA256: aws.ToString(pt.ChecksumSHA256),
			})
		}
	}
	slices.SortFunc(parts, func(a, b objstore.Part) int { return a.Number - b.Number })
	return parts, nil
}

// CompleteMultipart implements objstore.Multipart.
func (s *Store) CompleteMultipart(ctx context.Context, key, uploadID string, parts []objstore.Part) (objstore.PutResult, error) {
	cp := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		if p.Number != i+1 {
			return objstore.PutResult{}, fmt.Errorf("complete multipart upload %s: part %d at position %d: %w", key, p.Number, i+1, objstore.ErrInvalidRequest)
		}
		cp[i] = types.CompletedPart{PartNumber: aws.Int32(int32(p.Number)), ETag: aws.String(p.ETag), ChecksumSHA256: optString(p.ChecksumSHA256)}
	}
	out, err := s.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.key(key)), UploadId: aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: cp},
	})
	if err != nil {
		return objstore.PutResult{}, mapErr("complete multipart upload", key, err)
	}
	return objstore.PutResult{
		VersionID: aws.ToString(out.VersionId), ETag: aws.ToString(out.ETag),
		ChecksumSHA256: aws.ToString(out.ChecksumSHA256), Parts: len(parts),
	}, nil
}

// AbortMultipart implements objstore.Multipart.
func (s *Store) AbortMultipart(ctx context.Context, key, uploadID string) error {
	_, err := s.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.key(key)), UploadId: aws.String(uploadID),
	})
	if err != nil {
		return mapErr("abort multipart upload", key, err)
	}
	return nil
}

// ListMultipart implements objstore.Multipart. Keys are returned relative to
// the configured Prefix; uploads outside it are not listed.
func (s *Store) ListMultipart(ctx context.Context, prefix string) ([]objstore.Upload, error) {
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(s.bucket), Prefix: optString(s.key(prefix))}
	var out []objstore.Upload
	for range 10000 { // bounded: a server that never stops paging must not spin forever
		page, err := s.c.ListMultipartUploads(ctx, in)
		if err != nil {
			return out, mapErr("list multipart uploads under", prefix, err)
		}
		for _, u := range page.Uploads {
			k := aws.ToString(u.Key)
			if len(k) < len(s.prefix) || k[:len(s.prefix)] != s.prefix {
				continue
			}
			out = append(out, objstore.Upload{Key: k[len(s.prefix):], UploadID: aws.ToString(u.UploadId), Initiated: aws.ToTime(u.Initiated)})
		}
		if !aws.ToBool(page.IsTruncated) {
			return out, nil
		}
		if aws.ToString(page.NextKeyMarker) == "" && aws.ToString(page.NextUploadIdMarker) == "" {
			return out, errors.New("list multipart uploads: truncated listing without a marker")
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
	return out, errors.New("list multipart uploads: too many pages")
}
