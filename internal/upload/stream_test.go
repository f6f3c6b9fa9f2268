package upload

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// partWatch is the real store, closing first when part 1 of an upload is
// handed to it.
type partWatch struct {
	*s3store.Store
	once  sync.Once
	first chan struct{}
}

func (w *partWatch) UploadPart(ctx context.Context, key, uploadID string, n int, body io.ReaderAt, off, size int64, sum digest.Sum) (objstore.Part, error) {
	if n == 1 {
		w.once.Do(func() { close(w.first) })
	}
	return w.Store.UploadPart(ctx, key, uploadID, n, body, off, size, sum)
}

// streamRig is an uploader on a real versitygw bucket with 8 MiB parts
// from 8 MiB on, 2 parts in flight, quick retries, and a vault directory.
type streamRig struct {
	ctx   context.Context
	dir   string
	cfg   *config.Config
	l     *custody.Ledger
	st    *s3store.Store
	watch *partWatch
	u     *Uploader
	dock  uint64
}

func newStreamRig(t *testing.T) *streamRig {
	t.Helper()
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	ctx := context.Background()
	st, err := s3store.New(ctx, s3store.Config{
		Endpoint: srv.Endpoint, Bucket: bucket, Region: s3srv.Region, PathStyle: true, MultipartThreshold: 8 << 20,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := custody.Open(filepath.Join(dir, "ledger.db"), custody.Options{Host: "unit"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cfg := config.Default()
	cfg.HostID = "unit"
	cfg.Retention.Classes = []config.Class{{Name: "uncategorized", Days: 1, Mode: config.ModeGovernance}}
	cfg.Upload.PartConcurrency = 2
	cfg.Upload.RetryMin = config.Duration{Duration: time.Millisecond}
	cfg.Upload.RetryMax = config.Duration{Duration: 5 * time.Millisecond}
	dock, err := l.Append(ctx, custody.Event{Type: custody.Docked, Actor: "t", Camera: "CAM"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &streamRig{ctx: ctx, dir: dir, cfg: cfg, l: l, st: st, watch: &partWatch{Store: st, first: make(chan struct{})}, dock: dock.Seq}
	r.u = New(cfg, l, dirVault{dir}, r.watch, "unit", nil)
	return r
}

// item vaults data as item id, recorded with SHA-256 want.
func (r *streamRig) item(t *testing.T, id string, data []byte, want digest.Sum) custody.Item {
	t.Helper()
	if err := os.WriteFile(filepath.Join(r.dir, id), data, 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	it := custody.Item{ID: id, Camera: "CAM", Kind: "body", AssignedTo: "x", SourcePath: "V.MP4",
		Size: int64(len(data)), SHA256: want.Hex(), RecordedAt: now, IngestedAt: now,
		State: custody.StateVaulted, RetentionClass: "uncategorized", DockSeq: r.dock}
	if _, err := r.l.Append(r.ctx, custody.Event{Type: custody.Vaulted, Actor: "t", Camera: "CAM", Item: id, SHA256: it.SHA256}, &it); err != nil {
		t.Fatal(err)
	}
	return it
}

// recordStarted records UPLOAD_STARTED for it's upload id at key, as the
// uploader does once CreateMultipartUpload has answered.
func (r *streamRig) recordStarted(t *testing.T, it custody.Item, key, id string) {
	t.Helper()
	ps := objstore.PartSize(it.Size)
	if _, err := r.l.Append(r.ctx, custody.Event{
		Type: custody.UploadStarted, Actor: "t", Camera: "CAM", Item: it.ID, SHA256: it.SHA256,
		Details: map[string]string{
			"upload_id": id, "key": key, "part_size": strconv.FormatInt(ps, 10),
			"parts": strconv.Itoa(objstore.PartCount(it.Size, ps)), "size": strconv.FormatInt(it.Size, 10),
		},
	}, nil); err != nil {
		t.Fatal(err)
	}
}

func pattern(size, seed int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i*13 + seed)
	}
	return b
}

// TestNewUploadSendsPartsWhileHashing: a new multipart upload sends its
// first part before the vault copy has been hashed to its end, instead of
// a whole pass over the file first (on a 2-core dock host that pass was
// ~0.7 s per GiB with nothing sent). The hashing of the last part waits
// for part 1 to reach the store; an uploader that hashes everything first
// would wait in vain. The item is still verified.
func TestNewUploadSendsPartsWhileHashing(t *testing.T) {
	r := newStreamRig(t)
	const wait = 5 * time.Second
	var waited time.Duration
	orig := hashPartsEach
	t.Cleanup(func() { hashPartsEach = orig })
	hashPartsEach = func(ctx context.Context, rd io.ReaderAt, size, ps int64, fn func(int, digest.Sum)) (digest.Sum, error) {
		last := int(objstore.PartCount(size, ps)) - 1
		return orig(ctx, rd, size, ps, func(i int, sum digest.Sum) {
			if i == last {
				t0 := time.Now()
				select {
				case <-r.watch.first:
				case <-time.After(wait):
				}
				waited = time.Since(t0)
			}
			fn(i, sum)
		})
	}
	data := pattern(3*(8<<20)+777, 1)
	it := r.item(t, strings.Repeat("0", 23)+"1", data, digest.Bytes(data))
	if err := r.u.Process(r.ctx, it.ID); err != nil {
		t.Fatal(err)
	}
	if waited >= wait {
		t.Errorf("part 1 was not sent until the whole vault copy had been hashed (waited %s)", waited)
	}
	got, err := r.l.Item(r.ctx, it.ID)
	if err != nil || got.State != custody.StateVerified {
		t.Fatalf("item %s: %v, want verified", got.State, err)
	}
}

// TestDamagedCopyNotCompleted: a vault copy that no longer hashes to the
// recorded SHA-256 is found out only after parts went out (they are sent
// while the file is hashed), so the upload must be aborted, never
// completed: no version of the key exists, no upload is left open, the
// ledger says UPLOAD_ABORTED, and the failure is permanent.
func TestDamagedCopyNotCompleted(t *testing.T) {
	r := newStreamRig(t)
	data := pattern(2*(8<<20)+99, 2)
	want := digest.Bytes(data)
	data[len(data)-5] ^= 0x40 // damage in the last part: every part is sent before the whole is known
	it := r.item(t, strings.Repeat("0", 23)+"2", data, want)
	err := r.u.Process(r.ctx, it.ID)
	if !errors.Is(err, ErrPermanent) || !errors.Is(err, objstore.ErrChecksumMismatch) {
		t.Fatalf("Process of a damaged vault copy: %v, want a permanent checksum mismatch", err)
	}
	select {
	case <-r.watch.first:
	default:
		t.Fatal("no part was sent: the test does not exercise a damage found after sending")
	}
	key := ObjectKey(it)
	if vs, err := r.st.ListVersions(r.ctx, key); err != nil || len(vs) != 0 {
		t.Errorf("versions of %s after a damaged upload: %v (err %v), want none", key, vs, err)
	}
	if ups, err := r.st.ListMultipart(r.ctx, key); err != nil || len(ups) != 0 {
		t.Errorf("open uploads of %s: %v (err %v), want none", key, ups, err)
	}
	evs, err := r.l.Custody(r.ctx, it.ID)
	if err != nil {
		t.Fatal(err)
	}
	var types []custody.EventType
	for _, e := range evs {
		types = append(types, e.Type)
	}
	has := func(ty custody.EventType) bool {
		for _, x := range types {
			if x == ty {
				return true
			}
		}
		return false
	}
	if !has(custody.UploadStarted) || !has(custody.UploadAborted) || !has(custody.UploadFailed) || has(custody.Uploaded) {
		t.Errorf("custody of the damaged item: %v, want UPLOAD_STARTED, UPLOAD_ABORTED and UPLOAD_FAILED, no UPLOADED", types)
	}
	if got, _ := r.l.Item(r.ctx, it.ID); got.State != custody.StateVaulted {
		t.Errorf("damaged item is %s, want vaulted", got.State)
	}
}

// A resumed upload of a vault copy damaged since the upload was started is
// aborted: the item stays VAULTED, so Sweep would keep the upload its ledger
// resumes, and its parts would hold space for good.
func TestDamagedCopyAbortsResumedUpload(t *testing.T) {
	r := newStreamRig(t)
	data := pattern(2*(8<<20)+99, 3)
	want := digest.Bytes(data)
	data[7] ^= 0x40
	it := r.item(t, strings.Repeat("0", 23)+"3", data, want)
	key := ObjectKey(it)
	id, err := r.st.CreateMultipart(r.ctx, objstore.PutRequest{Key: key, Size: it.Size, SHA256: want})
	if err != nil {
		t.Fatal(err)
	}
	r.recordStarted(t, it, key, id)
	err = r.u.Process(r.ctx, it.ID)
	if !errors.Is(err, ErrPermanent) || !errors.Is(err, objstore.ErrChecksumMismatch) {
		t.Fatalf("Process of a damaged vault copy: %v, want a permanent checksum mismatch", err)
	}
	if ups, err := r.st.ListMultipart(r.ctx, key); err != nil || len(ups) != 0 {
		t.Errorf("open uploads of %s: %v (err %v), want none", key, ups, err)
	}
	evs, err := r.l.Custody(r.ctx, it.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st := findOpenUpload(evs); st != nil {
		t.Errorf("the ledger still resumes upload %s", st.uploadID)
	}
}
