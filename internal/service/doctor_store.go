package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
	"github.com/evidenced/evidenced/internal/upload"
)

// doctorProbeLock is the retention doctor's probe object gets when the
// bucket would otherwise lock it by default: GOVERNANCE, for the shortest
// time the store accepts in the future, so the version can be deleted
// moments later instead of staying for the bucket's default days.
const doctorProbeLock = 2 * time.Second

// liveLimiter caps uploads at upload.bandwidth and its windows as they are
// now: the rate is read from the newest config at every wait, so a reload
// changes it for uploads in progress too. Without a cap in the config the
// store gets no limiter (nothing to slow down), and a cap added later needs
// a restart.
func liveLimiter(cfg *config.Config) objstore.Limiter {
	if upload.NewLimiter(cfg.Upload) == nil {
		return nil
	}
	return upload.NewRateLimiter(cfg.UploadBandwidthAt, time.Now)
}

// storeConfig is the object store's client configuration from cfg.
func storeConfig(cfg *config.Config) s3store.Config {
	backstop := s3store.DefaultRetention{}
	backstop.Mode, backstop.Days, _ = cfg.BackstopRetention()
	o := cfg.ObjectStore
	return s3store.Config{
		Endpoint: o.Endpoint, Bucket: o.Bucket, Region: o.Region,
		PathStyle: o.PathStyle, Prefix: o.Prefix,
		MultipartThreshold: int64(o.MultipartThreshold),
		Limiter:            liveLimiter(cfg),
		DefaultRetention:   backstop,
	}
}

// doctorActions are the S3 permissions doctor's store checks use: the
// bucket's settings; the probe object's put (with its own retention when
// the bucket locks by default), versioned get, versioned tagging and
// versioned delete; and the part probe's aborted upload.
var doctorActions = []string{
	"s3:GetBucketVersioning", "s3:GetBucketObjectLockConfiguration",
	"s3:PutObject", "s3:PutObjectRetention", "s3:GetObject", "s3:GetObjectVersion",
	"s3:PutObjectTagging", "s3:PutObjectVersionTagging", "s3:DeleteObjectVersion", "s3:AbortMultipartUpload",
}

// storeFix is what to do about a store that could not be asked.
func storeFix(why string, cfg *config.Config) string {
	switch {
	// Keys the store does not know or none at all; a request the store
	// refused with keys it knows ("access denied (check the credentials
	// and the bucket policy)") is a missing grant, below.
	case strings.Contains(why, "access key") || strings.Contains(why, "secret key") || why == s3store.ErrNoCredentials.Error():
		return "put the right AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in /etc/evidenced/credentials (see the unit file)"
	case strings.Contains(why, "access denied"):
		return "grant the credentials " + strings.Join(doctorActions, ", ") + " on " + cfg.ObjectStore.Bucket
	case strings.Contains(why, "bucket does not exist"):
		return "evidenced store-init creates it with versioning and Object Lock"
	}
	return "check object_store.endpoint (" + cfg.ObjectStore.Endpoint + "), the network and that the store is running"
}

// doctorStore checks the object store: reachable with these credentials,
// the bucket versioned with Object Lock, and the permissions uploads use,
// with a probe object under _doctor/ that is deleted again.
func doctorStore(ctx context.Context, r *DoctorReport, cfg *config.Config) {
	const name = "store"
	if cfg.ObjectStore == nil {
		r.skip(name, "no object_store configured: recordings stay in the vault")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	st, err := s3store.New(ctx, storeConfig(cfg), slog.New(slog.DiscardHandler))
	if err != nil {
		r.fail(name, err.Error(), "fix object_store in the config")
		return
	}
	c, bucket := st.Client(), aws.String(st.Bucket())
	where := st.Endpoint() + " bucket " + st.Bucket()
	v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: bucket})
	if err != nil {
		why := whyUnavailable(s3store.MapError(err))
		if why == "" {
			why = err.Error()
		}
		r.fail("store: reachable", where+": "+why, storeFix(why, cfg))
		return
	}
	r.ok("store: reachable", where+" answers with these credentials")
	lc, lerr := c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: bucket})
	locked := lerr == nil && lc.ObjectLockConfiguration != nil && lc.ObjectLockConfiguration.ObjectLockEnabled == types.ObjectLockEnabledEnabled
	switch {
	case v.Status != types.BucketVersioningStatusEnabled:
		r.fail("store: bucket", fmt.Sprintf("versioning is %q, not Enabled", v.Status), "use a new bucket made by evidenced store-init (Object Lock can only be enabled at creation)")
		return
	case !locked:
		// A store that cannot say (refused, down) is not a bucket without
		// Object Lock: its fix is not a new bucket.
		if why := whyUnavailable(s3store.MapError(lerr)); lerr != nil && why != "" {
			r.fail("store: bucket", "cannot read the Object Lock configuration: "+why, storeFix(why, cfg))
			return
		}
		r.fail("store: bucket", "Object Lock is not enabled", "use a new bucket made by evidenced store-init (Object Lock can only be enabled at creation)")
		return
	}
	rule := lc.ObjectLockConfiguration.Rule
	byDefault := rule != nil && rule.DefaultRetention != nil
	def := "no default retention"
	if byDefault {
		d := rule.DefaultRetention
		def = fmt.Sprintf("default retention %s %dd", d.Mode, aws.ToInt32(d.Days)+365*aws.ToInt32(d.Years))
	}
	r.ok("store: bucket", "versioning and Object Lock enabled, "+def)
	doctorProbe(ctx, r, c, st.Bucket(), cfg, byDefault)
	p := st.ProbeParts(ctx)
	doctorPartIntegrity(r, p)
	if p.Left != nil {
		r.fail("store: part probe removed", p.LeftUpload+" could not be aborted: "+errText(p.Left),
			"abort it (aws s3api abort-multipart-upload, or a lifecycle rule for incomplete uploads); grant s3:AbortMultipartUpload")
	}
}

