package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
)

// Resumable multipart uploads.
//
// The ledger names every multipart upload before a byte of it is sent
// (UPLOAD_STARTED: upload_id, key, part_size, parts, size), so a crash at
// any point leaves either nothing in the store or an upload the next run
// finds. Completed parts are recorded in batches (UPLOAD_PARTS: one record
// per partsPerRecord parts or checkpointEvery, whichever comes first, and
// at the end of every attempt): a part record is an audit trail, not the
// resume state. The store's ListParts is the truth for what it holds, so a
// part acknowledged but not yet recorded when the process died is still not
// sent again; batching keeps a 60 GB recording (7,000+ parts) to a few
// hundred records instead of one fsynced record per 8 MiB.
//
// Resume (resumeOrStart):
//  1. Existing: the newest version of the key already holds our SHA-256
//     (Complete succeeded but UPLOADED was not recorded) → reuse it, and
//     abort the item's open upload if the ledger has one (see existing).
//  2. The vault copy is hashed in parts; the whole must equal the item's
//     SHA-256 (a damaged vault copy is never uploaded as evidence). For a
//     resumed upload this pass comes first (every part's sum is needed to
//     judge what the store holds; a mismatch aborts the open upload, which
//     Sweep would otherwise keep). For a new one it runs beside the upload:
//     part i is sent as soon as it is hashed, and the whole is checked
//     before CompleteMultipartUpload; a mismatch aborts the upload
//     (UPLOAD_ABORTED) and fails the item for good, so the damaged bytes
//     never become an object version (the store checks each part against
//     the sum it came with, which says nothing about the whole). This is
//     the only SHA-256 pass over the file: the part sums travel with the
//     parts (x-amz-checksum-sha256, and the signed payload hash on a store
//     not seen to check that header; the SDK does not hash them again) and,
//     kept until the item is verified, prove the store's composite checksum
//     without reading the vault copy once more (objstore.VerifyKnown).
//  3. The open upload of the item is the last UPLOAD_STARTED not closed by
//     UPLOAD_ABORTED or UPLOADED. With a different key or part size it is
//     aborted (UPLOAD_ABORTED, superseded).
//  4. ListParts: a part the store holds with the size and SHA-256 of our
//     local part is kept. A store that reports no checksum (Ceph RGW) still
//     refused any part whose bytes did not hash to the SHA-256 it was signed
//     with (the SigV4 payload hash, x-amz-content-sha256, which s3store
//     keeps for parts on such a store), so a part the
//     ledger recorded as accepted (UPLOAD_PARTS: its SHA-256, size and the
//     ETag the store returned) is kept when ListParts shows it with that
//     same size and ETag: the store still holds what it accepted. Anything
//     else (missing, the ledger has it but the store does not, a different
//     checksum, ETag or size) is sent again; the verification after the
//     upload proves the whole content either way. An upload the store no
//     longer has is recorded UPLOAD_ABORTED; unless Existing now finds the
//     version (that upload was just completed), a new one is started.
//  5. Missing parts are sent, part_concurrency at a time; then Complete.
const (
	partsPerRecord  = 16
	checkpointEvery = 5 * time.Second
	// partAttempts is how often one part is tried within one attempt
	// before the attempt fails (and the item backs off): a flaky link
	// should not make the uploader re-read a large file from the start.
	partAttempts = 4
)

// openUpload is the multipart upload the ledger says is in progress.
type openUpload struct {
	uploadID string
	key      string
	partSize int64
	parts    int
	recorded map[int]recordedPart // by part number, from UPLOAD_PARTS
}

// recordedPart is a part as UPLOAD_PARTS recorded it: accepted by the
// store with this size and ETag, after being sent with this SHA-256.
type recordedPart struct {
	sha256 string // hex
	size   int64
	etag   string // without quotes
}

