// Package s3store is the objstore.Store for S3 and S3-compatible servers
// (AWS, VersityGW, MinIO, Ceph RGW), built on aws-sdk-go-v2.
//
// It owns how evidenced talks S3: credentials come only from the standard
// AWS chain (environment, shared files, instance roles) and never from the
// evidenced config; the configured Prefix is applied here, so callers use
// keys relative to it; multipart uploads are cut with objstore.PartSize so
// that objstore.Verify can recompute the composite checksum.
//
// Invariants:
//   - Every write carries an explicit x-amz-checksum-sha256 (the whole object,
//     or each part) computed from the caller's copy; the SDK's own default
//     CRC32 checksums are switched off (WhenRequired) because other
//     S3-compatible servers reject or ignore them.
//   - Bodies are io.SectionReaders over the caller's io.ReaderAt: seekable,
//     so the SDK can retry them. Their SHA-256 is known before they are sent
//     and is handed to the SigV4 signer (withPayloadSHA256), so the SDK
//     never reads a body just to hash it: the transport reads it once. A
//     part is signed UNSIGNED-PAYLOAD instead, bound by its signed
//     x-amz-checksum-sha256 alone, only on a store that refused a probe
//     part with a wrong one (PartBinding): such a store would otherwise
//     hash every part twice, and one that ignores the header (Ceph RGW 16)
//     keeps checking the payload hash.
//   - Put first looks at the newest version of the key and reuses it when it
//     already holds the same SHA-256 and size (see objstore.Store).
//   - A multipart upload that fails is aborted, so no orphaned parts are
//     billed or left holding space.
//   - Errors wrap objstore's sentinels (ErrNotFound, ErrAccessDenied,
//     ErrNoSuchBucket, ErrChecksumMismatch, ErrInvalidRequest) and name the
//     key; anything unmapped is transient.
package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"

	"github.com/evidenced/evidenced/internal/objstore"
)

// DefaultMultipartThreshold is used when Config.MultipartThreshold is 0.
const DefaultMultipartThreshold = 64 << 20

// partConcurrency is how many parts of one object are in flight at once.
// Several objects upload concurrently already (upload.concurrency), so this
// stays small.
const partConcurrency = 4

// Config says where the store is. Credentials are not part of it.
type Config struct {
	// Endpoint is the base URL of an S3-compatible server; "" is AWS.
	Endpoint string
	Bucket   string
	// Region; "" takes it from the AWS chain (AWS_REGION, profile).
	Region    string
	PathStyle bool
	// Prefix is prepended, as is, to every key.
	Prefix string
	// MultipartThreshold is the size from which Put uploads in parts;
	// 0 means DefaultMultipartThreshold.
	MultipartThreshold int64
	// Limiter, when set, paces every byte written to the network (the
	// upload bandwidth limit); nil means unlimited.
	Limiter objstore.Limiter
	// ResponseTimeout bounds the wait for a response after a request was
	// sent; 0 means DefaultResponseTimeout.
	ResponseTimeout time.Duration
	// DefaultRetention is the bucket default retention EnsureBucket sets
	// when the bucket has none (zero: none set). Every upload names its own
	// lock; the default is a backstop for a store that drops it (Ceph RGW
	// does on multipart uploads) until the uploader re-applies it.
	DefaultRetention DefaultRetention
}

// DefaultRetention is an Object Lock bucket default: Mode (GOVERNANCE or
// COMPLIANCE) for Days days from each version's creation.
type DefaultRetention struct {
	Mode string
	Days int
}

// Store is an objstore.Store on one S3 bucket.
type Store struct {
	c         *s3.Client
	bucket    string
	region    string
	prefix    string
	threshold int64
	defRet    DefaultRetention
	endpoint  string
	log       *slog.Logger

	// bindMu guards probe (see ProbeParts).
	bindMu sync.Mutex
	probe  PartProbe
	// now, when set, replaces time.Now for the probe's schedule (tests).
	now func() time.Time
}

