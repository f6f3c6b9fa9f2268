package s3store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// TestPartBindingProbed: on the real servers the probe finds what each one
// does — VersityGW refuses a part whose x-amz-checksum-sha256 is wrong, so
// parts are bound by that header alone (no second hash of every part on
// the server); Ceph RGW 16 ignores the header, so parts keep the signed
// payload hash, which it checks (TestContractRGW proves a wrong SHA-256 is
// still refused there). The probe leaves no upload and no object behind.
func TestPartBindingProbed(t *testing.T) {
	for _, c := range []struct {
		name  string
		start func(testing.TB) *s3srv.Server
		want  s3store.PartBinding
		why   string
	}{
		{"versitygw", s3srv.Start, s3store.BindingChecksum, s3store.WhyChecked},
		{"rgw", s3srv.RGW, s3store.BindingPayloadHash, s3store.WhyIgnored},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := c.start(t)
			bucket := srv.NewBucket(t)
			srv.SetEnv(t)
			ctx := context.Background()
			st, err := s3store.New(ctx, s3store.Config{Endpoint: srv.Endpoint, Bucket: bucket, Region: s3srv.Region, PathStyle: true, Prefix: "evidence/"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.PartBinding(ctx); got != c.want {
				t.Errorf("%s: parts bound by %s, want %s", c.name, got, c.want)
			}
			if p := st.ProbeParts(ctx); p.Binding != c.want || p.Why != c.why || p.Err != nil {
				t.Errorf("%s: probe %s because %q (err %v), want %s because %q", c.name, p.Binding, p.Why, p.Err, c.want, c.why)
			}
			ups, err := srv.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
			if err != nil {
				t.Fatal(err)
			}
			if len(ups.Uploads) != 0 {
				t.Errorf("the probe left %d multipart uploads", len(ups.Uploads))
			}
			if p := st.ProbeParts(ctx); p.Left != nil {
				t.Errorf("the probe says its upload %s was left: %v", p.LeftUpload, p.Left)
			}
			if n, err := st.CountVersions(ctx, ""); err != nil || n != 0 {
				t.Errorf("the probe left %d versions (%v)", n, err)
			}
		})
	}
}

// fakeS3 answers just enough of S3 for a part upload: create, part, abort.
// checks says whether it refuses a part whose x-amz-checksum-sha256 is not
// its body's (as VersityGW does) or takes it anyway (as Ceph RGW 16 does);
// down makes every request a 503. It records the payload hash each part
// was signed with.
type fakeS3 struct {
	mu            sync.Mutex
	checks, down  bool
	noUnsigned    bool // refuses every UNSIGNED-PAYLOAD part with BadDigest
	noAbort       bool // refuses to abort an upload (AccessDenied)
	creates       int
	requests      int
	aborts        int
	payloadHashes []string
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	q := r.URL.Query()
	fail := func(status int, code string) {
		w.WriteHeader(status)
		fmt.Fprintf(w, "<Error><Code>%s</Code><Message>%s</Message></Error>", code, code)
	}
	switch {
	case f.down:
		fail(http.StatusServiceUnavailable, "ServiceUnavailable")
	case r.Method == http.MethodPost && q.Has("uploads"):
		f.creates++
		fmt.Fprintf(w, "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>u%d</UploadId></InitiateMultipartUploadResult>", f.creates)
	case r.Method == http.MethodPut && q.Has("partNumber"):
		body, _ := io.ReadAll(r.Body)
		sum := sha256.Sum256(body)
		f.payloadHashes = append(f.payloadHashes, r.Header.Get("X-Amz-Content-Sha256"))
		if f.noUnsigned && r.Header.Get("X-Amz-Content-Sha256") == "UNSIGNED-PAYLOAD" {
			fail(http.StatusBadRequest, "BadDigest")
			return
		}
		if f.checks && r.Header.Get("X-Amz-Checksum-Sha256") != base64.StdEncoding.EncodeToString(sum[:]) {
			fail(http.StatusBadRequest, "BadDigest")
			return
		}
		w.Header().Set("ETag", fmt.Sprintf("%q", fmt.Sprintf("%x", sum[:16])))
	case r.Method == http.MethodDelete && q.Has("uploadId") && f.noAbort:
		fail(http.StatusForbidden, "AccessDenied")
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		f.aborts++
		w.WriteHeader(http.StatusNoContent)
	default:
		fail(http.StatusNotImplemented, "NotImplemented")
	}
}