// findOpenUpload reads the item's custody chain for its open upload.
func findOpenUpload(evs []custody.Event) *openUpload {
	var st *openUpload
	for _, e := range evs {
		switch e.Type {
		case custody.UploadStarted:
			ps, _ := strconv.ParseInt(e.Details["part_size"], 10, 64)
			n, _ := strconv.Atoi(e.Details["parts"])
			st = &openUpload{uploadID: e.Details["upload_id"], key: e.Details["key"], partSize: ps, parts: n, recorded: map[int]recordedPart{}}
		case custody.UploadParts:
			if st != nil && e.Details["upload_id"] == st.uploadID {
				for k, v := range e.Details {
					if num, ok := strings.CutPrefix(k, "part_"); ok {
						if n, err := strconv.Atoi(num); err == nil {
							st.recorded[n] = parseRecordedPart(v)
						}
					}
				}
			}
		case custody.UploadAborted:
			if st != nil && e.Details["upload_id"] == st.uploadID {
				st = nil
			}
		case custody.Uploaded:
			st = nil
		}
	}
	if st != nil && st.uploadID == "" {
		return nil
	}
	return st
}

// parseRecordedPart reads an UPLOAD_PARTS value: "sha256 size etag".
func parseRecordedPart(v string) recordedPart {
	f := strings.Fields(v)
	var r recordedPart
	if len(f) > 0 {
		r.sha256 = f[0]
	}
	if len(f) > 1 {
		r.size, _ = strconv.ParseInt(f[1], 10, 64)
	}
	if len(f) > 2 {
		r.etag = f[2]
	}
	return r
}

// reusable reports whether part p, as ListParts shows it, can stand in the
// resumed upload as local part of size l and SHA-256 sum: it has that size
// and an ETag, and either the store reports sum as its checksum, or the
// store reports none and the ledger recorded this very part (sum, size,
// ETag) as accepted (see step 4 above).
func reusable(p objstore.Part, l int64, sum digest.Sum, rec recordedPart) bool {
	if p.Size != l || p.ETag == "" {
		return false
	}
	if p.ChecksumSHA256 != "" {
		return p.ChecksumSHA256 == sum.Base64()
	}
	return rec.sha256 == sum.Hex() && rec.size == l && rec.etag != "" && rec.etag == strings.Trim(p.ETag, `"`)
}

// partHashes caches the part sums of an item across attempts in this
// process, so a transient failure does not make a large file be read again,
// and keeps them from the upload to the verification, which recomputes the
// store's composite checksum from them instead of hashing the vault copy a
// second time (see knownParts). whole is the SHA-256 of the whole copy from
// the same pass; only sums whose whole matched the item's recorded SHA-256
// are ever cached.
type partHashes struct {
	size, partSize int64
	whole          digest.Sum
	sums           []digest.Sum
}

func (u *Uploader) hashParts(ctx context.Context, it custody.Item, body io.ReaderAt, want digest.Sum, ps int64) ([]digest.Sum, error) {
	if sums := u.cachedSums(it, ps); sums != nil {
		return sums, nil
	}
	sums := make([]digest.Sum, 0, objstore.PartCount(it.Size, ps))
	whole, err := hashPartsEach(ctx, body, it.Size, ps, func(_ int, sum digest.Sum) { sums = append(sums, sum) })
	if err != nil {
		return nil, fmt.Errorf("hash vault copy of %s: %w", it.ID, err)
	}
	if whole != want {
		return nil, damagedCopy(it, whole, want)
	}
	u.cacheSums(it, ps, whole, sums)
	return sums, nil
}

// hashPartsEach is objstore.HashPartsEach, the one pass that hashes a
// vault copy for an upload; tests wrap it to see when parts are sent.
var hashPartsEach = objstore.HashPartsEach

// damagedCopy is the permanent failure of a vault copy that does not hash
// to the item's recorded SHA-256.
func damagedCopy(it custody.Item, whole, want digest.Sum) error {
	return fmt.Errorf("vault copy of %s hashes to sha256 %s, recorded %s: %w: %w", it.ID, whole.Hex(), want.Hex(), ErrPermanent, objstore.ErrChecksumMismatch)
}

