// Package storetest states the objstore.Store contract as tests, so that
// "any S3-compatible store" is a claim proven per server rather than
// assumed. Run is called with a constructor for a fresh, empty store (its
// own bucket) and the server's Quirks, the ways it was found to differ from
// S3 as AWS documents it. The suite checks the quirks too: a server that
// stops (or starts) behaving as its Quirks say fails, so the list stays
// true.
//
// It runs against memstore (internal/objstore/memstore), VersityGW and
// Ceph RGW (internal/objstore/s3store's tests). Whatever a server does not
// check itself, evidenced proves another way: a store that reports no
// checksum has its content proven by read-back (objstore.Verify), and the
// uploader re-applies a lock or tags that a multipart upload lost.
//
// Import it only from tests.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
)

// Quirks says where a server departs from S3.
type Quirks struct {
	// NoChecksums: the server ignores x-amz-checksum-sha256: it neither
	// reports a checksum (Put, Stat, ListParts) nor checks it. A body that
	// does not hash to the SHA-256 it was sent with must still be refused
	// (s3store signs every body with its SHA-256 as the SigV4 payload hash,
	// x-amz-content-sha256, which such a server may check), and its content
	// is proven by read-back. Ceph RGW 16.2.
	NoChecksums bool
	// MultipartDropsLock: a multipart object comes out without the Object
	// Lock retention and tags its upload was created with. Ceph RGW 16.2.
	MultipartDropsLock bool
	// MultipartNoETag: CompleteMultipartUpload returns an empty ETag (Stat
	// reports it). Ceph RGW 16.2.
	MultipartNoETag bool
}

// MultipartSize is the size of the objects the suite uploads in parts: two
// parts of objstore.PartSize. newStore must return a store whose multipart
// threshold (objstore.Multipart, or memstore's MultipartThreshold) is at
// most this.
const MultipartSize = 9<<20 + 4321

// Run runs the contract against stores made by newStore, each fresh and
// empty.
func Run(t *testing.T, q Quirks, newStore func(t *testing.T) objstore.Store) {
	t.Run("PutStatOpen", func(t *testing.T) { testPutStatOpen(t, q, newStore(t)) })
	t.Run("WrongChecksumRefused", func(t *testing.T) { testWrongChecksum(t, newStore(t)) })
	t.Run("IdempotentPutAndVersions", func(t *testing.T) { testVersions(t, newStore(t)) })
	t.Run("LockModesAndRetention", func(t *testing.T) { testRetention(t, newStore(t)) })
	t.Run("LegalHold", func(t *testing.T) { testLegalHold(t, newStore(t)) })
	t.Run("Tags", func(t *testing.T) { testTags(t, newStore(t)) })
	t.Run("Listing", func(t *testing.T) { testListing(t, newStore(t)) })
	t.Run("ListingByPage", func(t *testing.T) { testListingByPage(t, newStore(t)) })
	t.Run("Directories", func(t *testing.T) { testDirectories(t, newStore(t)) })
	t.Run("RangedReads", func(t *testing.T) { testRanges(t, newStore(t)) })
	t.Run("Multipart", func(t *testing.T) { testMultipart(t, q, newStore(t)) })
	t.Run("MultipartResume", func(t *testing.T) { testResume(t, q, newStore(t)) })
}

