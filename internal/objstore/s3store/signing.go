package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
)

// computePayloadHashID is the Finalize middleware of aws-sdk-go-v2 that
// decides the SigV4 payload hash (x-amz-content-sha256): for PutObject and
// UploadPart it is v4's dynamic payload signing middleware, which over
// plain HTTP reads and SHA-256-hashes the whole body and seeks back
// (ComputePayloadSHA256), and over HTTPS signs "UNSIGNED-PAYLOAD".
const computePayloadHashID = "ComputePayloadHash"

// knownPayloadHashID names our middleware in the stack.
const knownPayloadHashID = "evidenced.KnownPayloadSHA256"

// withPayloadSHA256 is a per-call option for a request whose body is known
// to hash to sum: it puts sum in the signing context ahead of the SDK's
// payload hash middleware, which then leaves it alone (ComputePayloadSHA256
// and UnsignedPayload both skip when v4.GetPayloadHash is already set).
//
// Why: every body we send (a vault copy or one part of it) was already
// hashed on this host, in the same pass that checked it against the item's
// recorded SHA-256, and its sum travels as x-amz-checksum-sha256. Without
// this the SDK hashes the body a second time over plain HTTP only to sign
// it, which for a 60 GB recording is a full extra read and SHA-256 pass on
// the dock host. Nothing is weakened: the server recomputes the body's
// SHA-256 against x-amz-content-sha256 and refuses a mismatch (the sum is
// that of the bytes we meant to send, not of whatever the file gives at
// send time, so a body that changed after hashing is refused rather than
// signed as it is), and over HTTPS the signature now covers the body where
// UNSIGNED-PAYLOAD did not.
//
// The value is a stack value, set again on every attempt (the retry loop
// runs the Finalize step once per attempt), and the option is applied to a
// copy of the client's options, so concurrent calls do not share it.
func withPayloadSHA256(sum digest.Sum) func(*s3.Options) { return withPayloadHash(sum.Hex()) }

// unsignedPayload is SigV4's payload hash for a body the signature does not
// cover by itself.
const unsignedPayload = "UNSIGNED-PAYLOAD"

// withPayloadHash is withPayloadSHA256 for any payload hash value, such as
// unsignedPayload.
func withPayloadHash(h string) func(*s3.Options) {
	mw := middleware.FinalizeMiddlewareFunc(knownPayloadHashID, func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		return next.HandleFinalize(v4.SetPayloadHash(ctx, h), in)
	})
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			if err := st.Finalize.Insert(mw, computePayloadHashID, middleware.Before); err != nil {
				return fmt.Errorf("set the payload hash for signing: %w", err)
			}
			return nil
		})
	}
}

// PartBinding is how a part's bytes are bound to the SHA-256 evidenced
// sent with it, so that the store refuses a part that is not those bytes.
type PartBinding int32

const (
	// BindingUnproven: not yet found out (or the last probe failed).
	BindingUnproven PartBinding = iota
	// BindingPayloadHash: the SigV4 payload hash (x-amz-content-sha256) is
	// the part's SHA-256. Every store that checks signatures checks it,
	// Ceph RGW 16 included, which ignores x-amz-checksum-*; the cost is
	// that a store which checks both hashes every part twice.
	BindingPayloadHash
	// BindingChecksum: the part is signed UNSIGNED-PAYLOAD and bound by its
	// x-amz-checksum-sha256 header alone, which SigV4 signs like every
	// x-amz-* header. Used only after this store refused a probe part whose
	// checksum header was wrong: the store was seen to check it.
	BindingChecksum
)

func (b PartBinding) String() string {
	switch b {
	case BindingPayloadHash:
		return "signed payload hash"
	case BindingChecksum:
		return "x-amz-checksum-sha256 (checked by the store)"
	}
	return "unproven"
}

// probeRetry is how long a probe that could not reach a verdict (the store
// was down, the probe timed out) is not tried again; parts use the payload
// hash meanwhile.
const probeRetry = time.Minute