// fakeStore is a Store on f, served until the test ends.
func fakeStore(t *testing.T, f *fakeS3) *s3store.Store {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	st, err := s3store.New(context.Background(), s3store.Config{Endpoint: srv.URL, Bucket: "b", Region: "us-east-1", PathStyle: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestPartBindingFollowsTheProbe: a part goes out UNSIGNED-PAYLOAD only on
// a store that refused the probe's wrong checksum; on one that took it the
// part's payload hash is its SHA-256; a store that could not be asked
// (down) gets the payload hash and is not asked again at once. The probe
// runs once per store and its upload is aborted.
func TestPartBindingFollowsTheProbe(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "fake")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake")
	part := []byte("a part of a recording")
	sum := digest.Bytes(part)
	for _, c := range []struct {
		name        string
		checks      bool
		down        bool
		noUnsigned  bool
		wantBinding s3store.PartBinding
		wantHash    string
	}{
		{"store checks the checksum", true, false, false, s3store.BindingChecksum, "UNSIGNED-PAYLOAD"},
		{"store ignores the checksum", false, false, false, s3store.BindingPayloadHash, sum.Hex()},
		{"store down", false, true, false, s3store.BindingPayloadHash, ""},
		// A refusal of the wrong checksum means nothing when the right one
		// is refused too: the probe's control part must be taken.
		{"store refuses every unsigned part", false, false, true, s3store.BindingPayloadHash, sum.Hex()},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeS3{checks: c.checks, down: c.down, noUnsigned: c.noUnsigned}
			ctx := context.Background()
			st := fakeStore(t, f)
			for range 3 {
				_, err := st.UploadPart(ctx, "k", "u1", 1, bytes.NewReader(part), 0, int64(len(part)), sum)
				if c.down {
					if err == nil {
						t.Fatal("a part was taken by a store that is down")
					}
					continue
				}
				if err != nil {
					t.Fatalf("upload part: %v", err)
				}
			}
			if got := st.PartBinding(ctx); got != c.wantBinding {
				t.Errorf("binding %s, want %s", got, c.wantBinding)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if c.down {
				if f.creates != 0 || len(f.payloadHashes) != 0 {
					t.Errorf("a store that is down saw %d creates and %d parts", f.creates, len(f.payloadHashes))
				}
				return
			}
			if f.creates != 1 || f.aborts != 1 {
				t.Errorf("probe: %d creates, %d aborts; want one probe, aborted", f.creates, f.aborts)
			}
			// The probe's parts come first, always unsigned: the wrong
			// checksum, then (when that was refused) the right one.
			probe := 1
			if c.checks || c.noUnsigned {
				probe = 2
			}
			if len(f.payloadHashes) != probe+3 || slices.ContainsFunc(f.payloadHashes[:probe], func(h string) bool { return h != "UNSIGNED-PAYLOAD" }) {
				t.Fatalf("parts seen: %q, want the probe's %d then 3", f.payloadHashes, probe)
			}
			for i, h := range f.payloadHashes[probe:] {
				if h != c.wantHash {
					t.Errorf("part %d signed with payload hash %q, want %q", i+1, h, c.wantHash)
				}
			}
		})
	}
}

// TestPartProbeRenewed: a probe that reached no verdict is not repeated at
// every part but is tried again once probeRetry has passed, and a verdict
// stands for probeRenew, then the store is asked again, so a store that
// starts (or stops) checking x-amz-checksum-sha256 behind the same
// endpoint is noticed within a day. ProbeParts says which it is: the
// verdict and what the store did, or why there is none.
func TestPartProbeRenewed(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "fake")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake")
	f := &fakeS3{down: true}
	ctx := context.Background()
	st := fakeStore(t, f)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s3store.SetClock(st, func() time.Time { return now })
	requests := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.requests
	}
	set := func(down, checks bool) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.down, f.checks = down, checks
	}
	expect := func(when string, want s3store.PartBinding, wantProbe bool) s3store.PartProbe {
		t.Helper()
		before := requests()
		p := st.ProbeParts(ctx)
		if p.Binding != want {
			t.Errorf("%s: verdict %s, want %s (why %q, err %v)", when, p.Binding, want, p.Why, p.Err)
		}
		if probed := requests() > before; probed != wantProbe {
			t.Errorf("%s: store asked %v, want %v", when, probed, wantProbe)
		}
		return p
	}

	p := expect("store down", s3store.BindingUnproven, true)
	if p.Err == nil || p.InUse() != s3store.BindingPayloadHash {
		t.Errorf("no verdict: err %v, parts use %s; want the error and the payload hash", p.Err, p.InUse())
	}
	set(false, false)
	now = now.Add(s3store.ProbeRetry - time.Second)
	expect("back up, before probeRetry", s3store.BindingUnproven, false)
	now = now.Add(time.Second)
	p = expect("probeRetry after a failed probe", s3store.BindingPayloadHash, true)
	if p.Why != s3store.WhyIgnored || p.Err != nil {
		t.Errorf("store that ignores the header: why %q, err %v", p.Why, p.Err)
	}
	set(false, true) // the store is upgraded behind the same endpoint
	now = now.Add(s3store.ProbeRenew - time.Second)
	expect("a verdict, before probeRenew", s3store.BindingPayloadHash, false)
	now = now.Add(time.Second)
	p = expect("a verdict, probeRenew later", s3store.BindingChecksum, true)
	if p.Why != s3store.WhyChecked {
		t.Errorf("store that checks the header: why %q", p.Why)
	}
	if got := st.PartBinding(ctx); got != s3store.BindingChecksum {
		t.Errorf("parts bound by %s after the upgrade was noticed", got)
	}
	set(false, false) // and downgraded again
	now = now.Add(s3store.ProbeRenew)
	expect("downgraded, probeRenew later", s3store.BindingPayloadHash, true)
	set(true, false) // a renewal that reaches no verdict keeps no stale one
	now = now.Add(s3store.ProbeRenew)
	p = expect("down at renewal", s3store.BindingUnproven, true)
	if p.InUse() != s3store.BindingPayloadHash {
		t.Errorf("no verdict at renewal: parts use %s", p.InUse())
	}
}