var _ objstore.Store = (*Store)(nil)

// New returns a Store for c. It does not contact the server (use
// EnsureBucket for that), so a daemon starts while the network is down.
// log may be nil.
func New(ctx context.Context, c Config, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if c.Bucket == "" {
		return nil, fmt.Errorf("s3 store: no bucket configured: %w", objstore.ErrInvalidRequest)
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		config.WithHTTPClient(newHTTPClient(c.Limiter, c.ResponseTimeout)),
		config.WithLogger(sdkLogger(log)),
	}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 store %s: load AWS configuration: %w", c.Bucket, err)
	}
	if awsCfg.Credentials != nil {
		awsCfg.Credentials = namedCredentials{awsCfg.Credentials}
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = c.PathStyle
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	th := c.MultipartThreshold
	if th <= 0 {
		th = DefaultMultipartThreshold
	}
	return &Store{c: client, bucket: c.Bucket, region: awsCfg.Region, prefix: c.Prefix, threshold: th, defRet: c.DefaultRetention, endpoint: c.Endpoint, log: log}, nil
}

// Client is the underlying SDK client, for tests and tools that need an S3
// call this package does not wrap.
func (s *Store) Client() *s3.Client { return s.c }

// Bucket is the configured bucket.
func (s *Store) Bucket() string { return s.bucket }

func (s *Store) key(k string) string { return s.prefix + k }

func optString(v string) *string {
	if v == "" {
		return nil
	}
	return aws.String(v)
}

// Put implements objstore.Store.
func (s *Store) Put(ctx context.Context, req objstore.PutRequest) (objstore.PutResult, error) {
	if req.Key == "" || req.Size < 0 || req.Body == nil {
		return objstore.PutResult{}, fmt.Errorf("put %q: key, size and body are required: %w", req.Key, objstore.ErrInvalidRequest)
	}
	if req.Size > objstore.MaxObjectLen {
		return objstore.PutResult{}, fmt.Errorf("put %s: %d bytes is larger than S3 allows: %w", req.Key, req.Size, objstore.ErrInvalidRequest)
	}
	var mode types.ObjectLockMode
	switch req.LockMode {
	case "":
	case objstore.LockGovernance, objstore.LockCompliance:
		if req.RetainUntil.IsZero() {
			return objstore.PutResult{}, fmt.Errorf("put %s: lock mode %s without a retain-until date: %w", req.Key, req.LockMode, objstore.ErrInvalidRequest)
		}
		mode = types.ObjectLockMode(req.LockMode)
	default:
		return objstore.PutResult{}, fmt.Errorf("put %s: unknown lock mode %q: %w", req.Key, req.LockMode, objstore.ErrInvalidRequest)
	}

	if res, ok, err := s.existing(ctx, req); err != nil || ok {
		return res, err
	}
	var until *time.Time
	if mode != "" {
		until = aws.Time(req.RetainUntil.UTC())
	}
	tagging := encodeTags(req.Tags)
	if req.Size < s.threshold && req.Size <= objstore.MaxPutSize {
		out, err := s.c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(s.bucket), Key: aws.String(s.key(req.Key)),
			Body:              io.NewSectionReader(req.Body, 0, req.Size),
			ContentLength:     aws.Int64(req.Size),
			ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
			ChecksumSHA256:    aws.String(req.SHA256.Base64()),
			ContentType:       optString(req.ContentType),
			Metadata:          req.Metadata,
			Tagging:           optString(tagging),
			ObjectLockMode:    mode, ObjectLockRetainUntilDate: until,
		}, withPayloadSHA256(req.SHA256))
		if err != nil {
			return objstore.PutResult{}, mapErr("put", req.Key, err)
		}
		return objstore.PutResult{
			VersionID: aws.ToString(out.VersionId), ETag: aws.ToString(out.ETag),
			ChecksumSHA256: aws.ToString(out.ChecksumSHA256),
		}, nil
	}
	return s.multipart(ctx, req, mode, until, tagging)
}