// doctorPartIntegrity says how the store binds an upload part to its
// SHA-256, as the aborted probe upload of s3store.ProbeParts found: checked
// by the store's x-amz-checksum-sha256, or the signed payload hash because
// the store ignores (or refused) that header, or that the probe could not
// run. Either binding makes the store refuse a part that is not the bytes
// hashed on this host; a probe that could not run is not a finding about
// the store but a check not done, so it fails with why.
func doctorPartIntegrity(r *DoctorReport, p s3store.PartProbe) {
	const name = "store: part integrity"
	switch {
	case p.Binding == s3store.BindingChecksum:
		r.ok(name, "each upload part bound to its SHA-256 by x-amz-checksum-sha256 (checked by the store): "+p.Why)
	case p.Binding == s3store.BindingPayloadHash && p.Why == s3store.WhyIgnored:
		r.ok(name, "the store ignores x-amz-checksum-sha256 on a part, so each part is bound to its SHA-256 by the signed payload hash (x-amz-content-sha256)")
	case p.Binding == s3store.BindingPayloadHash:
		r.ok(name, "each upload part bound to its SHA-256 by the signed payload hash (x-amz-content-sha256): "+p.Why)
	default:
		why := "no verdict"
		if p.Err != nil {
			why = errText(p.Err)
		}
		r.fail(name, "could not probe whether the store checks x-amz-checksum-sha256 on a part: "+why+
			" (until a probe succeeds, parts are bound by the signed payload hash)",
			"run doctor again once the store answers; if this persists, look in the store's log for the aborted multipart upload "+probeKeyHint)
	}
}

// probeKeyHint names the key the part probe uses, relative to the prefix.
const probeKeyHint = "_probe/part-checksum"

// doctorProbe writes, reads, tags and deletes one small object under
// _doctor/<host>/. When the bucket locks new objects by default the probe
// carries its own GOVERNANCE retention of doctorProbeLock (which also
// exercises s3:PutObjectRetention) and is deleted once that has passed.
func doctorProbe(ctx context.Context, r *DoctorReport, c *s3.Client, bucket string, cfg *config.Config, byDefault bool) {
	const name = "store: permissions"
	key := cfg.ObjectStore.Prefix + "_doctor/" + cfg.HostID + "/" + time.Now().UTC().Format("20060102T150405.000000000Z")
	body := []byte("evidenced doctor probe " + key + "\n")
	sum := sha256.Sum256(body)
	in := &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))), ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	}
	var until time.Time
	if byDefault {
		until = time.Now().Add(doctorProbeLock).UTC()
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = types.ObjectLockModeGovernance, aws.Time(until)
	}
	put, err := c.PutObject(ctx, in)
	if err != nil {
		r.fail(name, steps0(until)+" "+key+": "+errText(err), storeFix("access denied", cfg))
		return
	}
	vid := put.VersionId
	steps := []string{steps0(until)}
	fail := func(step string, err error) {
		r.fail(name, fmt.Sprintf("%s (done: %s): %s", step, strings.Join(steps, ", "), errText(err)), storeFix("access denied", cfg))
	}
	defer func() {
		// Always try to remove the probe, whatever failed above. No
		// BypassGovernanceRetention: the probe's own lock has passed, and
		// the host's credentials should not hold that permission.
		if !until.IsZero() {
			select {
			case <-time.After(time.Until(until) + time.Second):
			case <-ctx.Done():
			}
		}
		_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), VersionId: vid})
		if err != nil {
			r.fail("store: probe removed", fmt.Sprintf("version %s of %s: %s", aws.ToString(vid), key, errText(err)),
				"delete that version by hand once its retention (if any) has passed; grant s3:DeleteObjectVersion")
			return
		}
		r.ok("store: probe removed", "version "+aws.ToString(vid)+" of "+key+" deleted")
	}()
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), VersionId: vid})
	if err != nil {
		fail("get", err)
		return
	}
	data, err := io.ReadAll(got.Body)
	got.Body.Close()
	if err == nil && !bytes.Equal(data, body) {
		err = errors.New("the object read back differs from what was written")
	}
	if err != nil {
		fail("get", err)
		return
	}
	steps = append(steps, "get")
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{
		Bucket: aws.String(bucket), Key: aws.String(key), VersionId: vid,
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("evidenced-doctor"), Value: aws.String("probe")}}},
	}); err != nil {
		fail("tag", err)
		return
	}
	steps = append(steps, "tag")
	r.ok(name, strings.Join(steps, ", ")+" under _doctor/")
}

// steps0 names the probe's put: with its own retention (which needs
// s3:PutObjectRetention) when the bucket locks new objects by default.
func steps0(until time.Time) string {
	if until.IsZero() {
		return "put"
	}
	return "put with retention"
}

// errText is the store's error, shortened to what it means when that is
// known (access denied, no such bucket, unreachable).
func errText(err error) string {
	if why := whyUnavailable(s3store.MapError(err)); why != "" {
		return why
	}
	return err.Error()
}

// doctorNotChecked is what doctor cannot tell without leaving evidence
// behind or without the daemon's own sandbox.
var doctorNotChecked = []string{
	"setting retention on an existing version (s3:PutObjectRetention on retag/hold), COMPLIANCE mode and legal holds: an object locked that way could not be deleted again",
	"completing a multipart upload and listing its parts (the part probe starts, sends and aborts one) and listing object versions",
	"the unit's sandbox: doctor runs with your privileges, not the service's (systemd-analyze security evidenced)",
	"the TSA (custody.tsa_url), when configured",
}