// RandBytes is n reproducible pseudo-random bytes (seeded by seed and n).
func RandBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Request is a PutRequest for data as the uploader makes them: SHA-256,
// sha256 metadata, a camera tag and a GOVERNANCE lock for a day.
func Request(key string, data []byte) objstore.PutRequest {
	sum := digest.Bytes(data)
	return objstore.PutRequest{
		Key: key, Body: bytes.NewReader(data), Size: int64(len(data)), SHA256: sum,
		Tags:        map[string]string{"camera": "BWC-0001", "sha256": sum.Hex()},
		Metadata:    map[string]string{"sha256": sum.Hex(), "item-id": key},
		ContentType: "video/mp4",
		LockMode:    objstore.LockGovernance, RetainUntil: time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second),
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustPut(t *testing.T, s objstore.Store, req objstore.PutRequest) objstore.PutResult {
	t.Helper()
	res, err := s.Put(ctxFor(t), req)
	if err != nil {
		t.Fatalf("put %s: %v", req.Key, err)
	}
	if res.VersionID == "" {
		t.Fatalf("put %s: no version id (is the bucket versioned?)", req.Key)
	}
	return res
}

func mustStat(t *testing.T, s objstore.Store, key, versionID string) objstore.ObjectInfo {
	t.Helper()
	info, err := s.Stat(ctxFor(t), key, versionID)
	if err != nil {
		t.Fatalf("stat %s %s: %v", key, versionID, err)
	}
	return info
}

// read returns a function that reads an opened object to the end, failing
// t on any error: read(t)(s.Open(...)).
func read(t *testing.T) func(rc io.ReadCloser, err error) []byte {
	return func(rc io.ReadCloser, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return b
	}
}

// checkChecksum checks what the store reports against its quirks: the
// SHA-256 (whole or composite) when it reports checksums, nothing when it
// does not.
func checkChecksum(t *testing.T, q Quirks, what, got, want string) {
	t.Helper()
	switch {
	case q.NoChecksums && got != "":
		t.Errorf("%s: store reports checksum %q; its quirks say it reports none (update Quirks)", what, got)
	case !q.NoChecksums && got != want:
		t.Errorf("%s: store checksum %q, want %q", what, got, want)
	}
}

func testPutStatOpen(t *testing.T, q Quirks, s objstore.Store) {
	ctx := ctxFor(t)
	data := RandBytes(1, 100_000)
	req := Request("cam/a.mp4", data)
	res := mustPut(t, s, req)
	if res.Reused || res.Parts != 0 {
		t.Errorf("first put: %+v, want a new single-part version", res)
	}
	checkChecksum(t, q, "put result", res.ChecksumSHA256, req.SHA256.Base64())
	info := mustStat(t, s, req.Key, res.VersionID)
	if info.VersionID != res.VersionID || info.Size != req.Size || info.SHA256 != req.SHA256.Hex() {
		t.Errorf("stat: version %q size %d sha256 %q, want %q %d %q", info.VersionID, info.Size, info.SHA256, res.VersionID, req.Size, req.SHA256.Hex())
	}
	checkChecksum(t, q, "stat", info.ChecksumSHA256, req.SHA256.Base64())
	if !q.NoChecksums && info.ChecksumType != objstore.ChecksumFullObject {
		t.Errorf("stat: checksum type %q, want %s", info.ChecksumType, objstore.ChecksumFullObject)
	}
	if info.ETag == "" {
		t.Error("stat: no ETag")
	}
	if info.LockMode != objstore.LockGovernance || !info.RetainUntil.Equal(req.RetainUntil) {
		t.Errorf("stat: lock %q until %v, want %s until %v", info.LockMode, info.RetainUntil, objstore.LockGovernance, req.RetainUntil)
	}
	if info.Tags["camera"] != "BWC-0001" || info.Tags["sha256"] != req.SHA256.Hex() {
		t.Errorf("stat: tags %v", info.Tags)
	}
	if got := read(t)(s.Open(ctx, req.Key, res.VersionID)); !bytes.Equal(got, data) {
		t.Errorf("open: %d bytes back, not the %d put", len(got), len(data))
	}
	if got := read(t)(s.Open(ctx, req.Key, "")); !bytes.Equal(got, data) {
		t.Error("open latest: other bytes than were put")
	}
	method, err := objstore.Verify(ctx, s, req.Key, res.VersionID, req.Size, req.SHA256, nil)
	want := objstore.MethodStoreChecksum
	if q.NoChecksums {
		want = objstore.MethodReadBack
	}
	if err != nil || method != want {
		t.Errorf("Verify: %s %v, want %s and no error", method, err, want)
	}
	if _, err := s.Stat(ctx, "cam/missing.mp4", ""); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("stat of a missing key: %v, want ErrNotFound", err)
	}
	if _, err := s.Open(ctx, "cam/missing.mp4", ""); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("open of a missing key: %v, want ErrNotFound", err)
	}
}