// existing returns the newest version of req.Key when it already holds
// req's content: the retry after a crash or lost response lands here.
func (s *Store) existing(ctx context.Context, req objstore.PutRequest) (objstore.PutResult, bool, error) {
	head, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.key(req.Key)), ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		err = mapErr("put: look for an existing version of", req.Key, err)
		if errors.Is(err, objstore.ErrNotFound) {
			return objstore.PutResult{}, false, nil
		}
		return objstore.PutResult{}, false, err
	}
	if head.Metadata["sha256"] != req.SHA256.Hex() || aws.ToInt64(head.ContentLength) != req.Size {
		return objstore.PutResult{}, false, nil
	}
	sum := aws.ToString(head.ChecksumSHA256)
	s.log.Info("object already stored, reusing version", "key", req.Key, "version_id", aws.ToString(head.VersionId))
	return objstore.PutResult{
		VersionID: aws.ToString(head.VersionId), ETag: aws.ToString(head.ETag),
		ChecksumSHA256: sum, Parts: partsOf(sum, head.ChecksumType, head.PartsCount), Reused: true,
	}, true, nil
}

func (s *Store) multipart(ctx context.Context, req objstore.PutRequest, mode types.ObjectLockMode, until *time.Time, tagging string) (objstore.PutResult, error) {
	key := s.key(req.Key)
	ps := objstore.PartSize(req.Size)
	n := objstore.PartCount(req.Size, ps)
	// The store checks each part against its own SHA-256 but never sees the
	// whole object's, so prove here that the parts are req.SHA256's content
	// (a damaged vault copy must not be uploaded as evidence).
	whole, sums, err := objstore.HashParts(ctx, req.Body, req.Size, ps)
	if err != nil {
		return objstore.PutResult{}, fmt.Errorf("put %s: hash parts: %w", req.Key, err)
	}
	if whole != req.SHA256 {
		return objstore.PutResult{}, fmt.Errorf("put %s: content hashes to sha256 %s, not %s: %w", req.Key, whole.Hex(), req.SHA256.Hex(), objstore.ErrChecksumMismatch)
	}
	created, err := s.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		ContentType:       optString(req.ContentType),
		Metadata:          req.Metadata,
		Tagging:           optString(tagging),
		ObjectLockMode:    mode, ObjectLockRetainUntilDate: until,
	})
	if err != nil {
		return objstore.PutResult{}, mapErr("create multipart upload", req.Key, err)
	}
	uploadID := aws.ToString(created.UploadId)
	parts := make([]types.CompletedPart, n)
	s.log.Debug("multipart upload", "key", req.Key, "parts", n, "part_size", ps)
	binding := s.PartBinding(ctx)

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(partConcurrency)
	for i := range n {
		g.Go(func() error {
			off := int64(i) * ps
			l := min(ps, req.Size-off)
			sum := sums[i]
			out, err := s.c.UploadPart(gctx, &s3.UploadPartInput{
				Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
				PartNumber:        aws.Int32(int32(i + 1)),
				Body:              io.NewSectionReader(req.Body, off, l),
				ContentLength:     aws.Int64(l),
				ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
				ChecksumSHA256:    aws.String(sum.Base64()),
			}, s.partSigning(binding, sum))
			if err != nil {
				return mapErr(fmt.Sprintf("upload part %d of", i+1), req.Key, err)
			}
			parts[i] = types.CompletedPart{
				PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag,
				ChecksumSHA256: aws.String(sum.Base64()),
			}
			return nil
		})
	}
	err = g.Wait()
	var out *s3.CompleteMultipartUploadOutput
	if err == nil {
		out, err = s.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		})
		if err != nil {
			err = mapErr("complete multipart upload", req.Key, err)
		}
	}
	if err != nil {
		// Abort even when ctx has ended: parts left behind hold space.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, aerr := s.c.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
		}); aerr != nil {
			s.log.Warn("abort multipart upload", "key", req.Key, "err", aerr)
		}
		return objstore.PutResult{}, err
	}
	return objstore.PutResult{
		VersionID: aws.ToString(out.VersionId), ETag: aws.ToString(out.ETag),
		ChecksumSHA256: aws.ToString(out.ChecksumSHA256), Parts: n,
	}, nil
}

