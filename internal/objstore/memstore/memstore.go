// Package memstore is an in-memory objstore.Store for unit tests of the
// packages above the store boundary. It is a stand-in for the real servers
// the store contract is proven on (internal/objstore/storetest runs the same
// suite against memstore, VersityGW and Ceph RGW), so it behaves the way they
// were found to behave, including where they differ: NoChecksums and
// MultipartDropsLock reproduce what Ceph RGW 16.2 does.
//
// Import it only from tests.
package memstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
)

// Store is an in-memory objstore.Store. It keeps versions, checks the
// SHA-256 of every put as S3 does, reports checksums as S3 does
// (FULL_OBJECT for a single put, COMPOSITE with objstore.PartSize parts from
// MultipartThreshold on), honours the Reused contract, records the lock
// fields and tags and lists versions. Hooks let a test inject failures:
// Fail, Corrupt, SetHook. Safe for concurrent use; the zero value works.
type Store struct {
	// MultipartThreshold is the size from which Put behaves as a multipart
	// upload (composite checksum, Parts > 0); 0 means never.
	MultipartThreshold int64
	// NoChecksums makes the store behave like Ceph RGW 16.2, which ignores
	// x-amz-checksum-*: no checksum is reported (Put, Stat). A body that does
	// not hash to the SHA-256 it was sent with is still refused, as RGW
	// refuses it: s3store signs every body with its SHA-256 as the SigV4
	// payload hash (x-amz-content-sha256), which RGW does check.
	NoChecksums bool
	// MultipartDropsLock makes multipart objects (from MultipartThreshold
	// on) come out without the Object Lock and tags they were uploaded
	// with, and with an empty ETag in the Put result, as Ceph RGW 16.2 does
	// with the lock and tagging headers of CreateMultipartUpload and the
	// ETag of CompleteMultipartUpload.
	MultipartDropsLock bool
	// PageKeys, when > 0, is the most keys a ListVersionsPage page holds
	// whatever the caller asks: a test makes a small listing span pages.
	PageKeys int

	mu      sync.Mutex
	objects map[string][]*memVersion // key → versions, oldest first
	seq     int
	fail    error
	hook    func(op, key string) error
	puts    int
}

type memVersion struct {
	id       string
	data     []byte
	checksum string
	ctype    string
	parts    int
	meta     map[string]string
	tags     map[string]string
	mode     string
	until    time.Time
	hold     bool

	contentType string
}

var (
	_ objstore.Store    = (*Store)(nil)
	_ objstore.Retainer = (*Store)(nil)
	_ objstore.Tagger   = (*Store)(nil)
	_ objstore.Lister   = (*Store)(nil)
)

// New returns an empty Store (the zero value works too).
func New() *Store { return &Store{objects: map[string][]*memVersion{}} }

// Fail makes every following call return err (wrapped with the operation
// and key) until Fail(nil).
func (m *Store) Fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

// SetHook installs fn, called with the operation and key before every call
// ("put", "stat", "open") and once more as "put-stored" after Put has stored
// a new version but before it returns. A non-nil error is returned from the
// call; from "put-stored" it simulates a response lost after the write (the
// version exists, the caller sees an error), the case Reused exists for.
func (m *Store) SetHook(fn func(op, key string) error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hook = fn
}

// Corrupt flips one byte of the newest version of key, as a store that
// silently kept something other than what it was sent would: its reported
// checksum then describes the bytes it holds, while evidenced's sha256
// metadata still names the original. It reports whether key existed.
func (m *Store) Corrupt(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	vs := m.objects[key]
	if len(vs) == 0 {
		return false
	}
	v := vs[len(vs)-1]
	if len(v.data) == 0 {
		v.data = []byte{0}
	} else {
		v.data = bytes.Clone(v.data)
		v.data[len(v.data)/2] ^= 0xff
	}
	if v.checksum != "" {
		v.checksum, v.parts = m.checksumLocked(v.data, v.parts > 0)
	}
	return true
}

// Versions returns how many versions of key exist.
func (m *Store) Versions(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.objects[key])
}

// CountVersions counts versions of all keys starting with prefix.
func (m *Store) CountVersions(_ context.Context, prefix string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, vs := range m.objects {
		if strings.HasPrefix(k, prefix) {
			n += len(vs)
		}
	}
	return n, nil
}

// Puts returns how many versions Put has written (reuses not counted).
func (m *Store) Puts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.puts
}

// SetLegalHold sets the legal hold flag of a version ("" = latest).
func (m *Store) SetLegalHold(key, versionID string, on bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.versionLocked(key, versionID)
	if err != nil {
		return err
	}
	v.hold = on
	return nil
}

