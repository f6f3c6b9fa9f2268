package fault

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/testutil/faultproxy"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
	"github.com/evidenced/evidenced/internal/upload"
)

// TestRGWMultipartLockedTaggedResumed uploads a 20 MiB recording (three
// parts) to Ceph RGW, which drops the Object Lock and tags of a multipart
// upload, reports no checksums and returns no ETag from Complete. The
// first attempt is cut off at the third part; the second resumes from the
// two parts RGW holds (kept by the size and ETag the ledger recorded, as
// RGW reports no checksum to match) and sends only the third. The
// recording ends verified, with the ETag HeadObject reports in UPLOADED,
// the lock and tags the uploader re-applied recorded, and both in place as
// an independent client (Debian's /usr/bin/aws) reads them.
func TestRGWMultipartLockedTaggedResumed(t *testing.T) {
	r := newRigOn(t, s3srv.RGW(t), nil)
	ctx := context.Background()
	it := r.item(20*mib+123, "")
	ps := objstore.PartSize(it.Size)

	part3 := func(req *http.Request) bool {
		return faultproxy.IsUploadPart(req) && req.URL.Query().Get("partNumber") == "3"
	}
	r.proxy.Add(faultproxy.Rule{Match: part3, Fault: faultproxy.Status500})
	err := r.up.Process(ctx, it.ID)
	if err == nil || errors.Is(err, upload.ErrPermanent) {
		t.Fatalf("first attempt with part 3 refused: %v, want a transient failure", err)
	}
	recorded := 0
	for _, e := range r.events(it.ID, custody.UploadParts) {
		recorded += len(strings.Split(e.Details["parts"], ","))
	}
	if recorded != 2 {
		t.Fatalf("%d parts recorded after the first attempt, want 2", recorded)
	}

	r.proxy.Clear()
	before := r.proxy.BodyBytes()
	if err := r.up.Process(ctx, it.ID); err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	sent := r.proxy.BodyBytes() - before
	st, _ := r.up.LastResume(it.ID)
	t.Logf("first attempt sent %d bytes; the resumed one %d bytes for a %d-byte recording (%+v)", before, sent, it.Size, st)
	if !st.Resumed || st.PartsKept != 2 || st.PartsSent != 1 || sent > it.Size-2*ps+mib {
		t.Errorf("resume: %+v, %d bytes sent; want parts 1-2 kept and only part 3 (%d bytes) sent", st, sent, it.Size-2*ps)
	}
	if n := len(r.events(it.ID, custody.UploadStarted)); n != 1 {
		t.Errorf("%d UPLOAD_STARTED, want 1 (resumed, not restarted)", n)
	}

	it = r.states()[it.ID]
	if it.State != custody.StateVerified {
		t.Fatalf("item is %s (%s), want verified", it.State, it.LastError)
	}
	r.readBack(it)
	ups := r.events(it.ID, custody.Uploaded)
	if len(ups) != 1 {
		t.Fatalf("%d UPLOADED events", len(ups))
	}
	d := ups[0].Details
	head, err := r.srv.Client().HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(r.bucket), Key: aws.String(it.ObjectKey), VersionId: aws.String(it.VersionID),
	})
	if err != nil {
		t.Fatal(err)
	}
	if d["etag"] == "" || d["etag"] != aws.ToString(head.ETag) {
		t.Errorf("UPLOADED etag %q, HeadObject says %q", d["etag"], aws.ToString(head.ETag))
	}
	if d["applied_after_upload"] != "retention,tags" {
		t.Errorf("UPLOADED applied_after_upload = %q, want retention,tags (RGW drops both on multipart uploads)", d["applied_after_upload"])
	}

	// What an independent client reads back.
	cli := awsCLI(t, r.srv)
	var ret struct {
		Retention struct{ Mode, RetainUntilDate string }
	}
	cli(&ret, "get-object-retention", "--bucket", r.bucket, "--key", it.ObjectKey, "--version-id="+it.VersionID)
	until, err := time.Parse(time.RFC3339, ret.Retention.RetainUntilDate)
	if ret.Retention.Mode != objstore.LockGovernance || err != nil || until.Before(it.RetainUntil.Add(-time.Second)) {
		t.Errorf("aws get-object-retention: %+v (%v), want GOVERNANCE until at least %s", ret.Retention, err, it.RetainUntil.Format(time.RFC3339))
	}
	var tags struct{ TagSet []struct{ Key, Value string } }
	cli(&tags, "get-object-tagging", "--bucket", r.bucket, "--key", it.ObjectKey, "--version-id="+it.VersionID)
	got := map[string]string{}
	for _, kv := range tags.TagSet {
		got[kv.Key] = kv.Value
	}
	if got["camera"] != it.Camera || got["sha256"] != it.SHA256 || got["retention_class"] != it.RetentionClass || got["assigned_to"] != it.AssignedTo {
		t.Errorf("aws get-object-tagging: %v, want camera, assigned_to, retention_class and sha256 of the item", got)
	}
}

// awsCLI runs Debian's aws s3api against srv and decodes its JSON answer.
func awsCLI(t *testing.T, srv *s3srv.Server) func(out any, args ...string) {
	const bin = "/usr/bin/aws"
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("%s (Debian's awscli, the independent client) is not installed: %v", bin, err)
	}
	return func(out any, args ...string) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--endpoint-url", srv.Endpoint, "--output", "json", "s3api"}, args...)...)
		cmd.Env = []string{
			"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(),
			"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey, "AWS_REGION=" + s3srv.Region,
		}
		b, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("aws s3api %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
			}
			t.Fatalf("aws s3api %s: %v", strings.Join(args, " "), err)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("aws s3api %s: %v\n%s", args[0], err, b)
		}
	}
}