// encodeTags is the x-amz-tagging header: URL query encoding.
func encodeTags(tags map[string]string) string {
	if len(tags) == 0 {
		return ""
	}
	v := url.Values{}
	for k, val := range tags {
		v.Set(k, val)
	}
	return strings.ReplaceAll(v.Encode(), "+", "%20")
}

// partsOf is the part count of a composite checksum "…-N", else the
// store's parts count, else 0.
func partsOf(sum string, typ types.ChecksumType, count *int32) int {
	if typ != types.ChecksumTypeFullObject {
		if i := strings.LastIndexByte(sum, '-'); i > 0 {
			var n int
			if _, err := fmt.Sscanf(sum[i+1:], "%d", &n); err == nil && n > 0 {
				return n
			}
		}
	}
	if count != nil && *count > 1 {
		return int(*count)
	}
	return 0
}

// Stat implements objstore.Store.
func (s *Store) Stat(ctx context.Context, key, versionID string) (objstore.ObjectInfo, error) {
	head, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.key(key)), VersionId: optString(versionID),
		ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		return objstore.ObjectInfo{}, mapErr("stat", key, err)
	}
	vid := aws.ToString(head.VersionId)
	if vid == "" {
		vid = versionID
	}
	info := objstore.ObjectInfo{
		Key: key, VersionID: vid, Size: aws.ToInt64(head.ContentLength), ETag: aws.ToString(head.ETag),
		ChecksumSHA256: aws.ToString(head.ChecksumSHA256), ChecksumType: string(head.ChecksumType),
		SHA256: strings.ToLower(head.Metadata["sha256"]), Metadata: head.Metadata,
		LockMode: string(head.ObjectLockMode), LegalHold: head.ObjectLockLegalHoldStatus == types.ObjectLockLegalHoldStatusOn,
	}
	if info.ChecksumSHA256 != "" && info.ChecksumType == "" {
		info.ChecksumType = objstore.ChecksumFullObject
		if partsOf(info.ChecksumSHA256, "", nil) > 0 {
			info.ChecksumType = objstore.ChecksumComposite
		}
	}
	if head.ObjectLockRetainUntilDate != nil {
		info.RetainUntil = head.ObjectLockRetainUntilDate.UTC()
	}
	tags, err := s.c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.key(key)), VersionId: optString(vid),
	})
	if err != nil {
		return info, mapErr("stat: get tags of", key, err)
	}
	info.Tags = make(map[string]string, len(tags.TagSet))
	for _, t := range tags.TagSet {
		info.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	if head.ObjectLockMode == "" {
		// Some servers (and principals without s3:GetObjectRetention on
		// HEAD) leave the lock headers out: ask for them explicitly.
		r, err := s.c.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{
			Bucket: aws.String(s.bucket), Key: aws.String(s.key(key)), VersionId: optString(vid),
		})
		switch {
		case err == nil && r.Retention != nil:
			info.LockMode = string(r.Retention.Mode)
			if r.Retention.RetainUntilDate != nil {
				info.RetainUntil = r.Retention.RetainUntilDate.UTC()
			}
		case err != nil && !noLockConfig(err):
			return info, mapErr("stat: get retention of", key, err)
		}
		if head.ObjectLockLegalHoldStatus == "" {
			h, err := s.c.GetObjectLegalHold(ctx, &s3.GetObjectLegalHoldInput{
				Bucket: aws.String(s.bucket), Key: aws.String(s.key(key)), VersionId: optString(vid),
			})
			switch {
			case err == nil && h.LegalHold != nil:
				info.LegalHold = h.LegalHold.Status == types.ObjectLockLegalHoldStatusOn
			case err != nil && !noLockConfig(err):
				return info, mapErr("stat: get legal hold of", key, err)
			}
		}
	}
	return info, nil
}

