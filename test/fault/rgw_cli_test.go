package fault

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/testutil/faultproxy"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// TestRGWCLIPath runs the demo's path with the built binary against Ceph
// RGW: store-init (which sets the bucket default retention), a one-shot
// ingest of a camera with a 40 MiB recording (5 parts) SIGKILLed in the
// middle of its upload, a second ingest that resumes the upload sending
// only the parts the ledger had not recorded as accepted, then verify
// --remote, get, export --footage and verify-export. The recording's lock
// and tags are read back with Debian's aws.
func TestRGWCLIPath(t *testing.T) {
	srv := s3srv.RGW(t)
	srv.SetEnv(t)
	proxy := faultproxy.Start(t, srv.Endpoint)
	dir := t.TempDir()
	bucket := fmt.Sprintf("evt-cli-%d", time.Now().UnixNano()%1e9)
	cam := filepath.Join(dir, "camera")
	rec := filepath.Join(cam, "DCIM", "100MEDIA")
	if err := os.MkdirAll(rec, 0o755); err != nil {
		t.Fatal(err)
	}
	const bigSize = 40<<20 + 321
	randomFile(t, filepath.Join(rec, "BIG.MP4"), bigSize)
	randomFile(t, filepath.Join(rec, "SMALL.MP4"), 1<<20)
	state := filepath.Join(dir, "state")
	cfgPath := filepath.Join(dir, "evidenced.yaml")
	// 4 MiB/s: the 40 MiB upload takes ~10 s, so the uploader records
	// accepted parts (every 5 s) before the kill lands.
	cfg := fmt.Sprintf(`host_id: rgw-dock
state_dir: %s
object_store:
  endpoint: %s
  bucket: %s
  region: us-east-1
  path_style: true
  multipart_threshold: 8MiB
retention:
  default_class: uncategorized
  classes:
    - {name: uncategorized, days: 1, mode: GOVERNANCE}
cameras:
  - {serial: BWC-0001, kind: body, assigned_to: officer-4711}
vault_reserve: 0
upload:
  concurrency: 1
  part_concurrency: 1
  bandwidth: 4MiB
  retry_min: 100ms
  retry_max: 1s
`, state, proxy.URL, bucket)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ev := func(args ...string) (string, error) {
		cmd := exec.Command(binPath, append(args, "--config", cfgPath)...)
		cmd.Env = os.Environ()
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mustEv := func(args ...string) string {
		t.Helper()
		out, err := ev(args...)
		if err != nil {
			t.Fatalf("evidenced %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	mustEv("store-init")
	cli := awsCLI(t, srv)
	var lock struct {
		ObjectLockConfiguration struct {
			Rule struct{ DefaultRetention struct{ Mode string } }
		}
	}
	cli(&lock, "get-object-lock-configuration", "--bucket", bucket)
	if m := lock.ObjectLockConfiguration.Rule.DefaultRetention.Mode; m != objstore.LockGovernance {
		t.Errorf("bucket default retention after store-init: %q, want GOVERNANCE", m)
	}

	// The first ingest, killed once half the recording went out.
	cmd := exec.Command(binPath, "ingest", "--camera", "BWC-0001", "--from", cam, "--config", cfgPath)
	cmd.Env = os.Environ()
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for proxy.BodyBytes() < 26<<20 {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("upload did not get to 26 MiB; ingest said:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	sentBefore := proxy.BodyBytes()

	items, ok := findItems(cfgPath)
	if !ok || len(items) != 2 {
		t.Fatalf("after the kill: items %v (%v), want 2 vaulted", items, ok)
	}
	var big custody.Item
	for _, it := range items {
		if it.Size == bigSize {
			big = it
		}
	}
	recorded := recordedParts(t, state, big.ID)
	if len(recorded) == 0 || len(recorded) == 5 {
		t.Fatalf("parts recorded as accepted before the kill: %v; want some, not all (timing?)", recorded)
	}

	mustEv("ingest", "--camera", "BWC-0001", "--from", cam)
	resent := proxy.BodyBytes() - sentBefore
	missing := int64(0)
	ps := objstore.PartSize(bigSize)
	for n := 1; n <= 5; n++ {
		if !recorded[n] {
			missing += min(ps, bigSize-int64(n-1)*ps)
		}
	}
	t.Logf("killed after %d bytes sent, %d parts recorded; the second ingest sent %d bytes (missing parts: %d bytes, SMALL: %d bytes)",
		sentBefore, len(recorded), resent, missing, 1<<20)
	if resent > missing+1<<20+1<<16 {
		t.Errorf("second ingest sent %d bytes; the parts not recorded are %d bytes (+1 MiB SMALL): recorded parts were sent again", resent, missing)
	}
	evs := custodyEvents(t, state, big.ID)
	starts, aborts := 0, 0
	var uploaded custody.Event
	for _, e := range evs {
		switch e.Type {
		case custody.UploadStarted:
			starts++
		case custody.UploadAborted:
			aborts++
		case custody.Uploaded:
			uploaded = e
		}
	}
	if starts != 1 || aborts != 0 {
		t.Errorf("%d UPLOAD_STARTED, %d UPLOAD_ABORTED: want the one upload resumed", starts, aborts)
	}
	if uploaded.Details["etag"] == "" || !strings.Contains(uploaded.Details["applied_after_upload"], "tags") {
		t.Errorf("UPLOADED details %v: want the ETag and the tags re-applied", uploaded.Details)
	}

	items, _ = findItems(cfgPath)
	for _, it := range items {
		if it.State != custody.StateVerified {
			t.Fatalf("%s is %s (%s), want verified", it.SourcePath, it.State, it.LastError)
		}
		if it.ID == big.ID {
			big = it
		}
	}
	mustEv("verify", "--remote", "--reason", "rgw path: audit")
	out := filepath.Join(dir, "retrieved.mp4")
	mustEv("get", big.ID, "--reason", "rgw path: review", "--out", out)
	if got := fileSHA256(t, out); got != big.SHA256 {
		t.Errorf("get: sha256 %s, recorded %s", got, big.SHA256)
	}
	pkg := filepath.Join(dir, "export")
	mustEv("export", big.ID, "--footage", "--reason", "rgw path: disclosure", "--out", pkg)
	// The package is checked against the host key as a custodian obtains
	// it out of band (evidenced key --public), never against its own keys.
	hostKey := filepath.Join(dir, "host-key.pem")
	pem, err := exec.Command(binPath, "key", "--public", "--config", cfgPath).Output()
	if err != nil {
		t.Fatalf("evidenced key --public: %v", err)
	}
	if err := os.WriteFile(hostKey, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(binPath, "verify-export", "--key", hostKey, pkg).CombinedOutput(); err != nil {
		t.Errorf("verify-export: %v\n%s", err, out)
	}

	var ret struct {
		Retention struct{ Mode, RetainUntilDate string }
	}
	cli(&ret, "get-object-retention", "--bucket", bucket, "--key", big.ObjectKey, "--version-id="+big.VersionID)
	until, err := time.Parse(time.RFC3339, ret.Retention.RetainUntilDate)
	if ret.Retention.Mode != objstore.LockGovernance || err != nil || until.Before(big.RetainUntil.Add(-time.Second)) {
		t.Errorf("aws get-object-retention: %+v (%v), want GOVERNANCE until at least %s", ret.Retention, err, big.RetainUntil.Format(time.RFC3339))
	}
	var tags struct{ TagSet []struct{ Key, Value string } }
	cli(&tags, "get-object-tagging", "--bucket", bucket, "--key", big.ObjectKey, "--version-id="+big.VersionID)
	got := map[string]string{}
	for _, kv := range tags.TagSet {
		got[kv.Key] = kv.Value
	}
	if got["camera"] != "BWC-0001" || got["sha256"] != big.SHA256 || got["retention_class"] != "uncategorized" {
		t.Errorf("aws get-object-tagging: %v, want the item's camera, retention_class and sha256", got)
	}
}

// custodyEvents reads an item's chain from the ledger file (no process
// holds it).
func custodyEvents(t *testing.T, state, id string) []custody.Event {
	t.Helper()
	l, err := custody.Open(filepath.Join(state, "ledger.db"), custody.Options{Host: "rgw-dock"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	evs, err := l.Custody(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// recordedParts is the set of part numbers UPLOAD_PARTS recorded for id.
func recordedParts(t *testing.T, state, id string) map[int]bool {
	t.Helper()
	out := map[int]bool{}
	for _, e := range custodyEvents(t, state, id) {
		if e.Type != custody.UploadParts {
			continue
		}
		for _, n := range strings.Split(e.Details["parts"], ",") {
			var k int
			if _, err := fmt.Sscan(n, &k); err == nil {
				out[k] = true
			}
		}
	}
	return out
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