// TestPartProbeLeftUpload: a probe whose upload the store would not abort
// says so, naming the upload and why, and its verdict still stands.
func TestPartProbeLeftUpload(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "fake")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake")
	st := fakeStore(t, &fakeS3{checks: true, noAbort: true})
	p := st.ProbeParts(context.Background())
	if p.Binding != s3store.BindingChecksum {
		t.Errorf("verdict %s, want %s", p.Binding, s3store.BindingChecksum)
	}
	if !errors.Is(p.Left, objstore.ErrAccessDenied) || p.LeftUpload != "upload u1 of _probe/part-checksum" {
		t.Errorf("left: %q, %v; want upload u1 of _probe/part-checksum, access denied", p.LeftUpload, p.Left)
	}
}

// TestPartProbeAbortsLeftUploads: uploads left at the probe's key by a
// process stopped mid-probe (here opened by hand, two of them) are aborted
// by the next probe and named in its log, so a kill between the probe's
// CreateMultipartUpload and its abort leaves nothing behind for good. An
// upload at a neighbouring key is not the probe's and is kept. Real
// versitygw.
func TestPartProbeAbortsLeftUploads(t *testing.T) {
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	ctx := context.Background()
	const prefix = "evidence/"
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := s3store.New(ctx, s3store.Config{Endpoint: srv.Endpoint, Bucket: bucket, Region: s3srv.Region, PathStyle: true, Prefix: prefix}, log)
	if err != nil {
		t.Fatal(err)
	}
	c := srv.Client()
	create := func(key string) string {
		t.Helper()
		out, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("create upload at %s: %v", key, err)
		}
		return aws.ToString(out.UploadId)
	}
	left := []string{create(prefix + objstore.PartProbeKey), create(prefix + objstore.PartProbeKey)}
	neighbour := prefix + objstore.PartProbeKey + "-not-the-probe"
	keep := create(neighbour)
	t.Cleanup(func() {
		c.AbortMultipartUpload(context.Background(), &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(neighbour), UploadId: aws.String(keep)})
	})

	if p := st.ProbeParts(ctx); p.Binding != s3store.BindingChecksum || p.Err != nil || p.Left != nil {
		t.Errorf("probe: %s (err %v, left %s %v), want %s", p.Binding, p.Err, p.LeftUpload, p.Left, s3store.BindingChecksum)
	}
	ups, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var open []string
	for _, u := range ups.Uploads {
		open = append(open, aws.ToString(u.Key)+" "+aws.ToString(u.UploadId))
	}
	if want := []string{neighbour + " " + keep}; !slices.Equal(open, want) {
		t.Errorf("uploads after the probe: %q, want only %q (the probe's leftovers aborted, the neighbour kept)", open, want)
	}
	for _, id := range left {
		if !strings.Contains(logs.String(), "upload_id="+id) {
			t.Errorf("the log does not name the aborted leftover %s:\n%s", id, logs.String())
		}
	}
}