// probeRenew is how long a verdict stands before the store is probed
// again: a store upgraded behind the same endpoint (one that starts, or
// stops, checking x-amz-checksum-sha256) is noticed within a day. A new
// endpoint is a new Store, probed before its first part.
const probeRenew = 24 * time.Hour

// PartProbe is what the part-checksum probe last found.
type PartProbe struct {
	// Binding is the verdict: BindingChecksum or BindingPayloadHash, or
	// BindingUnproven when the probe could not run to one (Err says why;
	// parts use the payload hash meanwhile).
	Binding PartBinding
	// Why is what the store did that decided the verdict.
	Why string
	// Err is why the probe reached no verdict.
	Err error
	// At is when the probe ran.
	At time.Time
	// Left is why the probe's upload could not be aborted: it is still
	// on the store (an upload holds no Object Lock; the next probe and the
	// uploader's start-up sweep try again, or it can be aborted by hand or
	// expire by a lifecycle rule); LeftUpload names it.
	Left       error
	LeftUpload string
}

// InUse is the binding parts are sent with: the verdict, or the signed
// payload hash while there is none.
func (p PartProbe) InUse() PartBinding {
	if p.Binding == BindingUnproven {
		return BindingPayloadHash
	}
	return p.Binding
}

// PartBinding says how parts are bound to their SHA-256 on this store,
// probing it first if that is not known yet (see ProbeParts).
func (s *Store) PartBinding(ctx context.Context) PartBinding {
	return s.ProbeParts(ctx).InUse()
}

// ProbeParts returns what the probe found, probing the store when it has
// not been probed yet, when the last probe reached no verdict more than
// probeRetry ago, or when the verdict is older than probeRenew.
func (s *Store) ProbeParts(ctx context.Context) PartProbe {
	s.bindMu.Lock()
	defer s.bindMu.Unlock()
	now := s.clock()
	wait := probeRenew
	if s.probe.Binding == BindingUnproven {
		wait = probeRetry
	}
	if !s.probe.At.IsZero() && now.Before(s.probe.At.Add(wait)) {
		return s.probe
	}
	var left leftUpload
	b, why, err := s.probePartChecksum(ctx, &left)
	s.probe = PartProbe{Binding: b, Why: why, Err: err, At: now, Left: left.err, LeftUpload: left.upload}
	if err != nil {
		s.log.Debug("store: could not find out whether it checks part checksums; signing part hashes", "err", err)
		return s.probe
	}
	s.log.Info("store: parts bound to their SHA-256 by "+b.String(), "bucket", s.bucket, "why", why)
	return s.probe
}

// clock is the time the probe's schedule follows.
func (s *Store) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// partSigning is the per-call option that binds a part to sum as
// PartBinding decided.
func (s *Store) partSigning(b PartBinding, sum digest.Sum) func(*s3.Options) {
	if b == BindingChecksum {
		return withPayloadHash(unsignedPayload)
	}
	return withPayloadSHA256(sum)
}

// leftUpload is a probe upload that could not be aborted, and why.
type leftUpload struct {
	upload string
	err    error
}