// cachedSums returns the part sums of it cached by an earlier attempt in
// this process for part size ps, or nil.
func (u *Uploader) cachedSums(it custody.Item, ps int64) []digest.Sum {
	u.mu.Lock()
	h, ok := u.hashes[it.ID]
	u.mu.Unlock()
	if ok && h.size == it.Size && h.partSize == ps {
		return h.sums
	}
	return nil
}

// cacheSums keeps part sums whose whole the caller found to be the item's
// recorded SHA-256 (and only those).
func (u *Uploader) cacheSums(it custody.Item, ps int64, whole digest.Sum, sums []digest.Sum) {
	u.mu.Lock()
	u.hashes[it.ID] = partHashes{size: it.Size, partSize: ps, whole: whole, sums: sums}
	u.mu.Unlock()
}

// partSums are the part SHA-256s of one upload as they become known: all
// at once (cached, or hashed before a resumed upload, which needs every one
// to judge the parts the store holds), or part by part while a new upload
// sends the earlier parts (streamSums).
type partSums struct {
	sums  []digest.Sum
	ready []chan struct{} // ready[i] is closed once sums[i] is set
	done  chan struct{}   // closed when hashing ended: whole and err are set
	whole digest.Sum
	err   error
	// streamed: the whole was not known when the first part went out, so
	// it must be checked before the upload is completed.
	streamed bool
}

// knownSums wraps sums that are all known.
func knownSums(sums []digest.Sum) *partSums {
	c := make(chan struct{})
	close(c)
	p := &partSums{sums: sums, ready: make([]chan struct{}, len(sums)), done: c}
	for i := range p.ready {
		p.ready[i] = c
	}
	return p
}

// streamSums hashes body in parts of ps in the background, in order, the
// whole in the same pass (objstore.HashPartsEach). The part sums are read
// through part; the whole through wait.
func streamSums(ctx context.Context, body io.ReaderAt, size, ps int64) *partSums {
	n := objstore.PartCount(size, ps)
	p := &partSums{sums: make([]digest.Sum, n), ready: make([]chan struct{}, n), done: make(chan struct{}), streamed: true}
	for i := range p.ready {
		p.ready[i] = make(chan struct{})
	}
	go func() {
		defer close(p.done)
		p.whole, p.err = hashPartsEach(ctx, body, size, ps, func(i int, sum digest.Sum) {
			p.sums[i] = sum
			close(p.ready[i])
		})
	}()
	return p
}

// part waits for the SHA-256 of part i (from 0).
func (p *partSums) part(ctx context.Context, i int) (digest.Sum, error) {
	select {
	case <-p.ready[i]:
		return p.sums[i], nil
	case <-ctx.Done():
		return digest.Sum{}, ctx.Err()
	case <-p.done:
		select {
		case <-p.ready[i]:
			return p.sums[i], nil
		default:
		}
		if p.err == nil {
			return digest.Sum{}, fmt.Errorf("part %d was not hashed", i+1)
		}
		return digest.Sum{}, p.err
	}
}

// wait waits for the hashing to end and returns the whole's SHA-256.
func (p *partSums) wait(ctx context.Context) (digest.Sum, error) {
	select {
	case <-p.done:
		return p.whole, p.err
	case <-ctx.Done():
		return digest.Sum{}, ctx.Err()
	}
}

// partSumsVault is a Vault that keeps the part sums the ingest's read-back
// computed (vault.Vault): RecordedPartSums returns them only when the sums
// file reproduces the composite a VAULTED record's details hold.
type partSumsVault interface {
	RecordedPartSums(id string, details map[string]string, partSize int64) ([]digest.Sum, error)
}

