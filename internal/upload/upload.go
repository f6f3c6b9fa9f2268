// Package upload moves vaulted items to the object store and proves they
// arrived: UPLOADED (key, version id, the checksum the store returned), then
// VERIFIED (the stored version's SHA-256, size, lock mode and retain-until
// checked). The ledger is the queue: an item in state "vaulted" needs an upload,
// one in state "uploaded" needs a verification; nothing is held only in memory,
// so a restart resumes exactly where the last run stopped.
//
// Invariants:
//   - An item becomes "verified" only after objstore.Verify matched its SHA-256
//     against what the store holds (the store's own checksum, a recomputed
//     composite, or a full read-back where the store reports none) and the
//     retention read back is at least what its class requires. The composite
//     is recomputed from the part sums of the upload's own hashing pass when
//     this process still holds them (objstore.VerifyKnown), else from the
//     vault copy.
//   - A retry never creates a second object version: objstore.Store.Put reuses a
//     version that already holds the same SHA-256 under the same key.
//   - Permanent errors (access denied, no such bucket, a vault copy that no
//     longer hashes to the recorded SHA-256, a verified-for version that
//     vanished from the store) are recorded once per run as UPLOAD_FAILED /
//     VERIFY_FAILED with the item's last_error set, and not retried until the
//     next start; transient ones back off exponentially with jitter. A body
//     the store refuses as not matching its checksum is re-read from the
//     vault first: intact means damaged in transit (transient).
//   - A multipart upload is named in the ledger (UPLOAD_STARTED) before its
//     first part is sent and resumed after a crash from the parts the store
//     holds with the right SHA-256, or with the size and ETag the ledger
//     recorded when the store reports no checksum (see resume.go); uploads
//     the ledger does not resume are aborted at start (Sweep).
//   - After a multipart upload the new version is read back and any Object
//     Lock retention or tag the store dropped is applied to it and recorded
//     (settle.go): Ceph RGW drops them.
//   - The most urgent items go first (a retention class other than the
//     default), and all uploads share one bandwidth Limiter.
package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
)

// Ledger is what the uploader needs of the custody ledger (see custody.Ledger
// for the durability contract of Append).
type Ledger interface {
	Append(ctx context.Context, ev custody.Event, item *custody.Item) (custody.Event, error)
	Item(ctx context.Context, id string) (custody.Item, error)
	Items(ctx context.Context, f custody.Filter, fn func(custody.Item) error) error
	// Custody is the item's chain, by seq: where a multipart upload to
	// resume is found.
	Custody(ctx context.Context, id string) ([]custody.Event, error)
}

// Vault opens the local copy of an item for reading.
type Vault interface {
	Open(id string) (*os.File, error)
}

var _ Ledger = (*custody.Ledger)(nil)

// ErrPermanent wraps failures that a retry cannot fix.
var ErrPermanent = errors.New("permanent upload failure")

// Uploader uploads and verifies items. Safe for concurrent use: one item is
// never worked on by two goroutines at once.
type Uploader struct {
	ledger Ledger
	vault  Vault
	store  objstore.Store
	cfg    *config.Config
	log    *slog.Logger
	actor  string
	now    func() time.Time

	wake chan struct{}

	mu       sync.Mutex
	locks    map[string]*sync.Mutex
	retryAt  map[string]time.Time // transient failure: not before
	attempts map[string]int
	failed   map[string]error // permanent failure in this run
	// transient counts the failures retried with backoff, by step, since
	// the Uploader was made: they leave no ledger record, so this is the
	// only place the monitoring can see a store that keeps failing.
	transient map[string]uint64
	hashes    map[string]partHashes
	stats     map[string]ResumeStats
}

// New returns an Uploader. log may be nil.
func New(cfg *config.Config, l Ledger, v Vault, s objstore.Store, actor string, log *slog.Logger) *Uploader {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Uploader{
		ledger: l, vault: v, store: s, cfg: cfg, log: log, actor: actor, now: time.Now,
		wake:  make(chan struct{}, 1),
		locks: map[string]*sync.Mutex{}, retryAt: map[string]time.Time{},
		attempts: map[string]int{}, failed: map[string]error{}, transient: map[string]uint64{},
		hashes: map[string]partHashes{}, stats: map[string]ResumeStats{},
	}
}

// Wake tells Run that new work may be in the ledger.
func (u *Uploader) Wake() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

func (u *Uploader) itemLock(id string) *sync.Mutex {
	u.mu.Lock()
	defer u.mu.Unlock()
	m, ok := u.locks[id]
	if !ok {
		m = &sync.Mutex{}
		u.locks[id] = m
	}
	return m
}