// noLockConfig reports the errors that mean "this version has no retention
// or legal hold", which servers express in different ways.
func noLockConfig(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError", "InvalidRequest", "NoSuchKey", "NotFound":
			return true
		}
	}
	return false
}

// Open implements objstore.Store.
func (s *Store) Open(ctx context.Context, key, versionID string) (io.ReadCloser, error) {
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.key(key)), VersionId: optString(versionID),
	})
	if err != nil {
		return nil, mapErr("open", key, err)
	}
	return out.Body, nil
}

// EnsureBucket creates the bucket with Object Lock (which brings
// versioning) when it is missing, and otherwise checks that versioning and
// Object Lock are both enabled: evidence must never land in a bucket where
// a version can be overwritten or deleted at will. It then sets
// Config.DefaultRetention as the bucket default when the bucket has none
// (an existing default is left alone: it may only be stricter by design).
func (s *Store) EnsureBucket(ctx context.Context) error {
	_, err := s.c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err != nil {
		merr := mapErr("check bucket", s.bucket, err)
		if !errors.Is(merr, objstore.ErrNotFound) && !errors.Is(merr, objstore.ErrNoSuchBucket) {
			return merr
		}
		in := &s3.CreateBucketInput{Bucket: aws.String(s.bucket), ObjectLockEnabledForBucket: aws.Bool(true)}
		if s.region != "" && s.region != "us-east-1" {
			in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(s.region)}
		}
		if _, err := s.c.CreateBucket(ctx, in); err != nil {
			var owned *types.BucketAlreadyOwnedByYou
			if !errors.As(err, &owned) {
				return mapErr("create bucket", s.bucket, err)
			}
		} else {
			s.log.Info("bucket created", "bucket", s.bucket)
		}
		if _, err := s.c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
			Bucket:                  aws.String(s.bucket),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
		}); err != nil {
			return mapErr("enable versioning on bucket", s.bucket, err)
		}
	}
	v, err := s.c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(s.bucket)})
	if err != nil {
		return mapErr("get versioning of bucket", s.bucket, err)
	}
	if v.Status != types.BucketVersioningStatusEnabled {
		return fmt.Errorf("bucket %s: versioning is %q, not Enabled; evidenced needs a versioned bucket with Object Lock (create a new one with store-init): %w", s.bucket, v.Status, objstore.ErrInvalidRequest)
	}
	lc, err := s.c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(s.bucket)})
	if err != nil && !noLockConfig(err) {
		return mapErr("get Object Lock configuration of bucket", s.bucket, err)
	}
	if err != nil || lc.ObjectLockConfiguration == nil || lc.ObjectLockConfiguration.ObjectLockEnabled != types.ObjectLockEnabledEnabled {
		return fmt.Errorf("bucket %s: Object Lock is not enabled; it can only be enabled when a bucket is created (use a new bucket name and store-init): %w", s.bucket, objstore.ErrInvalidRequest)
	}
	if s.defRet.Mode == "" || s.defRet.Days <= 0 {
		return nil
	}
	if r := lc.ObjectLockConfiguration.Rule; r != nil && r.DefaultRetention != nil {
		d := r.DefaultRetention
		s.log.Info("bucket default retention present, left as is", "bucket", s.bucket,
			"mode", d.Mode, "days", aws.ToInt32(d.Days), "years", aws.ToInt32(d.Years))
		return nil
	}
	if _, err := s.c.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{
		Bucket: aws.String(s.bucket),
		ObjectLockConfiguration: &types.ObjectLockConfiguration{
			ObjectLockEnabled: types.ObjectLockEnabledEnabled,
			Rule: &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{
				Mode: types.ObjectLockRetentionMode(s.defRet.Mode), Days: aws.Int32(int32(s.defRet.Days)),
			}},
		},
	}); err != nil {
		return mapErr("set the default retention of bucket", s.bucket, err)
	}
	s.log.Info("bucket default retention set", "bucket", s.bucket, "mode", s.defRet.Mode, "days", s.defRet.Days)
	return nil
}