// recordedSums returns the part sums of it for part size ps that its
// latest VAULTED record vouches for (evs is its custody), caching them as
// a hashing pass would, or nil: the upload then hashes the copy (older
// records, another part size, a sums file missing, stale or altered).
//
// Why they may stand in for a hashing pass: the read-back that computed
// them hashed the whole in the same cold read and found it equal to the
// streamed SHA-256 the item records, and the signed record binds their
// composite. The store checks every part against its sum (the checksum
// header or the signed payload hash, see s3store.PartBinding), so a vault
// copy that rotted since is refused part by part and never completed.
func (u *Uploader) recordedSums(it custody.Item, evs []custody.Event, ps int64) []digest.Sum {
	pv, ok := u.vault.(partSumsVault)
	if !ok {
		return nil
	}
	want, err := digest.ParseHex(it.SHA256)
	if err != nil {
		return nil
	}
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		if e.Type != custody.Vaulted {
			continue
		}
		if e.SHA256 != it.SHA256 {
			return nil
		}
		sums, err := pv.RecordedPartSums(it.ID, e.Details, ps)
		if err != nil {
			u.log.Debug("no recorded part sums; hashing the vault copy", "item", it.ID, "err", err)
			return nil
		}
		if len(sums) != objstore.PartCount(it.Size, ps) {
			return nil
		}
		u.cacheSums(it, ps, want, sums)
		return sums
	}
	return nil
}

// knownParts returns the cached part sums of it for objstore.VerifyKnown,
// or nil when there are none for its size and recorded SHA-256 (the upload
// was done by an earlier process, or reused an existing version). They are
// sound evidence of the vault copy's content: hashParts caches them only
// from the pass that found the whole copy to hash to it.SHA256.
func (u *Uploader) knownParts(it custody.Item) *objstore.KnownParts {
	want, err := digest.ParseHex(it.SHA256)
	if err != nil {
		return nil
	}
	u.mu.Lock()
	h, ok := u.hashes[it.ID]
	u.mu.Unlock()
	if !ok || h.size != it.Size || h.whole != want {
		return nil
	}
	return &objstore.KnownParts{Whole: h.whole, PartSize: h.partSize, Sums: h.sums}
}

// recordedParts is knownParts from the part sums the item's VAULTED record
// vouches for, at the part size its upload used (objstore.PartSize), or
// nil.
func (u *Uploader) recordedParts(ctx context.Context, it custody.Item) *objstore.KnownParts {
	evs, err := u.ledger.Custody(ctx, it.ID)
	if err != nil {
		return nil
	}
	if u.recordedSums(it, evs, objstore.PartSize(it.Size)) == nil {
		return nil
	}
	return u.knownParts(it)
}

// forgetHashes drops the cached part sums of an item once nothing will use
// them again in this run: it is verified, or failed for good.
func (u *Uploader) forgetHashes(id string) {
	u.mu.Lock()
	delete(u.hashes, id)
	u.mu.Unlock()
}

// ResumeStats says what one multipart attempt did, for logs and tests.
type ResumeStats struct {
	UploadID  string
	Resumed   bool
	PartsKept int // held by the store with the right checksum: not sent
	PartsSent int
}