func (m *Store) check(op, key string) error {
	m.mu.Lock()
	fail, hook := m.fail, m.hook
	m.mu.Unlock()
	if fail != nil {
		return fmt.Errorf("%s %s: %w", op, key, fail)
	}
	if hook != nil {
		if err := hook(op, key); err != nil {
			return fmt.Errorf("%s %s: %w", op, key, err)
		}
	}
	return nil
}

// Put implements objstore.Store.
func (m *Store) Put(ctx context.Context, req objstore.PutRequest) (objstore.PutResult, error) {
	if err := m.check("put", req.Key); err != nil {
		return objstore.PutResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return objstore.PutResult{}, fmt.Errorf("put %s: %w", req.Key, err)
	}
	if req.Key == "" || req.Size < 0 || req.Body == nil {
		return objstore.PutResult{}, fmt.Errorf("put %q: key, size and body are required: %w", req.Key, objstore.ErrInvalidRequest)
	}
	switch req.LockMode {
	case "", objstore.LockGovernance, objstore.LockCompliance:
	default:
		return objstore.PutResult{}, fmt.Errorf("put %s: lock mode %q: %w", req.Key, req.LockMode, objstore.ErrInvalidRequest)
	}
	if req.LockMode != "" && req.RetainUntil.IsZero() {
		return objstore.PutResult{}, fmt.Errorf("put %s: lock mode without retain-until: %w", req.Key, objstore.ErrInvalidRequest)
	}

	m.mu.Lock()
	if vs := m.objects[req.Key]; len(vs) > 0 {
		v := vs[len(vs)-1]
		if v.meta["sha256"] == req.SHA256.Hex() && int64(len(v.data)) == req.Size {
			res := objstore.PutResult{VersionID: v.id, ETag: etag(v), ChecksumSHA256: v.checksum, Parts: v.parts, Reused: true}
			m.mu.Unlock()
			return res, nil
		}
	}
	m.mu.Unlock()

	data := make([]byte, req.Size)
	if n, err := req.Body.ReadAt(data, 0); int64(n) != req.Size {
		return objstore.PutResult{}, fmt.Errorf("put %s: read body: %d of %d bytes: %w", req.Key, n, req.Size, err)
	}
	multipart := m.MultipartThreshold > 0 && req.Size >= m.MultipartThreshold
	// S3 checks each part's SHA-256 against what the client computed from
	// its own copy (x-amz-checksum-sha256, or on RGW the signed payload
	// hash); for a whole object that is req.SHA256.
	if digest.Bytes(data) != req.SHA256 {
		return objstore.PutResult{}, fmt.Errorf("put %s: body does not match sha256 %s: %w", req.Key, req.SHA256.Hex(), objstore.ErrChecksumMismatch)
	}

	m.mu.Lock()
	if m.objects == nil {
		m.objects = map[string][]*memVersion{}
	}
	m.seq++
	v := &memVersion{
		id: "v" + strconv.Itoa(m.seq), data: data,
		meta: maps.Clone(req.Metadata), tags: maps.Clone(req.Tags),
		mode: req.LockMode, until: req.RetainUntil.UTC(), contentType: req.ContentType,
	}
	if v.meta == nil {
		v.meta = map[string]string{}
	}
	if v.tags == nil {
		v.tags = map[string]string{}
	}
	if !m.NoChecksums {
		v.checksum, v.parts = m.checksumLocked(data, multipart)
	} else if multipart {
		v.parts = objstore.PartCount(req.Size, objstore.PartSize(req.Size))
	}
	if multipart {
		v.ctype = objstore.ChecksumComposite
	} else if !m.NoChecksums {
		v.ctype = objstore.ChecksumFullObject
	}
	if m.NoChecksums {
		v.ctype = ""
	}
	dropped := multipart && m.MultipartDropsLock
	if dropped {
		v.mode, v.until, v.tags = "", time.Time{}, map[string]string{}
	}
	m.objects[req.Key] = append(m.objects[req.Key], v)
	m.puts++
	res := objstore.PutResult{VersionID: v.id, ETag: etag(v), ChecksumSHA256: v.checksum, Parts: v.parts}
	if dropped {
		res.ETag = ""
	}
	hook := m.hook
	m.mu.Unlock()
	if hook != nil {
		if err := hook("put-stored", req.Key); err != nil {
			return objstore.PutResult{}, fmt.Errorf("put %s: %w", req.Key, err)
		}
	}
	return res, nil
}

func (m *Store) checksumLocked(data []byte, multipart bool) (string, int) {
	if !multipart {
		return digest.Bytes(data).Base64(), 0
	}
	sums, _ := objstore.PartSums(context.Background(), bytes.NewReader(data), int64(len(data)), objstore.PartSize(int64(len(data))))
	return objstore.Composite(sums), len(sums)
}