// testWrongChecksum: a body that does not hash to the SHA-256 sent with it
// is refused, as a checksum mismatch (permanent), and leaves no version.
// Every server tested refuses it (RGW through the signed payload hash).
func testWrongChecksum(t *testing.T, s objstore.Store) {
	ctx := ctxFor(t)
	data := RandBytes(2, 50_000)
	req := Request("cam/wrong.mp4", data)
	req.SHA256 = digest.Bytes(append([]byte("not "), data...))
	_, err := s.Put(ctx, req)
	if !errors.Is(err, objstore.ErrChecksumMismatch) || !objstore.IsPermanent(err) {
		t.Fatalf("put with a wrong sha256: %v, want a permanent ErrChecksumMismatch", err)
	}
	if _, err := s.Stat(ctx, req.Key, ""); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("after the refused put: stat %v, want ErrNotFound (no version left behind)", err)
	}
}

func testVersions(t *testing.T, s objstore.Store) {
	ctx := ctxFor(t)
	v1 := RandBytes(3, 10_000)
	first := mustPut(t, s, Request("cam/v.mp4", v1))
	again := mustPut(t, s, Request("cam/v.mp4", v1))
	if !again.Reused || again.VersionID != first.VersionID {
		t.Errorf("re-put of the same content: %+v, want the first version (%s) reused", again, first.VersionID)
	}
	v2 := RandBytes(4, 10_001)
	second := mustPut(t, s, Request("cam/v.mp4", v2))
	if second.Reused || second.VersionID == first.VersionID {
		t.Errorf("put of new content: %+v, want a new version", second)
	}
	if got := read(t)(s.Open(ctx, "cam/v.mp4", first.VersionID)); !bytes.Equal(got, v1) {
		t.Error("the first version's content changed")
	}
	if got := read(t)(s.Open(ctx, "cam/v.mp4", "")); !bytes.Equal(got, v2) {
		t.Error("the latest version is not the second put")
	}
	if info := mustStat(t, s, "cam/v.mp4", ""); info.VersionID != second.VersionID {
		t.Errorf("stat latest: version %s, want %s", info.VersionID, second.VersionID)
	}
	if l, ok := s.(objstore.Lister); ok {
		vs, err := l.ListVersions(ctx, "cam/v.mp4")
		if err != nil || len(vs) != 2 {
			t.Errorf("versions after put, re-put, new put: %v %v, want 2", vs, err)
		}
	}
}

func retainer(t *testing.T, s objstore.Store) objstore.Retainer {
	r, ok := s.(objstore.Retainer)
	if !ok {
		t.Skip("store has no Retainer")
	}
	return r
}