// putMultipart uploads req as a resumable multipart upload (see above).
func (u *Uploader) putMultipart(ctx context.Context, mp objstore.Multipart, it custody.Item, req objstore.PutRequest) (objstore.PutResult, error) {
	ps := objstore.PartSize(req.Size)
	n := objstore.PartCount(req.Size, ps)
	evs, err := u.ledger.Custody(ctx, it.ID)
	if err != nil {
		return objstore.PutResult{}, fmt.Errorf("read custody of %s: %w", it.ID, err)
	}
	st := findOpenUpload(evs)
	if res, ok, err := u.existing(ctx, mp, it, req, st); err != nil || ok {
		return res, err
	}
	if st != nil && (st.key != req.Key || st.partSize != ps || st.parts != n) {
		u.abortUpload(ctx, mp, it, st.key, st.uploadID, "superseded: key or part size changed")
		st = nil
	}
	var sums *partSums
	cached := u.cachedSums(it, ps)
	if cached == nil {
		cached = u.recordedSums(it, evs, ps)
	}
	switch {
	case cached != nil:
		sums = knownSums(cached)
	case st != nil:
		// Resuming: every part's sum is needed to judge what the store holds.
		all, err := u.hashParts(ctx, it, req.Body, req.SHA256, ps)
		if err != nil {
			if errors.Is(err, ErrPermanent) {
				// The copy is damaged: the open upload is never completed,
				// and Sweep keeps the upload the ledger resumes.
				u.abortUpload(ctx, mp, it, st.key, st.uploadID, "the vault copy does not hash to the recorded sha256")
			}
			return objstore.PutResult{}, err
		}
		sums = knownSums(all)
	default:
		// A new upload: part i is sent as soon as it is hashed, while the
		// later parts are hashed (step 2 above), instead of after a whole
		// pass over the file. The whole is checked before Complete.
		hctx, stop := context.WithCancel(ctx)
		sums = streamSums(hctx, req.Body, req.Size, ps)
		defer func() { stop(); <-sums.done }()
	}
	have := map[int]objstore.Part{}
	stats := ResumeStats{}
	if st != nil {
		parts, err := mp.ListParts(ctx, req.Key, st.uploadID)
		switch {
		case errors.Is(err, objstore.ErrNotFound):
			// It may be gone because it was just completed: a Complete
			// sent by a process killed before it recorded UPLOADED, which
			// the store was still assembling when Existing looked above.
			// Then it was not aborted, and its version is the upload.
			if res, ok, err := mp.Existing(ctx, req); err != nil || ok {
				return res, err
			}
			u.abortUpload(ctx, mp, it, req.Key, st.uploadID, "the store no longer has the upload")
			st = nil
		case err != nil:
			return objstore.PutResult{}, err
		default:
			for _, p := range parts {
				i := p.Number - 1
				if i < 0 || i >= n {
					continue
				}
				l := min(ps, req.Size-int64(i)*ps)
				if reusable(p, l, sums.sums[i], st.recorded[p.Number]) {
					have[p.Number] = p
				}
			}
			for num := range st.recorded {
				if _, ok := have[num]; !ok {
					u.log.Warn("part recorded in the ledger is not in the store; sending it again", "item", it.ID, "part", num)
				}
			}
			stats.Resumed, stats.UploadID = true, st.uploadID
		}
	}
	if st == nil {
		id, err := mp.CreateMultipart(ctx, req)
		if err != nil {
			return objstore.PutResult{}, err
		}
		if _, err := u.ledger.Append(ctx, custody.Event{
			Type: custody.UploadStarted, Actor: u.actor, Camera: it.Camera, Item: it.ID, SHA256: it.SHA256,
			Details: map[string]string{
				"upload_id": id, "key": req.Key, "part_size": strconv.FormatInt(ps, 10),
				"parts": strconv.Itoa(n), "size": strconv.FormatInt(req.Size, 10),
			},
		}, nil); err != nil {
			// Not recorded: nobody would ever resume it, so do not leave it.
			u.abortQuiet(mp, req.Key, id)
			return objstore.PutResult{}, fmt.Errorf("record multipart upload of %s: %w", it.ID, err)
		}
		st = &openUpload{uploadID: id, key: req.Key, partSize: ps, parts: n}
		stats.UploadID = id
	}
	stats.PartsKept = len(have)
	if stats.Resumed {
		u.log.Info("resuming multipart upload", "item", it.ID, "parts", n, "parts_in_store", len(have))
	}

	cp := &checkpoint{u: u, it: it, uploadID: st.uploadID, last: u.now()}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(u.cfg.Upload.PartConcurrency, 1))
	var missing []int
	for i := range n {
		if _, ok := have[i+1]; !ok {
			missing = append(missing, i)
		}
	}
	for _, i := range missing {
		g.Go(func() error {
			sum, err := sums.part(gctx, i)
			if err != nil {
				return fmt.Errorf("hash vault copy of %s: %w", it.ID, err)
			}
			off := int64(i) * ps
			l := min(ps, req.Size-off)
			p, err := u.sendPart(gctx, mp, it, req, st.uploadID, i+1, off, l, sum)
			if err != nil {
				return err
			}
			mu.Lock()
			have[p.Number] = p
			stats.PartsSent++
			mu.Unlock()
			cp.add(gctx, p, sum.Hex())
			return nil
		})
	}
	err = g.Wait()
	// A part that changed in the vault since its sum was taken (the store
	// refused it and the re-read confirmed it, see sendPart) is a damaged
	// copy like one whose whole no longer hashes to the record: what went
	// out is never completed and the upload is aborted.
	damaged := errors.Is(err, ErrPermanent) && errors.Is(err, objstore.ErrChecksumMismatch)
	if err == nil && sums.streamed {
		// The parts the store now holds are the bytes hashed; they are the
		// recording only if those bytes hash to its recorded SHA-256. A
		// damaged vault copy is never completed into an object version.
		whole, herr := sums.wait(ctx)
		switch {
		case herr != nil:
			err = fmt.Errorf("hash vault copy of %s: %w", it.ID, herr)
		case whole != req.SHA256:
			damaged = true
			err = damagedCopy(it, whole, req.SHA256)
		default:
			u.cacheSums(it, ps, whole, sums.sums)
		}
	}
	// Record what was acknowledged even when the attempt failed or is being
	// cancelled: the ledger is local and quick.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	cp.flush(fctx)
	cancel()
	u.setStats(it.ID, stats)
	if damaged {
		u.abortUpload(ctx, mp, it, req.Key, st.uploadID, "the vault copy does not hash to the recorded sha256")
	}
	if err != nil {
		return objstore.PutResult{}, err
	}
	parts := make([]objstore.Part, 0, n)
	for i := 1; i <= n; i++ {
		parts = append(parts, have[i])
	}
	res, err := mp.CompleteMultipart(ctx, req.Key, st.uploadID, parts)
	if err != nil {
		if errors.Is(err, objstore.ErrInvalidRequest) {
			// The store refuses to assemble these parts (a part it listed is
			// gone, an ETag changed): start afresh next time rather than fail
			// the recording for good.
			u.abortUpload(ctx, mp, it, req.Key, st.uploadID, "complete refused: "+err.Error())
			return objstore.PutResult{}, fmt.Errorf("complete multipart upload of %s (will start a new upload): %s", it.ID, err.Error())
		}
		return objstore.PutResult{}, err
	}
	// The part sums stay cached: the verification that follows proves the
	// store's composite checksum from them (Process forgets them after).
	return res, nil
}

