package upload

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/vault"
)

// countHashing makes every hashing pass of the upload count in n.
func countHashing(t *testing.T) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	orig := hashPartsEach
	t.Cleanup(func() { hashPartsEach = orig })
	hashPartsEach = func(ctx context.Context, rd io.ReaderAt, size, ps int64, fn func(int, digest.Sum)) (digest.Sum, error) {
		n.Add(1)
		return orig(ctx, rd, size, ps, fn)
	}
	return &n
}

// refusals is the real store, counting the parts it refused as not
// matching their SHA-256.
type refusals struct {
	*partWatch
	n atomic.Int64
}

func (r *refusals) UploadPart(ctx context.Context, key, uploadID string, num int, body io.ReaderAt, off, size int64, sum digest.Sum) (objstore.Part, error) {
	p, err := r.partWatch.UploadPart(ctx, key, uploadID, num, body, off, size, sum)
	if errors.Is(err, objstore.ErrChecksumMismatch) {
		r.n.Add(1)
	}
	return p, err
}

// vaultRig is the stream rig with a real vault: items are stored, read
// back cold with their part sums, and recorded VAULTED as ingest does.
type vaultRig struct {
	*streamRig
	v     *vault.Vault
	store *refusals
}

func newVaultRig(t *testing.T) *vaultRig {
	t.Helper()
	r := newStreamRig(t)
	v, err := vault.Open(filepath.Join(r.dir, "vault"), nil, vault.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	vr := &vaultRig{streamRig: r, v: v, store: &refusals{partWatch: r.watch}}
	vr.u = New(r.cfg, r.l, v, vr.store, "unit", nil)
	return vr
}

// ingest vaults data as id the way ingest does: copy, cold read-back with
// the part sums at the upload's part size, the sums kept, then VAULTED with
// their composite (unless keep is false: a record of before part sums).
// It returns the item and the part sums.
func (r *vaultRig) ingest(t *testing.T, id string, data []byte, keep bool) (custody.Item, []digest.Sum) {
	t.Helper()
	st, err := r.v.Store(r.ctx, id, bytes.NewReader(data), int64(len(data)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ps := objstore.PartSize(st.Size)
	whole, n, sums, err := r.v.ReadBackParts(r.ctx, id, ps)
	if err != nil || whole != st.SHA256 || n != st.Size {
		t.Fatalf("read back: %s %d %v, stored %s %d", whole.Hex(), n, err, st.SHA256.Hex(), st.Size)
	}
	details := map[string]string{"read_back": "cold"}
	if keep {
		if err := r.v.WritePartSums(id, ps, sums); err != nil {
			t.Fatal(err)
		}
		details = vault.PartSumsDetails(ps, sums)
	}
	now := time.Now().UTC()
	it := custody.Item{ID: id, Camera: "CAM", Kind: "body", AssignedTo: "x", SourcePath: "V.MP4",
		Size: st.Size, SHA256: st.SHA256.Hex(), RecordedAt: now, IngestedAt: now, VaultPath: st.Path,
		State: custody.StateVaulted, RetentionClass: "uncategorized", DockSeq: r.dock}
	if _, err := r.l.Append(r.ctx, custody.Event{Type: custody.Vaulted, Actor: "t", Camera: "CAM", Item: id, SHA256: it.SHA256, Details: details}, &it); err != nil {
		t.Fatal(err)
	}
	return it, sums
}

// rewrite replaces the vault copy of it (read-only by design) with b.
func (r *vaultRig) rewrite(t *testing.T, it custody.Item, b []byte) {
	t.Helper()
	p := r.v.Path(it.ID)
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o440); err != nil {
		t.Fatal(err)
	}
}

// sumsFile is where the vault keeps the part sums of id.
func (r *vaultRig) sumsFile(id string) string {
	return filepath.Join(r.v.Dir(), "parts", id[:2], id)
}

func (r *vaultRig) state(t *testing.T, id string) custody.State {
	t.Helper()
	got, err := r.l.Item(r.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return got.State
}

func (r *vaultRig) custodyTypes(t *testing.T, id string) map[custody.EventType]bool {
	t.Helper()
	evs, err := r.l.Custody(r.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	m := map[custody.EventType]bool{}
	for _, e := range evs {
		m[e.Type] = true
	}
	return m
}

// TestRecordedPartSumsUploadHashesNothing: an item whose VAULTED record
// vouches for part sums kept beside its copy is uploaded and verified
// without a single hashing pass, reading the vault copy once, and verified
// from the store's composite checksum. The store checked each part against
// its recorded sum (none refused).
func TestRecordedPartSumsUploadHashesNothing(t *testing.T) {
	r := newVaultRig(t)
	hashed := countHashing(t)
	data := pattern(3*(8<<20)+4321, 3)
	it, _ := r.ingest(t, strings.Repeat("0", 23)+"a", data, true)

	before := readBytes()
	if err := r.u.Process(r.ctx, it.ID); err != nil {
		t.Fatal(err)
	}
	read := readBytes() - before
	if got := r.state(t, it.ID); got != custody.StateVerified {
		t.Fatalf("item is %s, want verified", got)
	}
	if n := hashed.Load(); n != 0 {
		t.Errorf("the upload hashed the vault copy %d times, want none: the recorded part sums were not used", n)
	}
	if n := r.store.n.Load(); n != 0 {
		t.Errorf("the store refused %d parts of an intact copy", n)
	}
	evs, _ := r.l.Custody(r.ctx, it.ID)
	for _, e := range evs {
		if e.Type == custody.Verified && e.Details["method"] != objstore.MethodCompositeChecksum {
			t.Errorf("verified by %q, want %q from the recorded part sums", e.Details["method"], objstore.MethodCompositeChecksum)
		}
	}
	if before >= 0 {
		t.Logf("upload and verification of %d bytes read %d bytes (%.2f× the file)", len(data), read, float64(read)/float64(len(data)))
		if read >= 3*int64(len(data))/2 {
			t.Errorf("upload and verification of %d bytes read %d bytes: the vault copy was read more than once", len(data), read)
		}
	}
}

// TestRotAfterIngestRefusedByStore: a bit flipped in the vault copy after
// the ingest recorded its part sums is refused by the store (the part does
// not match its recorded sum), the upload is aborted, never completed, the
// failure is permanent and the item is not verified.
func TestRotAfterIngestRefusedByStore(t *testing.T) {
	r := newVaultRig(t)
	hashed := countHashing(t)
	data := pattern(2*(8<<20)+99, 4)
	it, _ := r.ingest(t, strings.Repeat("0", 23)+"b", data, true)
	rotted := append([]byte(nil), data...)
	rotted[len(rotted)/3] ^= 0x04
	r.rewrite(t, it, rotted)

	err := r.u.Process(r.ctx, it.ID)
	if !errors.Is(err, ErrPermanent) || !errors.Is(err, objstore.ErrChecksumMismatch) {
		t.Fatalf("Process of a vault copy rotted after ingest: %v, want a permanent checksum mismatch", err)
	}
	if n := r.store.n.Load(); n == 0 {
		t.Error("the store refused no part: the rot was not caught by the store's check of the recorded sum")
	}
	if n := hashed.Load(); n != 0 {
		t.Errorf("hashing passes: %d, want none (the recorded sums were not used)", n)
	}
	key := ObjectKey(it)
	if vs, err := r.st.ListVersions(r.ctx, key); err != nil || len(vs) != 0 {
		t.Errorf("versions of %s: %v (err %v), want none", key, vs, err)
	}
	if ups, err := r.st.ListMultipart(r.ctx, key); err != nil || len(ups) != 0 {
		t.Errorf("open uploads of %s: %v (err %v), want none (aborted)", key, ups, err)
	}
	types := r.custodyTypes(t, it.ID)
	if !types[custody.UploadAborted] || !types[custody.UploadFailed] || types[custody.Uploaded] || types[custody.Verified] {
		t.Errorf("custody of the rotted item: %v, want UPLOAD_ABORTED and UPLOAD_FAILED, no UPLOADED or VERIFIED", types)
	}
	if got := r.state(t, it.ID); got != custody.StateVaulted {
		t.Errorf("rotted item is %s, want vaulted", got)
	}
}

// TestUntrustedPartSumsFallBackToHashing: the recorded part sums are used
// only when the record vouches for them at the part size in use and the
// file reproduces the recorded composite. Otherwise the upload hashes the
// vault copy as before and uploads it correctly:
//   - the sums file altered (a garbage sum),
//   - the sums file left by an earlier attempt that crashed before its
//     record (sums of other content at the same part size),
//   - the sums file missing,
//   - a record from before part sums,
//   - sums recorded at another part size.
//
// And rot plus a sums file rewritten to match it (sums the record does not
// vouch for) is found by the hash and never completed.
func TestUntrustedPartSumsFallBackToHashing(t *testing.T) {
	r := newVaultRig(t)
	hashed := countHashing(t)
	size := 2*(8<<20) + 77
	cases := []struct {
		name  string
		keep  bool
		after func(t *testing.T, it custody.Item, sums []digest.Sum)
	}{
		{"altered", true, func(t *testing.T, it custody.Item, sums []digest.Sum) {
			sums[1][0] ^= 1
			r.overwriteSums(t, it.ID, objstore.PartSize(it.Size), sums)
		}},
		{"stale", true, func(t *testing.T, it custody.Item, _ []digest.Sum) {
			other := pattern(size, 99)
			var stale []digest.Sum
			if _, err := objstore.HashPartsEach(r.ctx, bytes.NewReader(other), int64(size), objstore.PartSize(int64(size)), func(_ int, s digest.Sum) { stale = append(stale, s) }); err != nil {
				t.Fatal(err)
			}
			r.overwriteSums(t, it.ID, objstore.PartSize(it.Size), stale)
		}},
		{"missing", true, func(t *testing.T, it custody.Item, _ []digest.Sum) {
			if err := os.Remove(r.sumsFile(it.ID)); err != nil {
				t.Fatal(err)
			}
		}},
		{"unrecorded", false, nil},
		{"other-part-size", true, func(t *testing.T, it custody.Item, _ []digest.Sum) {
			// What a record of an ingest that cut at another part size holds:
			// composite and file both of 16 MiB parts.
			ps := 2 * objstore.PartSize(it.Size)
			var other []digest.Sum
			f, err := r.v.Open(it.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := objstore.HashPartsEach(r.ctx, f, it.Size, ps, func(_ int, s digest.Sum) { other = append(other, s) }); err != nil {
				t.Fatal(err)
			}
			if err := r.v.WritePartSums(it.ID, ps, other); err != nil {
				t.Fatal(err)
			}
			if _, err := r.l.Append(r.ctx, custody.Event{Type: custody.Vaulted, Actor: "t", Camera: "CAM", Item: it.ID, SHA256: it.SHA256, Details: vault.PartSumsDetails(ps, other)}, &it); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := pattern(size, i+10)
			it, sums := r.ingest(t, strings.Repeat("0", 22)+"c"+string(rune('a'+i)), data, tc.keep)
			if tc.after != nil {
				tc.after(t, it, sums)
			}
			before := hashed.Load()
			if err := r.u.Process(r.ctx, it.ID); err != nil {
				t.Fatalf("upload falling back to hashing: %v", err)
			}
			if hashed.Load() == before {
				t.Error("the vault copy was not hashed: untrusted part sums were used")
			}
			if got := r.state(t, it.ID); got != custody.StateVerified {
				t.Errorf("item is %s, want verified", got)
			}
		})
	}
	t.Run("rot-with-matching-sums-file", func(t *testing.T) {
		data := pattern(size, 50)
		it, _ := r.ingest(t, strings.Repeat("0", 23)+"d", data, true)
		rotted := append([]byte(nil), data...)
		rotted[10] ^= 0x80
		r.rewrite(t, it, rotted)
		var forged []digest.Sum
		if _, err := objstore.HashPartsEach(r.ctx, bytes.NewReader(rotted), int64(size), objstore.PartSize(int64(size)), func(_ int, s digest.Sum) { forged = append(forged, s) }); err != nil {
			t.Fatal(err)
		}
		r.overwriteSums(t, it.ID, objstore.PartSize(it.Size), forged)
		err := r.u.Process(r.ctx, it.ID)
		if !errors.Is(err, ErrPermanent) {
			t.Fatalf("Process of a rotted copy with a sums file forged to match: %v, want a permanent failure", err)
		}
		if vs, err := r.st.ListVersions(r.ctx, ObjectKey(it)); err != nil || len(vs) != 0 {
			t.Errorf("versions: %v (err %v), want none", vs, err)
		}
		if got := r.state(t, it.ID); got == custody.StateVerified || got == custody.StateUploaded {
			t.Errorf("rotted item is %s", got)
		}
	})
}

// overwriteSums replaces the sums file of id the way a crash-left or
// tampered file would sit there: written by the vault's own writer, so
// only its content differs from what the record vouches for.
func (r *vaultRig) overwriteSums(t *testing.T, id string, ps int64, sums []digest.Sum) {
	t.Helper()
	if err := r.v.WritePartSums(id, ps, sums); err != nil {
		t.Fatal(err)
	}
}

// failPart is the real store (through refusals) failing every attempt at
// part n with a transient error while fail is set.
type failPart struct {
	*refusals
	n    int
	fail atomic.Bool
}

func (f *failPart) UploadPart(ctx context.Context, key, uploadID string, num int, body io.ReaderAt, off, size int64, sum digest.Sum) (objstore.Part, error) {
	if num == f.n && f.fail.Load() {
		return objstore.Part{}, errors.New("connection reset by peer")
	}
	return f.refusals.UploadPart(ctx, key, uploadID, num, body, off, size, sum)
}

// TestResumeUsesRecordedPartSums: an upload cut short (its last part failing)
// is resumed by a new process (no sums cached) from the recorded part
// sums: the parts the store holds are judged and kept, the rest sent,
// the item verified, and nothing hashed in either process.
func TestResumeUsesRecordedPartSums(t *testing.T) {
	r := newVaultRig(t)
	hashed := countHashing(t)
	data := pattern(3*(8<<20)+11, 7)
	it, _ := r.ingest(t, strings.Repeat("0", 23)+"e", data, true)
	fp := &failPart{refusals: r.store, n: 4}
	fp.fail.Store(true)
	first := New(r.cfg, r.l, r.v, fp, "unit", nil)
	if err := first.Process(r.ctx, it.ID); err == nil || errors.Is(err, ErrPermanent) {
		t.Fatalf("first attempt with the last part failing: %v, want a transient error", err)
	}
	fp.fail.Store(false)
	second := New(r.cfg, r.l, r.v, fp, "unit", nil)
	if err := second.Process(r.ctx, it.ID); err != nil {
		t.Fatal(err)
	}
	st, ok := second.LastResume(it.ID)
	if !ok || !st.Resumed || st.PartsKept == 0 {
		t.Errorf("second attempt: %+v, want a resumed upload keeping the parts the store held", st)
	}
	if n := hashed.Load(); n != 0 {
		t.Errorf("hashing passes: %d, want none (the resume judged the store's parts by the recorded sums)", n)
	}
	if got := r.state(t, it.ID); got != custody.StateVerified {
		t.Errorf("item is %s, want verified", got)
	}
}
