// Package fault holds the fault-injection and crash tests of the upload
// engine (issue #5): everything runs against a real S3 server
// (internal/testutil/s3srv), with faults injected by a proxy on 127.0.0.1
// (internal/testutil/faultproxy) or by killing processes.
package fault

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
	"github.com/evidenced/evidenced/internal/testutil/faultproxy"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
	"github.com/evidenced/evidenced/internal/upload"
)

const mib = 1 << 20

// dirVault is the vault as the uploader sees it: one file per item.
type dirVault struct{ dir string }

func (v dirVault) Open(id string) (*os.File, error) { return os.Open(filepath.Join(v.dir, id)) }

// rig is a ledger, a vault, a real S3 server behind a fault proxy and an
// uploader over them.
type rig struct {
	t      *testing.T
	srv    *s3srv.Server
	proxy  *faultproxy.Proxy
	bucket string
	store  *s3store.Store
	ledger *custody.Ledger
	vault  dirVault
	cfg    *config.Config
	up     *upload.Uploader
	dock   uint64
	n      int
}

func newRig(t *testing.T, tune func(*config.Config)) *rig {
	t.Helper()
	return newRigOn(t, s3srv.Start(t), tune)
}

// newRigOn is newRig on a given server (the shared Ceph RGW, say).
func newRigOn(t *testing.T, srv *s3srv.Server, tune func(*config.Config)) *rig {
	t.Helper()
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	proxy := faultproxy.Start(t, srv.Endpoint)
	dir := t.TempDir()
	cfg := config.Default()
	cfg.HostID = "fault-dock"
	cfg.Retention.Classes = []config.Class{
		{Name: "uncategorized", Days: 1, Mode: config.ModeGovernance},
		{Name: "incident", Days: 1, Mode: config.ModeGovernance},
	}
	cfg.Upload.Concurrency = 1
	cfg.Upload.PartConcurrency = 1
	cfg.Upload.RetryMin = config.Duration{Duration: 50 * time.Millisecond}
	cfg.Upload.RetryMax = config.Duration{Duration: 400 * time.Millisecond}
	if tune != nil {
		tune(cfg)
	}
	st, err := s3store.New(context.Background(), s3store.Config{
		Endpoint: proxy.URL, Bucket: bucket, Region: s3srv.Region, PathStyle: true,
		MultipartThreshold: 8 * mib, ResponseTimeout: 2 * time.Second,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := custody.Open(filepath.Join(dir, "ledger.db"), custody.Options{Host: cfg.HostID})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	vdir := filepath.Join(dir, "vault")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, srv: srv, proxy: proxy, bucket: bucket, store: st, ledger: l, vault: dirVault{vdir}, cfg: cfg}
	ev, err := l.Append(context.Background(), custody.Event{Type: custody.Docked, Actor: "test", Camera: "BWC-0001"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.dock = ev.Seq
	r.up = upload.New(cfg, l, r.vault, st, "test@fault-dock", nil)
	return r
}

// item vaults size random bytes as a new item and returns it.
func (r *rig) item(size int, class string) custody.Item {
	r.t.Helper()
	r.n++
	b := make([]byte, size)
	rand.Read(b)
	var idb [12]byte
	rand.Read(idb[:])
	id := fmt.Sprintf("%x", idb)
	if err := os.WriteFile(filepath.Join(r.vault.dir, id), b, 0o440); err != nil {
		r.t.Fatal(err)
	}
	if class == "" {
		class = r.cfg.Retention.DefaultClass
	}
	now := time.Now().UTC()
	it := custody.Item{
		ID: id, Camera: "BWC-0001", Kind: "body", AssignedTo: "officer-4711",
		SourcePath: fmt.Sprintf("DCIM/100MEDIA/VID_%04d.MP4", r.n), Size: int64(size), SHA256: digest.Bytes(b).Hex(),
		RecordedAt: now, IngestedAt: now.Add(time.Duration(r.n) * time.Millisecond), State: custody.StateVaulted,
		RetentionClass: class, DockSeq: r.dock,
	}
	if _, err := r.ledger.Append(context.Background(), custody.Event{Type: custody.Vaulted, Actor: "test", Camera: it.Camera, Item: id, SHA256: it.SHA256}, &it); err != nil {
		r.t.Fatal(err)
	}
	return it
}

// run starts the uploader's daemon loop and returns its stop function.
func (r *rig) run() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.up.Run(ctx, ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	r.t.Cleanup(stop)
	return stop
}

func (r *rig) states() map[string]custody.Item {
	out := map[string]custody.Item{}
	r.ledger.Items(context.Background(), custody.Filter{}, func(it custody.Item) error { out[it.ID] = it; return nil })
	return out
}

func (r *rig) waitVerified(ids []string, d time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(d)
	for {
		all := r.states()
		n := 0
		for _, id := range ids {
			if all[id].State == custody.StateVerified {
				n++
			}
		}
		if n == len(ids) {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("only %d of %d items verified after %s", n, len(ids), d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *rig) events(id string, typ custody.EventType) []custody.Event {
	evs, err := r.ledger.Custody(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []custody.Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// openUploads counts multipart uploads still in the bucket.
func (r *rig) openUploads() int {
	out, err := r.srv.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(r.bucket)})
	if err != nil {
		r.t.Fatal(err)
	}
	return len(out.Uploads)
}

// readBack downloads the recorded version through the server directly (not
// the proxy) and compares its SHA-256 with the item's: what "verified"
// must mean.
func (r *rig) readBack(it custody.Item) {
	r.t.Helper()
	out, err := r.srv.Client().GetObject(context.Background(), &s3.GetObjectInput{
		Bucket: aws.String(r.bucket), Key: aws.String(it.ObjectKey), VersionId: aws.String(it.VersionID),
	})
	if err != nil {
		r.t.Fatalf("read back %s: %v", it.ID, err)
	}
	defer out.Body.Close()
	sum, n, err := digest.Reader(out.Body)
	if err != nil || n != it.Size || sum.Hex() != it.SHA256 {
		r.t.Errorf("item %s is verified but the store holds %d bytes with sha256 %s (err %v), want %d bytes %s", it.ID, n, sum.Hex(), err, it.Size, it.SHA256)
	}
}

// TestServerKilledMidMultipart kills the S3 server in the middle of a
// multipart upload and restarts it a second later: every item ends
// verified, the multipart upload is resumed (one UPLOAD_STARTED, parts the
// store kept are not sent again) and less than one part per file is sent
// twice.
func TestServerKilledMidMultipart(t *testing.T) {
	r := newRig(t, nil)
	sizes := []int{48*mib + 123, 20 * mib, 3*mib + 7}
	var items []custody.Item
	var ids []string
	total := int64(0)
	for _, s := range sizes {
		it := r.item(s, "")
		items = append(items, it)
		ids = append(ids, it.ID)
		total += int64(s)
	}
	stop := r.run()
	// Kill once the first (largest, 7-part) file is half sent.
	deadline := time.Now().Add(time.Minute)
	for r.proxy.BodyBytes() < 26*mib {
		if time.Now().After(deadline) {
			t.Fatal("upload did not get going")
		}
		time.Sleep(2 * time.Millisecond)
	}
	r.srv.Kill()
	// Longer than a part's in-attempt retries, so the attempt fails and
	// the next one must resume from what the store holds.
	time.Sleep(2 * time.Second)
	r.srv.Restart(t)
	r.waitVerified(ids, 2*time.Minute)
	stop()

	resent := r.proxy.BodyBytes() - total
	perFile := int64(objstore.PartSize(int64(sizes[0])))
	t.Logf("sent %d bytes for %d bytes of recordings: %d re-sent", r.proxy.BodyBytes(), total, resent)
	if resent >= perFile*int64(len(sizes)) {
		t.Errorf("re-sent %d bytes, want < one part (%d) per file", resent, perFile)
	}
	big := items[0]
	if n := len(r.events(big.ID, custody.UploadStarted)); n != 1 {
		t.Errorf("%d UPLOAD_STARTED for the interrupted multipart upload, want 1 (resumed, not restarted)", n)
	}
	st, _ := r.up.LastResume(big.ID)
	if !st.Resumed || st.PartsKept < 2 {
		t.Errorf("last attempt on the big file: %+v, want a resume keeping at least 2 parts", st)
	}
	if len(r.events(big.ID, custody.UploadParts)) == 0 {
		t.Error("no UPLOAD_PARTS recorded for the multipart upload")
	}
	for id, it := range r.states() {
		if it.State != custody.StateVerified {
			t.Errorf("%s: %s", id, it.State)
		}
		if n := len(r.events(id, custody.Verified)); n != 1 {
			t.Errorf("%s: %d VERIFIED events", id, n)
		}
		r.readBack(it)
	}
	if n, err := r.store.CountVersions(context.Background(), ""); err != nil || n != len(sizes) {
		t.Errorf("store holds %d versions (%v), want %d", n, err, len(sizes))
	}
	if n := r.openUploads(); n != 0 {
		t.Errorf("%d multipart uploads left in the bucket", n)
	}
}

// TestFaultsInTransit sends uploads through 500s, 503s, connection resets,
// a stall and corrupted bodies: the server's checksum refuses every
// corrupted request, the retries succeed, and only what the store really
// holds is marked verified. A vault copy that changed is a permanent
// failure recorded once, never retried in a loop.
func TestFaultsInTransit(t *testing.T) {
	r := newRig(t, func(c *config.Config) { c.Upload.PartConcurrency = 2; c.Upload.Concurrency = 2 })
	p := r.proxy
	part, put := faultproxy.IsUploadPart, faultproxy.IsPutObject
	for _, rule := range []faultproxy.Rule{
		{Match: part, Fault: faultproxy.Status500, Times: 1},
		{Match: put, Fault: faultproxy.Status503, Times: 1},
		{Match: part, Fault: faultproxy.Reset, Times: 1},
		{Match: put, Fault: faultproxy.Reset, Times: 1},
		{Match: part, Fault: faultproxy.Corrupt, Times: 2},
		{Match: put, Fault: faultproxy.Corrupt, Times: 1},
		{Match: part, Fault: faultproxy.Stall, Times: 1},
		{Match: faultproxy.IsComplete, Fault: faultproxy.Status503, Times: 1},
		{Match: faultproxy.IsHead, Fault: faultproxy.Delay, Delay: 300 * time.Millisecond, Times: 2},
	} {
		p.Add(rule)
	}
	var ids []string
	for _, s := range []int{30 * mib, 17*mib + 1, 2 * mib, 5*mib + 3} {
		ids = append(ids, r.item(s, "").ID)
	}
	// One recording whose vault copy is damaged after it was recorded.
	bad := r.item(9*mib, "")
	path := filepath.Join(r.vault.dir, bad.ID)
	os.Chmod(path, 0o640)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xAB, 0xCD}, 4*mib)
	f.Close()

	stop := r.run()
	r.waitVerified(ids, 2*time.Minute)
	// Give the uploader time to spin on the bad item if it were going to.
	time.Sleep(1500 * time.Millisecond)
	stop()

	for _, f := range []faultproxy.Fault{faultproxy.Status500, faultproxy.Status503, faultproxy.Reset, faultproxy.Corrupt, faultproxy.Stall, faultproxy.Delay} {
		if p.Injected(f) == 0 {
			t.Errorf("fault %s was never injected", f)
		}
	}
	answers := p.CorruptAnswers()
	t.Logf("server answers to corrupted bodies: %v; injected %d", answers, p.Injected(faultproxy.Corrupt))
	if len(answers) != 3 {
		t.Errorf("%d corrupted requests reached the server, want 3", len(answers))
	}
	for _, code := range answers {
		if code != 400 {
			t.Errorf("the server answered a corrupted body with %d, want 400 (checksum refused)", code)
		}
	}
	all := r.states()
	for _, id := range ids {
		it := all[id]
		if n := len(r.events(id, custody.Verified)); n != 1 {
			t.Errorf("%s: %d VERIFIED events", id, n)
		}
		if n := len(r.events(id, custody.UploadFailed)); n != 0 {
			t.Errorf("%s: %d UPLOAD_FAILED events for transient faults", id, n)
		}
		r.readBack(it)
	}
	b := all[bad.ID]
	if b.State != custody.StateVaulted || b.LastError == "" {
		t.Errorf("damaged item: state %s last_error %q, want vaulted with the error shown", b.State, b.LastError)
	}
	if n := len(r.events(bad.ID, custody.UploadFailed)); n != 1 {
		t.Errorf("damaged item: %d UPLOAD_FAILED events, want exactly 1 (no spinning)", n)
	}
	if _, failed := r.up.Failed()[bad.ID]; !failed {
		t.Error("damaged item not reported as failed")
	}
	if err := r.up.Process(context.Background(), bad.ID); !errors.Is(err, upload.ErrPermanent) {
		t.Errorf("processing the damaged item again: %v, want ErrPermanent", err)
	}
	if n := len(r.events(bad.ID, custody.UploadFailed)); n != 1 {
		t.Errorf("damaged item after another attempt: %d UPLOAD_FAILED events, want 1", n)
	}
	if n, err := r.store.CountVersions(context.Background(), ""); err != nil || n != len(ids) {
		t.Errorf("store holds %d versions (%v), want %d", n, err, len(ids))
	}
	if n := r.openUploads(); n != 0 {
		t.Errorf("%d multipart uploads left in the bucket", n)
	}
}