// probePartChecksum asks the store whether it checks x-amz-checksum-sha256
// on a part when the payload is unsigned: it uploads one small part whose
// checksum header is the SHA-256 of other bytes, then aborts the upload (an
// aborted upload leaves nothing, even in an Object-Locked bucket). Refused
// as a checksum mismatch: the store checks, BindingChecksum. Accepted: it
// does not (Ceph RGW 16), BindingPayloadHash. Refused otherwise for good
// (access, an unsupported header): BindingPayloadHash. Anything transient
// is returned as an error and decides nothing. The string says what the
// store did that decided the verdict; *left is set when the probe's upload
// could not be aborted. Uploads an earlier probe left at the key are
// aborted first (abortLeftProbes).
func (s *Store) probePartChecksum(ctx context.Context, left *leftUpload) (PartBinding, string, error) {
	s.abortLeftProbes(ctx)
	key := s.key(objstore.PartProbeKey)
	created, err := s.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	})
	if err != nil {
		err = mapErr("probe part checksums: create multipart upload", objstore.PartProbeKey, err)
		if objstore.IsPermanent(err) {
			return BindingPayloadHash, "the store refused to start the probe upload: " + err.Error(), nil
		}
		return BindingUnproven, "", err
	}
	defer func() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, err := s.c.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: created.UploadId,
		}); err != nil {
			*left = leftUpload{upload: "upload " + aws.ToString(created.UploadId) + " of " + key, err: MapError(err)}
			s.log.Warn("store: aborting the part checksum probe", "key", key, "err", err)
		}
	}()
	body := []byte("evidenced: does this store check x-amz-checksum-sha256 on an unsigned part?\n")
	part := func(n int32, sum digest.Sum) error {
		_, err := s.c.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: created.UploadId,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
			ChecksumAlgorithm: types.ChecksumAlgorithmSha256, ChecksumSHA256: aws.String(sum.Base64()),
		}, withPayloadHash(unsignedPayload))
		return err
	}
	err = part(1, digest.Bytes([]byte("not the probe's body")))
	if err == nil {
		return BindingPayloadHash, WhyIgnored, nil
	}
	// Only the store's word for a wrong checksum header counts: a store
	// that refuses UNSIGNED-PAYLOAD itself (XAmzContentSHA256Mismatch) or
	// every unsigned part says nothing about the header.
	var ae smithy.APIError
	if !errors.As(err, &ae) || (ae.ErrorCode() != "BadDigest" && ae.ErrorCode() != "XAmzContentChecksumMismatch") {
		err = mapErr("probe part checksums: upload part", objstore.PartProbeKey, err)
		if objstore.IsPermanent(err) {
			return BindingPayloadHash, "the store refused the unsigned probe part: " + err.Error(), nil
		}
		return BindingUnproven, "", err
	}
	// The positive control: the same unsigned part with its right checksum
	// must be taken, or parts bound this way would all be refused.
	if err := part(2, digest.Bytes(body)); err != nil {
		err = mapErr("probe part checksums: upload the control part", objstore.PartProbeKey, err)
		if objstore.IsPermanent(err) {
			return BindingPayloadHash, "the store refused a wrong x-amz-checksum-sha256 but also the right one: " + err.Error(), nil
		}
		return BindingUnproven, "", err
	}
	return BindingChecksum, WhyChecked, nil
}

// abortLeftProbes aborts every upload at the probe's key before a new
// probe opens its own. A probe's upload is never completed, so one found
// there was left by a process stopped between its CreateMultipartUpload and
// its abort (kill -9, power cut) or by an abort the store refused: nothing
// else would ever remove it (it is no recording's upload, and the
// uploader's sweep of uploads it does not know waits for
// upload.abandoned_after). Each one aborted is named in the log.
//
// Another host probing the same bucket and prefix at this very moment
// may lose its upload to this: its part then finds no upload
// (ErrNotFound, not permanent), which decides nothing, and it probes
// again after probeRetry. A listing or an abort that fails is logged and
// does not stop the probe: the leftover is tried again at the next one.
func (s *Store) abortLeftProbes(ctx context.Context) {
	ups, err := s.ListMultipart(ctx, objstore.PartProbeKey)
	if err != nil {
		s.log.Warn("store: could not list part checksum probe uploads left by an earlier probe", "err", err)
		return
	}
	for _, up := range ups {
		if up.Key != objstore.PartProbeKey {
			continue
		}
		if err := s.AbortMultipart(ctx, up.Key, up.UploadID); err != nil && !errors.Is(err, objstore.ErrNotFound) {
			s.log.Warn("store: could not abort a part checksum probe upload left by an earlier probe",
				"key", s.key(up.Key), "upload_id", up.UploadID, "initiated", up.Initiated, "err", err)
			continue
		}
		s.log.Info("store: aborted a part checksum probe upload left by an earlier probe (a process stopped mid-probe)",
			"key", s.key(up.Key), "upload_id", up.UploadID, "initiated", up.Initiated)
	}
}

// What decided the two usual verdicts.
const (
	WhyChecked = "the store refused a probe part whose x-amz-checksum-sha256 was wrong and took it when right"
	WhyIgnored = "the store took a probe part whose x-amz-checksum-sha256 was wrong: it ignores the header"
)