func testRetention(t *testing.T, s objstore.Store) {
	ctx := ctxFor(t)
	r := retainer(t, s)
	until := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
	for _, mode := range []string{objstore.LockGovernance, objstore.LockCompliance} {
		req := Request("cam/"+mode+".mp4", RandBytes(5, 1000))
		req.LockMode, req.RetainUntil = mode, until
		res := mustPut(t, s, req)
		info := mustStat(t, s, req.Key, res.VersionID)
		if info.LockMode != mode || !info.RetainUntil.Equal(until) {
			t.Errorf("%s put: lock %q until %v, want %s until %v", mode, info.LockMode, info.RetainUntil, mode, until)
		}
		if err := r.PutRetention(ctx, req.Key, res.VersionID, mode, until.Add(time.Hour)); err != nil {
			t.Errorf("%s: extend: %v", mode, err)
		}
		if err := r.PutRetention(ctx, req.Key, res.VersionID, mode, until); !errors.Is(err, objstore.ErrRetentionShortened) {
			t.Errorf("%s: shorten: %v, want ErrRetentionShortened", mode, err)
		}
		if info := mustStat(t, s, req.Key, res.VersionID); info.LockMode != mode || !info.RetainUntil.Equal(until.Add(time.Hour)) {
			t.Errorf("%s after extend: lock %q until %v, want until %v", mode, info.LockMode, info.RetainUntil, until.Add(time.Hour))
		}
	}
	// GOVERNANCE → COMPLIANCE strengthens; COMPLIANCE → GOVERNANCE is refused.
	if err := r.PutRetention(ctx, "cam/GOVERNANCE.mp4", "", objstore.LockCompliance, until.Add(2*time.Hour)); err != nil {
		t.Errorf("raise GOVERNANCE to COMPLIANCE: %v", err)
	}
	if info := mustStat(t, s, "cam/GOVERNANCE.mp4", ""); info.LockMode != objstore.LockCompliance {
		t.Errorf("after raising: lock %q, want COMPLIANCE", info.LockMode)
	}
	if err := r.PutRetention(ctx, "cam/COMPLIANCE.mp4", "", objstore.LockGovernance, until.Add(48*time.Hour)); !errors.Is(err, objstore.ErrRetentionShortened) {
		t.Errorf("weaken COMPLIANCE to GOVERNANCE: %v, want ErrRetentionShortened", err)
	}
	// An object put without a lock can be locked afterwards (what the
	// uploader does after a multipart upload that lost its lock).
	req := Request("cam/unlocked.mp4", RandBytes(6, 1000))
	req.LockMode, req.RetainUntil = "", time.Time{}
	res := mustPut(t, s, req)
	if info := mustStat(t, s, req.Key, res.VersionID); info.LockMode != "" {
		t.Errorf("put without a lock: lock %q (a bucket default retention?)", info.LockMode)
	}
	if err := r.PutRetention(ctx, req.Key, res.VersionID, objstore.LockCompliance, until); err != nil {
		t.Fatalf("lock an unlocked version: %v", err)
	}
	if info := mustStat(t, s, req.Key, res.VersionID); info.LockMode != objstore.LockCompliance || !info.RetainUntil.Equal(until) {
		t.Errorf("after locking: lock %q until %v", info.LockMode, info.RetainUntil)
	}
}

func testLegalHold(t *testing.T, s objstore.Store) {
	ctx := ctxFor(t)
	r := retainer(t, s)
	res := mustPut(t, s, Request("cam/hold.mp4", RandBytes(7, 1000)))
	if mustStat(t, s, "cam/hold.mp4", res.VersionID).LegalHold {
		t.Error("a new version is under legal hold")
	}
	for _, on := range []bool{true, true, false} { // the second "on" is a retry: idempotent
		if err := r.PutLegalHold(ctx, "cam/hold.mp4", res.VersionID, on); err != nil {
			t.Fatalf("legal hold %v: %v", on, err)
		}
		if got := mustStat(t, s, "cam/hold.mp4", res.VersionID).LegalHold; got != on {
			t.Errorf("legal hold %v: stat says %v", on, got)
		}
	}
}

func testTags(t *testing.T, s objstore.Store) {
	ctx := ctxFor(t)
	tg, ok := s.(objstore.Tagger)
	if !ok {
		t.Skip("store has no Tagger")
	}
	first := mustPut(t, s, Request("cam/tags.mp4", RandBytes(8, 1000)))
	second := mustPut(t, s, Request("cam/tags.mp4", RandBytes(9, 1000)))
	want := map[string]string{"retention_class": "homicide", "camera": "BWC 0001/x"}
	if err := tg.PutTags(ctx, "cam/tags.mp4", first.VersionID, want); err != nil {
		t.Fatal(err)
	}
	got := mustStat(t, s, "cam/tags.mp4", first.VersionID).Tags
	if len(got) != len(want) || got["retention_class"] != want["retention_class"] || got["camera"] != want["camera"] {
		t.Errorf("tags after PutTags: %v, want exactly %v (replaced, not merged)", got, want)
	}
	if other := mustStat(t, s, "cam/tags.mp4", second.VersionID).Tags; other["retention_class"] != "" || other["camera"] != "BWC-0001" {
		t.Errorf("PutTags on one version changed another's tags: %v", other)
	}
}