// existing is step 1 of the resume: the version the store already holds
// (mp.Existing). When there is one, the item's open upload st (if any) is
// aborted: nothing would ever complete or resume it, and the start-up sweep
// keeps the open upload of a vaulted item, so without this it would stay in
// the bucket until the next start (a process killed after sending
// Complete, the next one finding no version yet and opening a new upload,
// a third finding the first's version). UPLOAD_ABORTED is recorded unless
// the store no longer has it: then it is most likely the upload that became
// this version (Complete done, UPLOADED not recorded), which was completed,
// not aborted.
func (u *Uploader) existing(ctx context.Context, mp objstore.Multipart, it custody.Item, req objstore.PutRequest, st *openUpload) (objstore.PutResult, bool, error) {
	res, ok, err := mp.Existing(ctx, req)
	if err != nil || !ok {
		return res, ok, err
	}
	if st != nil {
		if err := u.abortQuiet(mp, st.key, st.uploadID); !errors.Is(err, objstore.ErrNotFound) {
			u.recordAbort(ctx, it, st.key, st.uploadID, "superseded: the store already holds the version")
		}
	}
	return res, true, nil
}

// sendPart uploads one part, retrying transient failures a few times. A
// part the store refuses as not matching its checksum is re-read from the
// vault: if the vault still gives the recorded part hash, the bytes were
// damaged on the way (retry); otherwise the vault copy changed (permanent).
func (u *Uploader) sendPart(ctx context.Context, mp objstore.Multipart, it custody.Item, req objstore.PutRequest, uploadID string, num int, off, l int64, sum digest.Sum) (objstore.Part, error) {
	var err error
	for try := 1; try <= partAttempts; try++ {
		var p objstore.Part
		p, err = mp.UploadPart(ctx, req.Key, uploadID, num, req.Body, off, l, sum)
		if err == nil {
			return p, nil
		}
		if ctx.Err() != nil {
			return p, err
		}
		if errors.Is(err, objstore.ErrChecksumMismatch) {
			got, n, rerr := digest.Reader(io.NewSectionReader(req.Body, off, l))
			if rerr != nil {
				return p, fmt.Errorf("re-read part %d of %s: %w", num, it.ID, rerr)
			}
			if n != l || got != sum {
				return p, fmt.Errorf("part %d of %s changed in the vault (sha256 %s, hashed %s before sending): %w: %w", num, it.ID, got.Hex(), sum.Hex(), ErrPermanent, err)
			}
			u.log.Warn("store refused a part as damaged in transit; the vault copy is intact, sending it again", "item", it.ID, "part", num)
			err = transient(err)
		} else if objstore.IsPermanent(err) || errors.Is(err, objstore.ErrNotFound) {
			// ErrNotFound: the upload itself is gone; the next attempt
			// reconciles and starts a new one.
			return p, err
		}
		if try < partAttempts {
			if serr := sleep(ctx, u.backoff(try)); serr != nil {
				return p, err
			}
		}
	}
	return objstore.Part{}, err
}

