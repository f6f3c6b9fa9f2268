package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
	"github.com/evidenced/evidenced/internal/testutil/faultproxy"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// binPath is the evidenced binary, built once in TestMain: the crash loop
// needs a real process to SIGKILL.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "evidenced-fault-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "evidenced")
	if out, err := exec.Command("go", "build", "-o", binPath, "github.com/evidenced/evidenced/cmd/evidenced").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build evidenced: %v\n%s", err, out)
		os.Exit(1)
	}
	code := s3srv.Main(m) // stops the Ceph RGW of rgw_test.go
	os.RemoveAll(dir)
	os.Exit(code)
}

// soakN is how many times the crash loop kills the daemon: 30 by default,
// EVIDENCED_SOAK_N for the soak target (scripts/soak.sh: 200).
func soakN(t *testing.T) int {
	if v := os.Getenv("EVIDENCED_SOAK_N"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("EVIDENCED_SOAK_N=%q: want a count", v)
		}
		return n
	}
	return 30
}

// sparseFile makes a file of size bytes that is mostly holes (cheap to
// create and to read) with random 64 KiB blocks every 64 MiB, so that its
// parts differ.
func sparseFile(t *testing.T, path string, size int64, seed uint64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	blk := make([]byte, 64<<10)
	for off := int64(0); off+int64(len(blk)) <= size; off += 64 << 20 {
		for i := range blk {
			blk[i] = byte(r.Uint32())
		}
		if _, err := f.WriteAt(blk, off); err != nil {
			t.Fatal(err)
		}
	}
}