func testListing(t *testing.T, s objstore.Store) {
	ctx := ctxFor(t)
	l, ok := s.(objstore.Lister)
	if !ok {
		t.Skip("store has no Lister")
	}
	a1 := mustPut(t, s, Request("list/a/1.mp4", RandBytes(10, 100)))
	a1b := mustPut(t, s, Request("list/a/1.mp4", RandBytes(11, 101)))
	a2 := mustPut(t, s, Request("list/a/2.mp4", RandBytes(12, 102)))
	mustPut(t, s, Request("list/b/1.mp4", RandBytes(13, 103)))
	vs, err := l.ListVersions(ctx, "list/a/")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]objstore.Version{
		a1.VersionID:  {Key: "list/a/1.mp4", VersionID: a1.VersionID, Size: 100, IsLatest: false},
		a1b.VersionID: {Key: "list/a/1.mp4", VersionID: a1b.VersionID, Size: 101, IsLatest: true},
		a2.VersionID:  {Key: "list/a/2.mp4", VersionID: a2.VersionID, Size: 102, IsLatest: true},
	}
	if len(vs) != len(want) {
		t.Fatalf("list/a/: %d versions %+v, want %d", len(vs), vs, len(want))
	}
	for _, v := range vs {
		if w, ok := want[v.VersionID]; !ok || v != w {
			t.Errorf("listed %+v, want %+v", v, w)
		}
	}
	if vs, err := l.ListVersions(ctx, "list/none/"); err != nil || len(vs) != 0 {
		t.Errorf("empty prefix: %v %v", vs, err)
	}
}

// testListingByPage: pages of at most two keys, in key order, each key's
// versions all in one page, from after the last key of the page before,
// end with next "": together they are the whole listing, once.
func testListingByPage(t *testing.T, s objstore.Store) {
	ctx := ctxFor(t)
	l, ok := s.(objstore.PageLister)
	if !ok {
		t.Skip("store has no PageLister")
	}
	want := map[string]int{}
	for i, k := range []string{"page/p/1", "page/p/2", "page/p/3", "page/p/3", "page/p/3", "page/p/4", "page/p/5", "page/p/5"} {
		mustPut(t, s, Request(k, RandBytes(uint64(30+i), 10)))
		want[k]++
	}
	mustPut(t, s, Request("page/q/1", RandBytes(40, 10)))
	got, page := map[string]int{}, map[string]int{}
	var keys []string
	after, pages := "", 0
	for {
		vs, next, err := l.ListVersionsPage(ctx, "page/p/", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if pages++; pages > 10 {
			t.Fatalf("still listing after 10 pages: %v", keys)
		}
		for _, v := range vs {
			if got[v.Key] == 0 {
				keys, page[v.Key] = append(keys, v.Key), pages
			} else if page[v.Key] != pages {
				t.Errorf("%s: versions in pages %d and %d", v.Key, page[v.Key], pages)
			}
			got[v.Key]++
		}
		if next == "" {
			break
		}
		if next <= after || len(vs) == 0 || vs[len(vs)-1].Key != next {
			t.Fatalf("page after %q: next %q, versions %+v", after, next, vs)
		}
		after = next
	}
	if !slices.IsSorted(keys) || len(keys) != len(want) || pages < 3 {
		t.Errorf("keys %v in %d pages, want %d keys in order in 3 or more pages", keys, pages, len(want))
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d versions listed, want %d (each once)", k, got[k], n)
		}
	}
	if vs, next, err := l.ListVersionsPage(ctx, "page/none/", "", 2); err != nil || len(vs) != 0 || next != "" {
		t.Errorf("empty prefix: %v %q %v", vs, next, err)
	}
}

// testDirectories: the distinct next segments under a prefix, each once,
// none for a key directly under it, none outside it.
func testDirectories(t *testing.T, s objstore.Store) {
	ctx := ctxFor(t)
	d, ok := s.(objstore.Directories)
	if !ok {
		t.Skip("store has no Directories")
	}
	mustPut(t, s, Request("dirs/a/1.note", RandBytes(20, 10)))
	mustPut(t, s, Request("dirs/a/x/2.note", RandBytes(21, 10)))
	mustPut(t, s, Request("dirs/b/1.note", RandBytes(22, 10)))
	mustPut(t, s, Request("dirs/b/1.note", RandBytes(23, 11)))
	mustPut(t, s, Request("dirs/top.note", RandBytes(24, 10)))
	mustPut(t, s, Request("other/c/1.note", RandBytes(25, 10)))
	got, err := d.ListDirectories(ctx, "dirs/")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if strings.Join(got, ",") != "a,b" {
		t.Errorf("directories under dirs/: %q, want [a b]", got)
	}
	if got, err := d.ListDirectories(ctx, "none/"); err != nil || len(got) != 0 {
		t.Errorf("directories under none/: %q %v", got, err)
	}
}