// BucketDefaultRetention is the bucket's Object Lock default retention
// (zero when it has none).
func (s *Store) BucketDefaultRetention(ctx context.Context) (DefaultRetention, error) {
	lc, err := s.c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(s.bucket)})
	if err != nil {
		if noLockConfig(err) {
			return DefaultRetention{}, nil
		}
		return DefaultRetention{}, mapErr("get Object Lock configuration of bucket", s.bucket, err)
	}
	if lc.ObjectLockConfiguration == nil || lc.ObjectLockConfiguration.Rule == nil || lc.ObjectLockConfiguration.Rule.DefaultRetention == nil {
		return DefaultRetention{}, nil
	}
	d := lc.ObjectLockConfiguration.Rule.DefaultRetention
	return DefaultRetention{Mode: string(d.Mode), Days: int(aws.ToInt32(d.Days)) + 365*int(aws.ToInt32(d.Years))}, nil
}

// CountVersions counts the object versions (not delete markers) whose keys
// start with prefix (relative to the configured Prefix).
func (s *Store) CountVersions(ctx context.Context, prefix string) (int, error) {
	vs, err := s.ListVersions(ctx, prefix)
	return len(vs), err
}

// mapErr wraps err with the operation, the key and the objstore sentinel
// that classifies it, keeping the store's own message.
// MapError wraps an error from the SDK client (Client) with the objstore
// sentinel it means (ErrAccessDenied, ErrNoSuchBucket, ...), as every Store
// method does, for a caller that used the client directly.
func MapError(err error) error {
	if s := sentinel(err); s != nil {
		return fmt.Errorf("%w: %w", s, err)
	}
	return err
}

func mapErr(op, key string, err error) error {
	if s := sentinel(err); s != nil {
		return fmt.Errorf("%s %s: %w: %w", op, key, s, err)
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

func sentinel(err error) error {
	code := ""
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	status := 0
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	switch code {
	case "NoSuchBucket":
		return objstore.ErrNoSuchBucket
	case "NoSuchKey", "NoSuchVersion", "NotFound", "NoSuchUpload":
		return objstore.ErrNotFound
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled", "AccountProblem", "Forbidden":
		return objstore.ErrAccessDenied
	case "BadDigest", "XAmzContentChecksumMismatch", "InvalidDigest", "XAmzContentSHA256Mismatch":
		return objstore.ErrChecksumMismatch
	case "InvalidRequest", "InvalidArgument", "InvalidTag", "MalformedXML", "InvalidBucketName",
		"KeyTooLongError", "EntityTooLarge", "EntityTooSmall", "InvalidPart", "InvalidPartOrder",
		"MetadataTooLarge", "InvalidRetentionPeriod", "InvalidObjectState", "MissingContentLength",
		"InvalidRange":
		return objstore.ErrInvalidRequest
	case "RequestTimeTooSkewed", "RequestTimeout", "SlowDown", "ExpiredToken":
		return nil // transient: a retry (after the SDK's clock-skew fix) can succeed
	}
	switch status {
	case 404:
		return objstore.ErrNotFound
	case 403:
		return objstore.ErrAccessDenied
	case 405:
		// HEAD/GET of a version that is a delete marker.
		return objstore.ErrNotFound
	}
	return nil
}