func randomFile(t *testing.T, path string, size int) {
	t.Helper()
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(uint64(size), 11))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCrashLoop runs the daemon on a multi-file camera (one recording over
// 1 GiB) and SIGKILLs it at random moments N times, restarting it each
// time; then lets a last run finish. Afterwards every recording is vaulted,
// uploaded and verified exactly once in the ledger, the bucket holds exactly
// one version per recording and no multipart upload (not even the probe
// upload left there before the first start), verify --remote is clean, and
// the vault holds no partial files.
func TestCrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("crash loop: not in -short")
	}
	n := soakN(t)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("EVIDENCED_SOAK_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("crash loop: %d kills, seed %d (EVIDENCED_SOAK_SEED to replay)", n, seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1|1))

	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	// An upload at the part probe's key, as a probe killed between its
	// create and its abort leaves it (the one upload a run once found left
	// at the end): the daemon must remove it, not only the ones its own
	// kills leave by chance.
	if _, err := srv.Client().CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(objstore.PartProbeKey),
	}); err != nil {
		t.Fatal(err)
	}
	// The daemon talks to the server through a (fault-free) proxy that
	// counts the bytes sent, so kills can be aimed at the upload phase.
	proxy := faultproxy.Start(t, srv.Endpoint)
	dir := t.TempDir()
	media, state := filepath.Join(dir, "media"), filepath.Join(dir, "state")
	staging := filepath.Join(dir, "staging", "BWC-0001")
	rec := filepath.Join(staging, "DCIM", "100MEDIA")
	for _, d := range []string{media, rec} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]int64{
		"DCIM/100MEDIA/BIG.MP4":   1<<30 + 3<<20 + 5, // > 1 GiB, 129 parts
		"DCIM/100MEDIA/MID.MP4":   21 << 20,          // multipart, 3 parts
		"DCIM/100MEDIA/SMALL.MP4": 3<<20 + 1,
		"DCIM/100MEDIA/GPS.NMEA":  4 << 10,
		"DCIM/100MEDIA/META.JSON": 700,
	}
	for rel, size := range files {
		p := filepath.Join(staging, filepath.FromSlash(rel))
		if size > 64<<20 {
			sparseFile(t, p, size, seed)
		} else {
			randomFile(t, p, int(size))
		}
	}
	cfgPath := filepath.Join(dir, "evidenced.yaml")
	cfg := fmt.Sprintf(`host_id: crash-dock
state_dir: %s
sources:
  watch: [%s]
  settle: 100ms
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
shutdown_timeout: 10s
vault_reserve: 0
upload:
  concurrency: 2
  part_concurrency: 4
  retry_min: 100ms
  retry_max: 1s
`, state, media, proxy.URL, bucket)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(staging, filepath.Join(media, "BWC-0001")); err != nil {
		t.Fatal(err)
	}

	start := func() (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(binPath, "run", "--config", cfgPath)
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		cmd.Env = os.Environ()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &logs
	}
	began := time.Now()
	for i := range n {
		cmd, _ := start()
		if rng.IntN(2) == 0 {
			// A random moment of the run's first 1.5 s: start-up, the
			// sweep, the copy, hashing, ledger commits.
			time.Sleep(time.Duration(50+rng.IntN(1450)) * time.Millisecond)
		} else {
			// A random moment of the upload: after 1-48 MiB more have
			// reached the store (mid-part as often as not). The copy of
			// the large file happens first and is waited for (up to 40 s),
			// so every such run gets into the upload.
			target := proxy.BodyBytes() + int64(1<<20+rng.IntN(47<<20))
			for deadline := time.Now().Add(40 * time.Second); proxy.BodyBytes() < target && time.Now().Before(deadline); {
				time.Sleep(2 * time.Millisecond)
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if testing.Verbose() && i%10 == 9 {
			t.Logf("%d kills in %s", i+1, time.Since(began).Round(time.Second))
		}
	}
	t.Logf("%d kills in %s; final run", n, time.Since(began).Round(time.Second))

	cmd, logs := start()
	finalStart := time.Now()
	deadline := time.Now().Add(4 * time.Minute)
	for {
		if items, ok := findItems(cfgPath); ok && len(items) == len(files) && allVerified(items) {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			t.Fatalf("not all recordings verified within 4 minutes of the last restart; daemon log:\n%s", tail(logs.String(), 6000))
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("final run verified everything in %s", time.Since(finalStart).Round(100*time.Millisecond))
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("daemon exit after SIGTERM: %v\n%s", err, tail(logs.String(), 4000))
	}

	ctx := context.Background()
	l, err := custody.Open(filepath.Join(state, "ledger.db"), custody.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	// aborts are the reasons of each item's UPLOAD_ABORTED records, logged
	// so that a run says why an upload was given up.
	aborts := map[string][]string{}
	counts := map[string]map[custody.EventType]int{}
	paths := map[string]int{}
	kills := 0
	if err := l.Events(ctx, 1, func(e custody.Event) error {
		if e.Type == custody.HostStarted {
			kills++
		}
		if e.Item == "" {
			return nil
		}
		if counts[e.Item] == nil {
			counts[e.Item] = map[custody.EventType]int{}
		}
		counts[e.Item][e.Type]++
		if e.Type == custody.UploadAborted {
			aborts[e.Item] = append(aborts[e.Item], e.Details["reason"])
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var items []custody.Item
	l.Items(ctx, custody.Filter{}, func(it custody.Item) error { items = append(items, it); return nil })
	if _, err := l.Verify(ctx, func(p custody.Problem) { t.Errorf("ledger problem: %v", p) }); err != nil {
		t.Errorf("ledger verify: %v", err)
	}
	l.Close()
	var total int64
	for _, size := range files {
		total += size
	}
	t.Logf("daemon started %d times; %d bytes sent to the store for %d bytes of recordings (%.1f%% re-sent)",
		kills, proxy.BodyBytes(), total, 100*float64(proxy.BodyBytes()-total)/float64(total))
	if len(items) != len(files) {
		t.Fatalf("%d items, want %d", len(items), len(files))
	}
	for _, it := range items {
		paths[it.SourcePath]++
		if it.State != custody.StateVerified || it.Size != files[it.SourcePath] {
			t.Errorf("%s: state %s size %d", it.SourcePath, it.State, it.Size)
		}
		c := counts[it.ID]
		for _, typ := range []custody.EventType{custody.Vaulted, custody.Uploaded, custody.Verified} {
			if c[typ] != 1 {
				t.Errorf("%s: %d %s events, want exactly 1", it.SourcePath, c[typ], typ)
			}
		}
		if c[custody.UploadFailed] != 0 || c[custody.VerifyFailed] != 0 {
			t.Errorf("%s: failure events %v", it.SourcePath, c)
		}
		if it.Size >= 8<<20 {
			t.Logf("%s: %d UPLOAD_STARTED, %d UPLOAD_PARTS, %d UPLOAD_ABORTED %q", it.SourcePath, c[custody.UploadStarted], c[custody.UploadParts], c[custody.UploadAborted], aborts[it.ID])
		}
	}
	for p, k := range paths {
		if k != 1 {
			t.Errorf("%s: %d items", p, k)
		}
	}
	st, err := s3store.New(ctx, s3store.Config{Endpoint: srv.Endpoint, Bucket: bucket, Region: s3srv.Region, PathStyle: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Footage only: the custody checkpoints anchored under _custody/ at each
	// start are not recordings.
	custodyObjs, cerr := st.CountVersions(ctx, "_custody/")
	if cerr != nil {
		t.Fatal(cerr)
	}
	if v, err := st.CountVersions(ctx, ""); err != nil || v-custodyObjs != len(files) {
		v -= custodyObjs
		t.Errorf("bucket holds %d versions (%v), want %d: a duplicate or missing object", v, err, len(files))
	}
	if ups, err := st.ListMultipart(ctx, ""); err != nil || len(ups) != 0 {
		// Named, so that a failure says whose upload it is (a recording's
		// key, or objstore.PartProbeKey) and when it was opened.
		left := make([]string, 0, len(ups))
		for _, u := range ups {
			left = append(left, fmt.Sprintf("%s (upload %s, initiated %s)", u.Key, u.UploadID, u.Initiated.UTC().Format(time.RFC3339)))
		}
		t.Errorf("%d multipart uploads left in the bucket (%v): %s", len(ups), err, strings.Join(left, "; "))
	}
	if out, err := exec.Command(binPath, "verify", "--remote", "--config", cfgPath).CombinedOutput(); err != nil {
		t.Errorf("verify --remote: %v\n%s", err, out)
	}
	if ents, err := os.ReadDir(filepath.Join(state, "vault", "tmp")); err != nil && !os.IsNotExist(err) || len(ents) != 0 {
		t.Errorf("vault/tmp holds %d entries (%v), want none", len(ents), err)
	}
}

func findItems(cfgPath string) ([]custody.Item, bool) {
	out, err := exec.Command(binPath, "find", "--json", "--config", cfgPath).Output()
	if err != nil {
		return nil, false
	}
	var items []custody.Item
	if err := json.Unmarshal(out, &items); err != nil {
		return nil, false
	}
	return items, true
}

func allVerified(items []custody.Item) bool {
	for _, it := range items {
		if it.State != custody.StateVerified {
			return false
		}
	}
	return true
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