func testRanges(t *testing.T, s objstore.Store) {
	ctx := ctxFor(t)
	rg, ok := s.(objstore.Ranger)
	if !ok {
		t.Skip("store has no Ranger")
	}
	data := RandBytes(14, 70_000)
	res := mustPut(t, s, Request("cam/range.mp4", data))
	for _, c := range []struct{ off, n int64 }{{0, 1}, {1000, 5000}, {69_999, 1}, {65_000, 10_000}} {
		got := read(t)(rg.OpenRange(ctx, "cam/range.mp4", res.VersionID, c.off, c.n))
		end := min(c.off+c.n, int64(len(data)))
		if !bytes.Equal(got, data[c.off:end]) {
			t.Errorf("range %d+%d: %d bytes, not bytes %d..%d", c.off, c.n, len(got), c.off, end)
		}
	}
	if _, err := rg.OpenRange(ctx, "cam/range.mp4", res.VersionID, 70_000, 10); !errors.Is(err, objstore.ErrInvalidRequest) {
		t.Errorf("range past the end: %v, want ErrInvalidRequest", err)
	}
	if _, err := rg.OpenRange(ctx, "cam/none.mp4", "", 0, 10); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("range of a missing key: %v, want ErrNotFound", err)
	}
}

// testMultipart: Put of an object above the threshold goes in parts; the
// composite checksum (or, without checksums, a read-back) proves it, and
// the lock and tags are there unless the server drops them — in which case
// a Retainer and Tagger can put them back on the version, which is what the
// uploader does.
func testMultipart(t *testing.T, q Quirks, s objstore.Store) {
	ctx := ctxFor(t)
	data := RandBytes(15, MultipartSize)
	req := Request("cam/big.mp4", data)
	res := mustPut(t, s, req)
	if res.Parts != 2 {
		t.Fatalf("put of %d bytes: %d parts, want 2 (threshold too high?)", len(data), res.Parts)
	}
	want, err := objstore.CompositeChecksum(ctx, bytes.NewReader(data), req.Size, objstore.PartSize(req.Size))
	if err != nil {
		t.Fatal(err)
	}
	checkChecksum(t, q, "multipart put result", res.ChecksumSHA256, want)
	if q.MultipartNoETag != (res.ETag == "") {
		t.Errorf("multipart put ETag %q; quirks say none: %v", res.ETag, q.MultipartNoETag)
	}
	info := mustStat(t, s, req.Key, res.VersionID)
	checkChecksum(t, q, "multipart stat", info.ChecksumSHA256, want)
	if info.ETag == "" {
		t.Error("multipart stat: no ETag")
	}
	locked := info.LockMode == req.LockMode && info.RetainUntil.Equal(req.RetainUntil) && info.Tags["camera"] == "BWC-0001"
	if locked == q.MultipartDropsLock {
		t.Errorf("multipart object: lock %q until %v, tags %v; quirks say the lock and tags are dropped: %v",
			info.LockMode, info.RetainUntil, info.Tags, q.MultipartDropsLock)
	}
	local := bytes.NewReader(data)
	wantMethod := objstore.MethodCompositeChecksum
	if q.NoChecksums {
		wantMethod = objstore.MethodReadBack
	}
	if method, err := objstore.Verify(ctx, s, req.Key, res.VersionID, req.Size, req.SHA256, local); err != nil || method != wantMethod {
		t.Errorf("Verify: %s %v, want %s", method, err, wantMethod)
	}
	if !locked {
		r, rok := s.(objstore.Retainer)
		tg, tok := s.(objstore.Tagger)
		if !rok || !tok {
			t.Fatal("the store drops the lock of multipart objects and cannot put it back (no Retainer/Tagger)")
		}
		if err := r.PutRetention(ctx, req.Key, res.VersionID, req.LockMode, req.RetainUntil); err != nil {
			t.Fatalf("re-apply retention: %v", err)
		}
		if err := tg.PutTags(ctx, req.Key, res.VersionID, req.Tags); err != nil {
			t.Fatalf("re-apply tags: %v", err)
		}
		info = mustStat(t, s, req.Key, res.VersionID)
		if info.LockMode != req.LockMode || !info.RetainUntil.Equal(req.RetainUntil) || info.Tags["camera"] != "BWC-0001" {
			t.Errorf("after re-applying: lock %q until %v, tags %v", info.LockMode, info.RetainUntil, info.Tags)
		}
	}
	again := mustPut(t, s, req)
	if !again.Reused || again.VersionID != res.VersionID {
		t.Errorf("re-put of the multipart object: %+v, want version %s reused", again, res.VersionID)
	}
}