// Run works the queue until stop is done: every item not yet verified is
// uploaded and verified, with up to upload.concurrency items at a time, the
// most urgent first (see pending). At start it sweeps multipart uploads
// that will never be completed (Sweep). Uploads in flight when stop ends
// run on under work (the drain) and Run waits for them.
func (u *Uploader) Run(stop, work context.Context) error {
	ctx := stop
	if n, err := u.Sweep(ctx); err != nil {
		u.log.Warn("sweep of abandoned multipart uploads failed; trying again at the next start", "err", err)
	} else if n > 0 {
		u.log.Info("abandoned multipart uploads aborted", "count", n)
	}
	conc := max(u.cfg.Upload.Concurrency, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	inflight := map[string]bool{}
	var inflightMu sync.Mutex
	for {
		next := time.Duration(0)
		ids, err := u.pending(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			u.log.Error("read upload queue", "err", err)
			next = u.cfg.Upload.RetryMin.Duration
		}
		now := u.now()
		// Slots are taken in queue order and only while free: when one
		// frees, the worker wakes this loop, which reads the queue again,
		// so a recording classified urgent meanwhile goes next.
		for _, id := range ids {
			u.mu.Lock()
			_, perm := u.failed[id]
			at := u.retryAt[id]
			u.mu.Unlock()
			if perm {
				continue
			}
			if at.After(now) {
				if d := at.Sub(now); next == 0 || d < next {
					next = d
				}
				continue
			}
			inflightMu.Lock()
			busy, full := inflight[id], len(inflight) >= conc
			if !busy && !full {
				inflight[id] = true
			}
			inflightMu.Unlock()
			if full {
				break
			}
			if busy {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { inflightMu.Lock(); delete(inflight, id); inflightMu.Unlock(); u.Wake() }()
				if err := u.Process(work, id); err != nil && work.Err() == nil {
					u.log.Warn("upload not done", "item", id, "err", err)
				}
			}()
		}
		var timer <-chan time.Time
		if next > 0 {
			t := time.NewTimer(next)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-u.wake:
		case <-timer:
		}
	}
}

// pending is the queue, most urgent first: items whose retention class is
// not the default (an investigator or policy raised it: incident,
// complaint) before the rest, then by ingest time, oldest first.
func (u *Uploader) pending(ctx context.Context) ([]string, error) {
	type entry struct {
		id     string
		urgent bool
		at     time.Time
	}
	var q []entry
	err := u.ledger.Items(ctx, custody.Filter{States: []custody.State{custody.StateVaulted, custody.StateUploaded}}, func(it custody.Item) error {
		q = append(q, entry{it.ID, u.Urgent(it), it.IngestedAt})
		return nil
	})
	sort.SliceStable(q, func(i, j int) bool {
		if q[i].urgent != q[j].urgent {
			return q[i].urgent
		}
		return q[i].at.Before(q[j].at)
	})
	ids := make([]string, len(q))
	for i, e := range q {
		ids[i] = e.id
	}
	return ids, err
}

// Urgent reports whether it goes to the front of the upload queue: its
// retention class is not the default one.
func (u *Uploader) Urgent(it custody.Item) bool {
	return it.RetentionClass != "" && it.RetentionClass != u.cfg.Retention.DefaultClass
}

// Sync uploads and verifies the given items now, retrying transient failures
// with backoff up to attempts times each. It returns an error naming every
// item that is not verified at the end. Used by the one-shot `ingest`.
func (u *Uploader) Sync(ctx context.Context, ids []string, attempts int) error {
	var errs []error
	for _, id := range ids {
		var err error
		for try := 1; try <= attempts; try++ {
			if err = u.Process(ctx, id); err == nil || errors.Is(err, ErrPermanent) || ctx.Err() != nil {
				break
			}
			if try < attempts {
				u.log.Warn("upload retry", "item", id, "attempt", try, "err", err)
				if serr := sleep(ctx, u.backoff(try)); serr != nil {
					err = serr
					break
				}
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("item %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// Process takes one item one or two steps forward: vaulted → uploaded →
// verified. It is idempotent and returns nil once the item is verified.
func (u *Uploader) Process(ctx context.Context, id string) error {
	lock := u.itemLock(id)
	lock.Lock()
	defer lock.Unlock()

	it, err := u.ledger.Item(ctx, id)
	if err != nil {
		return fmt.Errorf("load item %s: %w", id, err)
	}
	if it.State == custody.StateVaulted {
		if it, err = u.put(ctx, it); err != nil {
			return u.fail(ctx, it, "upload", err)
		}
	}
	if it.State == custody.StateUploaded {
		if it, err = u.verify(ctx, it); err != nil {
			return u.fail(ctx, it, "verify", err)
		}
	}
	u.forgetHashes(id)
	u.mu.Lock()
	delete(u.retryAt, id)
	delete(u.attempts, id)
	u.mu.Unlock()
	return nil
}

// fail classifies err: a permanent one is recorded in the ledger once per
// run (UPLOAD_FAILED, or VERIFY_FAILED for the verify step, with the item's
// last_error set so status shows it after a restart) and logged once; the
// item is not tried again until the next start. A transient one schedules
// a retry with backoff. At verify, a recorded version the store no longer
// has (ErrNotFound) is permanent: it is an incident to look into, not
// something to paper over with a new upload.
func (u *Uploader) fail(ctx context.Context, it custody.Item, step string, err error) error {
	vanished := step == "verify" && errors.Is(err, objstore.ErrNotFound)
	if objstore.IsPermanent(err) || errors.Is(err, ErrPermanent) || vanished {
		u.forgetHashes(it.ID) // not tried again in this run
		u.mu.Lock()
		_, seen := u.failed[it.ID]
		u.failed[it.ID] = err
		u.mu.Unlock()
		if !seen {
			u.log.Error("permanent upload failure", "item", it.ID, "step", step, "err", err)
			typ := custody.UploadFailed
			if step == "verify" {
				typ = custody.VerifyFailed
			}
			ev := custody.Event{
				Type: typ, Actor: u.actor, Camera: it.Camera, Item: it.ID, SHA256: it.SHA256,
				Details: map[string]string{"step": step, "reason": err.Error(), "permanent": "true"},
			}
			if vanished {
				ev.Details["vanished"] = "true"
			}
			var item *custody.Item
			if cur, gerr := u.ledger.Item(ctx, it.ID); gerr == nil {
				cur.LastError = truncate(step+": "+err.Error(), 512)
				cur.UploadAttempts++
				item = &cur
			}
			if _, aerr := u.ledger.Append(ctx, ev, item); aerr != nil {
				u.log.Error("record upload failure", "item", it.ID, "err", aerr)
			}
		}
		if errors.Is(err, ErrPermanent) {
			return fmt.Errorf("%s %s: %w", step, it.ID, err)
		}
		return fmt.Errorf("%s %s: %w: %w", step, it.ID, ErrPermanent, err)
	}
	u.mu.Lock()
	u.attempts[it.ID]++
	u.retryAt[it.ID] = u.now().Add(u.backoff(u.attempts[it.ID]))
	if ctx.Err() == nil {
		// An attempt cut short by shutdown is not a store failure.
		u.transient[step]++
	}
	u.mu.Unlock()
	return fmt.Errorf("%s %s: %w", step, it.ID, err)
}

// TransientFailures returns how many attempts failed transiently (and were
// scheduled for a retry) since the Uploader was made, by step ("upload",
// "verify"). Permanent failures are in the ledger instead.
func (u *Uploader) TransientFailures() map[string]uint64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return maps.Clone(u.transient)
}

// Failed returns the items that failed permanently in this run, with why.
func (u *Uploader) Failed() map[string]error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return maps.Clone(u.failed)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// backoff is capped exponential with full jitter in [d/2, d], so that many
// docks recovering from one outage do not retry in lockstep.
func (u *Uploader) backoff(attempt int) time.Duration {
	lo, hi := u.cfg.Upload.RetryMin.Duration, u.cfg.Upload.RetryMax.Duration
	if lo <= 0 {
		lo = time.Second
	}
	if hi < lo {
		hi = lo
	}
	d := lo << min(attempt-1, 30)
	if d > hi || d <= 0 {
		d = hi
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retention returns the lock mode and retain-until date an item's class asks for.
func (u *Uploader) retention(it custody.Item) (config.Class, time.Time, error) {
	class, ok := u.cfg.Class(it.RetentionClass)
	if !ok {
		return class, time.Time{}, fmt.Errorf("item %s: retention class %q is not configured: %w", it.ID, it.RetentionClass, ErrPermanent)
	}
	// Retention runs from ingest, never from the camera's clock, which may be
	// wrong; an item can only ever be kept longer than policy, not shorter.
	return class, it.IngestedAt.UTC().AddDate(0, 0, class.Days).Truncate(time.Second).Add(time.Second), nil
}

func (u *Uploader) put(ctx context.Context, it custody.Item) (custody.Item, error) {
	sum, err := digest.ParseHex(it.SHA256)
	if err != nil {
		return it, fmt.Errorf("item %s: %w: %w", it.ID, ErrPermanent, err)
	}
	class, until, err := u.retention(it)
	if err != nil {
		return it, err
	}
	f, err := u.vault.Open(it.ID)
	if err != nil {
		return it, fmt.Errorf("open vault copy of %s: %w", it.ID, err)
	}
	defer f.Close()
	key := ObjectKey(it)
	req := objstore.PutRequest{
		Key: key, Body: f, Size: it.Size, SHA256: sum,
		Tags: map[string]string{
			"camera": it.Camera, "assigned_to": it.AssignedTo,
			"retention_class": it.RetentionClass, "sha256": it.SHA256,
		},
		Metadata: map[string]string{
			"sha256": it.SHA256, "item-id": it.ID, "camera": it.Camera, "host": it.Host,
			"recorded-at": it.RecordedAt.UTC().Format(time.RFC3339Nano),
			"source-path": url.PathEscape(it.SourcePath),
		},
		ContentType: contentType(key),
		LockMode:    class.Mode, RetainUntil: until,
	}
	var res objstore.PutResult
	uploadID := ""
	multipart := false
	if mp, ok := u.store.(objstore.Multipart); ok && it.Size >= mp.MultipartThreshold() {
		multipart = true
		res, err = u.putMultipart(ctx, mp, it, req)
		if st, ok := u.LastResume(it.ID); ok && !res.Reused {
			uploadID = st.UploadID
		}
	} else {
		res, err = u.store.Put(ctx, req)
		if errors.Is(err, objstore.ErrChecksumMismatch) {
			// The store refused the body: damaged on the way, or the vault
			// copy changed? Only a re-read tells.
			if got, n, rerr := digest.Reader(io.NewSectionReader(f, 0, it.Size)); rerr == nil && n == it.Size && got == sum {
				u.log.Warn("store refused the upload as damaged in transit; the vault copy is intact, retrying", "item", it.ID)
				err = transient(err)
			} else if rerr == nil {
				err = fmt.Errorf("vault copy of %s no longer hashes to the recorded sha256: %w: %w", it.ID, ErrPermanent, err)
			}
		}
	}
	if err != nil {
		return it, fmt.Errorf("put %s: %w", key, err)
	}
	var applied []string
	if multipart || res.Parts > 0 || res.ETag == "" {
		// See settle: a multipart upload's lock and tags are not taken on
		// trust, and an ETag the store did not return is read back.
		var etag string
		if applied, etag, err = u.settle(ctx, req, res.VersionID); err != nil {
			return it, fmt.Errorf("put %s: %w", key, err)
		}
		if res.ETag == "" {
			res.ETag = etag
		}
	}
	it.State = custody.StateUploaded
	it.ObjectKey, it.VersionID, it.RetainUntil = key, res.VersionID, until
	it.LastError = ""
	details := map[string]string{
		"key": key, "version_id": res.VersionID, "etag": res.ETag,
		"checksum_sha256": res.ChecksumSHA256, "parts": strconv.Itoa(res.Parts),
		"reused_existing_version": strconv.FormatBool(res.Reused),
		"lock_mode":               class.Mode, "retain_until": until.Format(time.RFC3339),
		"retention_class": it.RetentionClass,
	}
	if uploadID != "" {
		details["upload_id"] = uploadID
	}
	if len(applied) > 0 {
		details["applied_after_upload"] = strings.Join(applied, ",")
	}
	if _, err := u.ledger.Append(ctx, custody.Event{
		Type: custody.Uploaded, Actor: u.actor, Camera: it.Camera, Item: it.ID, SHA256: it.SHA256,
		Details: details,
	}, &it); err != nil {
		return it, fmt.Errorf("record upload of %s: %w", it.ID, err)
	}
	u.log.Info("uploaded", "item", it.ID, "key", key, "version_id", res.VersionID, "reused", res.Reused)
	return it, nil
}

func (u *Uploader) verify(ctx context.Context, it custody.Item) (custody.Item, error) {
	known := u.knownParts(it)
	if known == nil {
		// Uploaded by an earlier process, or an existing version reused:
		// the sums the VAULTED record vouches for still spare the hash.
		known = u.recordedParts(ctx, it)
	}
	method, info, err := verifyObject(ctx, u.store, u.vault, it, u.cfg, known)
	if err != nil {
		return it, err
	}
	it.State = custody.StateVerified
	it.LastError = ""
	if _, err := u.ledger.Append(ctx, custody.Event{
		Type: custody.Verified, Actor: u.actor, Camera: it.Camera, Item: it.ID, SHA256: it.SHA256,
		Details: map[string]string{
			"key": it.ObjectKey, "version_id": it.VersionID, "method": method,
			"store_checksum_sha256": info.ChecksumSHA256, "size": strconv.FormatInt(info.Size, 10),
			"lock_mode": info.LockMode, "retain_until": info.RetainUntil.UTC().Format(time.RFC3339),
		},
	}, &it); err != nil {
		return it, fmt.Errorf("record verification of %s: %w", it.ID, err)
	}
	u.log.Info("verified", "item", it.ID, "method", method)
	return it, nil
}

// VerifyObject checks the object version recorded for it: content (SHA-256 and
// size), our sha256 metadata, and that Object Lock holds it at least as long
// as its class requires. Used after upload and by `verify --remote`.
func VerifyObject(ctx context.Context, s objstore.Store, v Vault, it custody.Item, cfg *config.Config) (string, objstore.ObjectInfo, error) {
	return verifyObject(ctx, s, v, it, cfg, nil)
}

// verifyObject is VerifyObject with the part sums the uploader still holds
// from hashing the vault copy for the upload (known, nil if none): a
// multipart object's composite checksum is then proven from them without
// reading the vault copy again (see objstore.VerifyKnown for why that is
// sound). Everything else is checked exactly as VerifyObject does.
func verifyObject(ctx context.Context, s objstore.Store, v Vault, it custody.Item, cfg *config.Config, known *objstore.KnownParts) (string, objstore.ObjectInfo, error) {
	sum, err := digest.ParseHex(it.SHA256)
	if err != nil {
		return "", objstore.ObjectInfo{}, fmt.Errorf("item %s: %w", it.ID, err)
	}
	info, err := s.Stat(ctx, it.ObjectKey, it.VersionID)
	if err != nil {
		return "", info, fmt.Errorf("stat %s (version %s): %w", it.ObjectKey, it.VersionID, err)
	}
	if info.Size != it.Size {
		return "", info, fmt.Errorf("object %s (version %s) is %d bytes, recorded %d: %w", it.ObjectKey, it.VersionID, info.Size, it.Size, objstore.ErrChecksumMismatch)
	}
	if info.SHA256 != "" && info.SHA256 != it.SHA256 {
		return "", info, fmt.Errorf("object %s (version %s) metadata sha256 %s, recorded %s: %w", it.ObjectKey, it.VersionID, info.SHA256, it.SHA256, objstore.ErrChecksumMismatch)
	}
	if class, ok := cfg.Class(it.RetentionClass); ok {
		// The class's mode or a stronger one: a custodian at the console
		// may have raised the class (to COMPLIANCE) in the console's own
		// ledger, which this host does not read. A weaker mode, or none, is
		// never accepted.
		if weaker := objstore.CheckExtension(class.Mode, time.Time{}, info.LockMode, info.RetainUntil); weaker != nil {
			return "", info, fmt.Errorf("object %s (version %s) lock mode %q, class %s requires %q or stronger: %w", it.ObjectKey, it.VersionID, info.LockMode, class.Name, class.Mode, ErrPermanent)
		}
		if !it.RetainUntil.IsZero() && info.RetainUntil.Before(it.RetainUntil.Add(-time.Second)) {
			return "", info, fmt.Errorf("object %s (version %s) retained until %s, recorded %s: %w", it.ObjectKey, it.VersionID, info.RetainUntil.UTC().Format(time.RFC3339), it.RetainUntil.UTC().Format(time.RFC3339), ErrPermanent)
		}
	}
	var local *os.File
	if v != nil {
		if f, err := v.Open(it.ID); err == nil {
			local = f
			defer f.Close()
		}
	}
	var ra io.ReaderAt // nil unless the vault copy is at hand
	if local != nil {
		ra = local
	}
	method, err := objstore.VerifyKnown(ctx, s, it.ObjectKey, it.VersionID, it.Size, sum, ra, known)
	if err != nil {
		return method, info, err
	}
	return method, info, nil
}

func contentType(key string) string {
	switch ext := lowerExt(key); ext {
	case ".mp4":
		return "video/mp4"
	case ".mov":
		return "video/quicktime"
	case ".json":
		return "application/json"
	case ".csv":
		return "text/csv"
	case ".xml", ".gpx":
		return "application/xml"
	case ".nmea", ".txt":
		return "text/plain"
	default:
		return "application/octet-stream"
	}
}

func lowerExt(key string) string {
	for i := len(key) - 1; i >= 0 && key[i] != '/'; i-- {
		if key[i] == '.' {
			b := []byte(key[i:])
			for j, c := range b {
				if c >= 'A' && c <= 'Z' {
					b[j] = c + 32
				}
			}
			return string(b)
		}
	}
	return ""
}
