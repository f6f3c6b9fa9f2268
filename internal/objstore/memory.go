package objstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evidenced/evidenced/internal/digest"
)

// Memory is an in-memory Store for unit tests of the packages above this
// boundary. It keeps versions, checks checksums as S3 does (FULL_OBJECT for
// a single put, COMPOSITE with PartSize parts from MultipartThreshold on),
// honours the Reused contract and records the lock fields. Hooks let a test
// inject failures: Fail, Corrupt, SetHook. Safe for concurrent use.
type Memory struct {
	// MultipartThreshold is the size from which Put behaves as a multipart
	// upload (composite checksum, Parts > 0); 0 means never.
	MultipartThreshold int64
	// NoChecksums makes the fake behave like a store that ignores
	// x-amz-checksum-* (Ceph RGW): nothing is checked, nothing reported.
	NoChecksums bool

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

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory store (the zero value works too).
func NewMemory() *Memory { return &Memory{objects: map[string][]*memVersion{}} }

// Fail makes every following call return err (wrapped with the operation
// and key) until Fail(nil).
func (m *Memory) Fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

// SetHook installs fn, called with the operation and key before every call
// ("put", "stat", "open") and once more as "put-stored" after Put has stored
// a new version but before it returns. A non-nil error is returned from the
// call; from "put-stored" it simulates a response lost after the write (the
// version exists, the caller sees an error), the case Reused exists for.
func (m *Memory) SetHook(fn func(op, key string) error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hook = fn
}

// Corrupt flips one byte of the newest version of key, as a store that
// silently kept something other than what it was sent would: its reported
// checksum then describes the bytes it holds, while evidenced's sha256
// metadata still names the original. It reports whether key existed.
func (m *Memory) Corrupt(key string) bool {
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
func (m *Memory) Versions(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.objects[key])
}

// CountVersions counts versions of all keys starting with prefix.
func (m *Memory) CountVersions(_ context.Context, prefix string) (int, error) {
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
func (m *Memory) Puts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.puts
}

// SetLegalHold sets the legal hold flag of a version ("" = latest).
func (m *Memory) SetLegalHold(key, versionID string, on bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.versionLocked(key, versionID)
	if err != nil {
		return err
	}
	v.hold = on
	return nil
}

func (m *Memory) check(op, key string) error {
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

// Put implements Store.
func (m *Memory) Put(ctx context.Context, req PutRequest) (PutResult, error) {
	if err := m.check("put", req.Key); err != nil {
		return PutResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return PutResult{}, fmt.Errorf("put %s: %w", req.Key, err)
	}
	if req.Key == "" || req.Size < 0 || req.Body == nil {
		return PutResult{}, fmt.Errorf("put %q: key, size and body are required: %w", req.Key, ErrInvalidRequest)
	}
	switch req.LockMode {
	case "", LockGovernance, LockCompliance:
	default:
		return PutResult{}, fmt.Errorf("put %s: lock mode %q: %w", req.Key, req.LockMode, ErrInvalidRequest)
	}
	if req.LockMode != "" && req.RetainUntil.IsZero() {
		return PutResult{}, fmt.Errorf("put %s: lock mode without retain-until: %w", req.Key, ErrInvalidRequest)
	}

	m.mu.Lock()
	if vs := m.objects[req.Key]; len(vs) > 0 {
		v := vs[len(vs)-1]
		if v.meta["sha256"] == req.SHA256.Hex() && int64(len(v.data)) == req.Size {
			res := PutResult{VersionID: v.id, ETag: etag(v), ChecksumSHA256: v.checksum, Parts: v.parts, Reused: true}
			m.mu.Unlock()
			return res, nil
		}
	}
	m.mu.Unlock()

	data := make([]byte, req.Size)
	if n, err := req.Body.ReadAt(data, 0); int64(n) != req.Size {
		return PutResult{}, fmt.Errorf("put %s: read body: %d of %d bytes: %w", req.Key, n, req.Size, err)
	}
	multipart := m.MultipartThreshold > 0 && req.Size >= m.MultipartThreshold
	if !m.NoChecksums {
		// S3 checks each part's SHA-256 against what the client computed
		// from its own copy; for a whole object that is req.SHA256.
		if digest.Bytes(data) != req.SHA256 {
			return PutResult{}, fmt.Errorf("put %s: body does not match sha256 %s: %w", req.Key, req.SHA256.Hex(), ErrChecksumMismatch)
		}
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
		v.parts = PartCount(req.Size, PartSize(req.Size))
	}
	if multipart {
		v.ctype = ChecksumComposite
	} else if !m.NoChecksums {
		v.ctype = ChecksumFullObject
	}
	if m.NoChecksums {
		v.ctype = ""
	}
	m.objects[req.Key] = append(m.objects[req.Key], v)
	m.puts++
	res := PutResult{VersionID: v.id, ETag: etag(v), ChecksumSHA256: v.checksum, Parts: v.parts}
	hook := m.hook
	m.mu.Unlock()
	if hook != nil {
		if err := hook("put-stored", req.Key); err != nil {
			return PutResult{}, fmt.Errorf("put %s: %w", req.Key, err)
		}
	}
	return res, nil
}

func (m *Memory) checksumLocked(data []byte, multipart bool) (string, int) {
	if !multipart {
		return digest.Bytes(data).Base64(), 0
	}
	sums, _ := PartSums(context.Background(), bytes.NewReader(data), int64(len(data)), PartSize(int64(len(data))))
	return Composite(sums), len(sums)
}

func etag(v *memVersion) string { return `"` + v.id + `"` }

func (m *Memory) versionLocked(key, versionID string) (*memVersion, error) {
	vs := m.objects[key]
	if len(vs) == 0 {
		return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	if versionID == "" {
		return vs[len(vs)-1], nil
	}
	for _, v := range vs {
		if v.id == versionID {
			return v, nil
		}
	}
	return nil, fmt.Errorf("%s version %s: %w", key, versionID, ErrNotFound)
}

// Stat implements Store.
func (m *Memory) Stat(ctx context.Context, key, versionID string) (ObjectInfo, error) {
	if err := m.check("stat", key); err != nil {
		return ObjectInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.versionLocked(key, versionID)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %w", err)
	}
	return ObjectInfo{
		Key: key, VersionID: v.id, Size: int64(len(v.data)),
		ChecksumSHA256: v.checksum, ChecksumType: v.ctype,
		SHA256: v.meta["sha256"], Metadata: maps.Clone(v.meta),
		LockMode: v.mode, RetainUntil: v.until, LegalHold: v.hold, Tags: maps.Clone(v.tags),
	}, nil
}

// Open implements Store.
func (m *Memory) Open(ctx context.Context, key, versionID string) (io.ReadCloser, error) {
	if err := m.check("open", key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.versionLocked(key, versionID)
	if err != nil {
		return nil, fmt.Errorf("open %w", err)
	}
	return io.NopCloser(bytes.NewReader(v.data)), nil
}