func etag(v *memVersion) string { return `"` + v.id + `"` }

func (m *Store) versionLocked(key, versionID string) (*memVersion, error) {
	vs := m.objects[key]
	if len(vs) == 0 {
		return nil, fmt.Errorf("%s: %w", key, objstore.ErrNotFound)
	}
	if versionID == "" {
		return vs[len(vs)-1], nil
	}
	for _, v := range vs {
		if v.id == versionID {
			return v, nil
		}
	}
	return nil, fmt.Errorf("%s version %s: %w", key, versionID, objstore.ErrNotFound)
}

// Stat implements objstore.Store.
func (m *Store) Stat(ctx context.Context, key, versionID string) (objstore.ObjectInfo, error) {
	if err := m.check("stat", key); err != nil {
		return objstore.ObjectInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.versionLocked(key, versionID)
	if err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("stat %w", err)
	}
	return objstore.ObjectInfo{
		Key: key, VersionID: v.id, Size: int64(len(v.data)), ETag: etag(v),
		ChecksumSHA256: v.checksum, ChecksumType: v.ctype,
		SHA256: v.meta["sha256"], Metadata: maps.Clone(v.meta),
		LockMode: v.mode, RetainUntil: v.until, LegalHold: v.hold, Tags: maps.Clone(v.tags),
	}, nil
}

// Open implements objstore.Store.
func (m *Store) Open(ctx context.Context, key, versionID string) (io.ReadCloser, error) {
	return m.read(key, versionID, 0, -1)
}

// OpenRange implements objstore.Ranger; a hook sees it as "open".
func (m *Store) OpenRange(ctx context.Context, key, versionID string, off, n int64) (io.ReadCloser, error) {
	if off < 0 || n <= 0 {
		return nil, fmt.Errorf("open range %s: offset %d, length %d: %w", key, off, n, objstore.ErrInvalidRequest)
	}
	return m.read(key, versionID, off, n)
}

// read returns n bytes of a version from off; n < 0 is the whole version.
func (m *Store) read(key, versionID string, off, n int64) (io.ReadCloser, error) {
	if err := m.check("open", key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.versionLocked(key, versionID)
	if err != nil {
		return nil, fmt.Errorf("open %w", err)
	}
	if n < 0 {
		return io.NopCloser(bytes.NewReader(v.data)), nil
	}
	if off >= int64(len(v.data)) {
		return nil, fmt.Errorf("open range %s: offset %d of %d bytes: %w", key, off, len(v.data), objstore.ErrInvalidRequest)
	}
	end := min(off+n, int64(len(v.data)))
	return io.NopCloser(bytes.NewReader(v.data[off:end])), nil
}

// ListDirectories implements objstore.Directories; a hook sees it as
// "list" with the prefix as key.
func (m *Store) ListDirectories(ctx context.Context, prefix string) ([]string, error) {
	if err := m.check("list", prefix); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list directories under %s: %w", prefix, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for k := range m.objects {
		rest, ok := strings.CutPrefix(k, prefix)
		seg, _, dir := strings.Cut(rest, "/")
		if ok && dir && seg != "" && !seen[seg] {
			seen[seg] = true
			out = append(out, seg)
		}
	}
	sort.Strings(out)
	return out, nil
}

var _ objstore.PageLister = (*Store)(nil)

// ListVersionsPage implements objstore.PageLister; a hook sees each page
// as "list" with the prefix as key.
func (m *Store) ListVersionsPage(ctx context.Context, prefix, after string, max int) ([]objstore.Version, string, error) {
	if err := m.check("list", prefix); err != nil {
		return nil, "", err
	}
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("list versions under %s: %w", prefix, err)
	}
	if m.PageKeys > 0 && (max <= 0 || m.PageKeys < max) {
		max = m.PageKeys
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var keys []string
	for k := range m.objects {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	next := ""
	if max > 0 && len(keys) > max {
		keys, next = keys[:max], keys[max-1]
	}
	var out []objstore.Version
	for _, k := range keys {
		vs := m.objects[k]
		for i, v := range vs {
			out = append(out, objstore.Version{Key: k, VersionID: v.id, Size: int64(len(v.data)), IsLatest: i == len(vs)-1})
		}
	}
	return out, next, nil
}

// ListVersions implements objstore.Lister; a hook sees it as "list" with
// the prefix as key.
func (m *Store) ListVersions(ctx context.Context, prefix string) ([]objstore.Version, error) {
	if err := m.check("list", prefix); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list versions under %s: %w", prefix, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []objstore.Version
	for k, vs := range m.objects {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		for i, v := range vs {
			out = append(out, objstore.Version{Key: k, VersionID: v.id, Size: int64(len(v.data)), IsLatest: i == len(vs)-1})
		}
	}
	return out, nil
}