// transientErr hides the sentinels of an error that re-reading showed to
// be a transport fault, so that fail() backs off instead of giving up.
type transientErr struct{ msg string }

func (e transientErr) Error() string { return e.msg }

func transient(err error) error {
	return transientErr{"damaged in transit (vault copy intact): " + err.Error()}
}

// checkpoint batches UPLOAD_PARTS records.
type checkpoint struct {
	u        *Uploader
	it       custody.Item
	uploadID string

	mu      sync.Mutex
	pending []donePart
	last    time.Time
}

type donePart struct {
	objstore.Part
	sha256 string // hex
}

func (c *checkpoint) add(ctx context.Context, p objstore.Part, sha256 string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, donePart{p, sha256})
	if len(c.pending) >= partsPerRecord || c.u.now().Sub(c.last) >= checkpointEvery {
		c.flushLocked(ctx)
	}
}

func (c *checkpoint) flush(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked(ctx)
}

func (c *checkpoint) flushLocked(ctx context.Context) {
	c.last = c.u.now()
	if len(c.pending) == 0 {
		return
	}
	sort.Slice(c.pending, func(i, j int) bool { return c.pending[i].Number < c.pending[j].Number })
	d := map[string]string{"upload_id": c.uploadID}
	nums := make([]string, 0, len(c.pending))
	for _, p := range c.pending {
		d["part_"+strconv.Itoa(p.Number)] = p.sha256 + " " + strconv.FormatInt(p.Size, 10) + " " + strings.Trim(p.ETag, `"`)
		nums = append(nums, strconv.Itoa(p.Number))
	}
	d["parts"] = strings.Join(nums, ",")
	if _, err := c.u.ledger.Append(ctx, custody.Event{
		Type: custody.UploadParts, Actor: c.u.actor, Camera: c.it.Camera, Item: c.it.ID, Details: d,
	}, nil); err != nil {
		// The store holds the parts; ListParts finds them next time.
		c.u.log.Warn("record uploaded parts", "item", c.it.ID, "err", err)
		return
	}
	c.pending = c.pending[:0]
}

// abortUpload aborts an upload of one of our items and records it.
func (u *Uploader) abortUpload(ctx context.Context, mp objstore.Multipart, it custody.Item, key, uploadID, reason string) {
	u.abortQuiet(mp, key, uploadID)
	u.recordAbort(ctx, it, key, uploadID, reason)
}