// testResume: a multipart upload outlives its client. After part 1 was
// sent, ListParts (as a new process would call it) shows it with its size
// and ETag — and its SHA-256 when the server reports checksums —, a part
// whose bytes do not match its SHA-256 is refused, and the upload completes
// from the listed part plus the rest into a version holding the content.
func testResume(t *testing.T, q Quirks, s objstore.Store) {
	ctx := ctxFor(t)
	mp, ok := s.(objstore.Multipart)
	if !ok {
		t.Skip("store has no resumable multipart uploads (objstore.Multipart)")
	}
	data := RandBytes(16, MultipartSize)
	req := Request("cam/resume.mp4", data)
	ps := objstore.PartSize(req.Size)
	_, sums, err := objstore.HashParts(ctx, bytes.NewReader(data), req.Size, ps)
	if err != nil || len(sums) != 2 {
		t.Fatalf("hash parts: %d %v", len(sums), err)
	}
	id, err := mp.CreateMultipart(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mp.AbortMultipart(context.Background(), req.Key, id) })
	sent, err := mp.UploadPart(ctx, req.Key, id, 1, req.Body, 0, ps, sums[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mp.UploadPart(ctx, req.Key, id, 2, req.Body, ps, req.Size-ps, sums[0]); !errors.Is(err, objstore.ErrChecksumMismatch) {
		t.Errorf("part 2 sent with part 1's sha256: %v, want ErrChecksumMismatch", err)
	}
	ups, err := mp.ListMultipart(ctx, "cam/")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, u := range ups {
		found = found || (u.UploadID == id && u.Key == req.Key)
	}
	if !found {
		t.Errorf("ListMultipart: %+v does not hold upload %s of %s", ups, id, req.Key)
	}
	parts, err := mp.ListParts(ctx, req.Key, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || parts[0].Number != 1 || parts[0].Size != ps || parts[0].ETag == "" || parts[0].ETag != sent.ETag {
		t.Fatalf("ListParts after part 1: %+v, want part 1 of %d bytes with ETag %s", parts, ps, sent.ETag)
	}
	checkChecksum(t, q, "ListParts", parts[0].ChecksumSHA256, sums[0].Base64())
	p2, err := mp.UploadPart(ctx, req.Key, id, 2, req.Body, ps, req.Size-ps, sums[1])
	if err != nil {
		t.Fatal(err)
	}
	res, err := mp.CompleteMultipart(ctx, req.Key, id, []objstore.Part{parts[0], p2})
	if err != nil {
		t.Fatal(err)
	}
	if method, err := objstore.Verify(ctx, s, req.Key, res.VersionID, req.Size, req.SHA256, nil); err != nil {
		t.Errorf("Verify of the resumed upload (%s): %v", method, err)
	}
	if _, err := mp.ListParts(ctx, req.Key, id); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("ListParts of a completed upload: %v, want ErrNotFound", err)
	}
	got, ok, err := mp.Existing(ctx, req)
	if err != nil || !ok || got.VersionID != res.VersionID {
		t.Errorf("Existing after Complete: %+v %v %v, want version %s", got, ok, err, res.VersionID)
	}
}