// recordAbort records UPLOAD_ABORTED for an upload of it.
func (u *Uploader) recordAbort(ctx context.Context, it custody.Item, key, uploadID, reason string) {
	if _, err := u.ledger.Append(ctx, custody.Event{
		Type: custody.UploadAborted, Actor: u.actor, Camera: it.Camera, Item: it.ID,
		Details: map[string]string{"upload_id": uploadID, "key": key, "reason": reason},
	}, nil); err != nil {
		u.log.Warn("record aborted upload", "item", it.ID, "err", err)
	}
	u.log.Info("multipart upload aborted", "item", it.ID, "reason", reason)
}

// abortQuiet aborts an upload whatever ctx says, logging a failure other
// than ErrNotFound (gone already); it returns the store's answer.
func (u *Uploader) abortQuiet(mp objstore.Multipart, key, uploadID string) error {
	// Abort even when ctx has ended: parts left behind hold space.
	actx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := mp.AbortMultipart(actx, key, uploadID)
	if err != nil && !errors.Is(err, objstore.ErrNotFound) {
		u.log.Warn("abort multipart upload", "key", key, "err", err)
	}
	return err
}

// Sweep aborts multipart uploads in the bucket that will never be
// completed: an upload of one of this host's items that is not the one its
// ledger resumes (a crash between CreateMultipartUpload and UPLOAD_STARTED,
// or a superseded one), any upload at objstore.PartProbeKey (a probe's,
// never completed), and, once older than upload.abandoned_after, any
// upload this ledger does not know. It returns how many it aborted: an
// abort the store refused (logged by abortQuiet) is not counted.
func (u *Uploader) Sweep(ctx context.Context) (int, error) {
	mp, ok := u.store.(objstore.Multipart)
	if !ok {
		return 0, nil
	}
	ups, err := mp.ListMultipart(ctx, "")
	if err != nil {
		return 0, fmt.Errorf("sweep abandoned uploads: %w", err)
	}
	n := 0
	for _, up := range ups {
		if up.Key == objstore.PartProbeKey {
			// Never completed by anyone: left by a process stopped
			// mid-probe. The next probe would abort it too, but a run that
			// sends no part never probes.
			if u.abortQuiet(mp, up.Key, up.UploadID) == nil {
				u.log.Info("part checksum probe upload left by a stopped process aborted", "key", up.Key, "upload_id", up.UploadID, "initiated", up.Initiated)
				n++
			}
			continue
		}
		id, _, _ := strings.Cut(path.Base(up.Key), ".")
		it, err := u.ledger.Item(ctx, id)
		ours := err == nil && ObjectKey(it) == up.Key
		if ours {
			lock := u.itemLock(it.ID)
			lock.Lock()
			keep := false
			if it.State == custody.StateVaulted {
				evs, err := u.ledger.Custody(ctx, it.ID)
				if err != nil {
					lock.Unlock()
					return n, fmt.Errorf("sweep: read custody of %s: %w", it.ID, err)
				}
				st := findOpenUpload(evs)
				keep = st != nil && st.uploadID == up.UploadID
			}
			if !keep {
				u.abortUpload(ctx, mp, it, up.Key, up.UploadID, "abandoned: not the upload the ledger resumes")
				n++
			}
			lock.Unlock()
			continue
		}
		if age := u.cfg.Upload.AbandonedAfter.Duration; age > 0 && !up.Initiated.IsZero() && u.now().Sub(up.Initiated) > age {
			if u.abortQuiet(mp, up.Key, up.UploadID) == nil {
				u.log.Info("multipart upload unknown to this ledger aborted", "key", up.Key, "initiated", up.Initiated)
				n++
			}
		}
	}
	return n, nil
}

func (u *Uploader) setStats(id string, s ResumeStats) {
	u.mu.Lock()
	u.stats[id] = s
	u.mu.Unlock()
}

// LastResume returns what the last multipart attempt on item id did in
// this process (for logs and tests).
func (u *Uploader) LastResume(id string) (ResumeStats, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	s, ok := u.stats[id]
	return s, ok
}
