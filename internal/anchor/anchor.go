// Package anchor puts a host's custody ledger on record off the host: it
// writes signed Merkle checkpoints of the ledger, the records they cover and
// (optionally) RFC 3161 time-stamps of them into the object store under
// Object Lock COMPLIANCE, and checks the local ledger against everything
// ever anchored.
//
// Why: whoever controls a dock host can rewrite its ledger and recompute
// every hash and signature. They cannot rewrite a COMPLIANCE-locked object.
// A ledger that was truncated, restored from an older copy, had a record
// removed or changed, or forked, no longer reproduces the roots of the
// checkpoints anchored before, and Check says so, naming the checkpoint
// object.
//
// # Object layout (a contract for third parties)
//
// Keys are relative to the object store's configured prefix. <host> is the
// host id; sizes and seqs are decimal without leading zeros (sort them
// numerically). Every object is written once, under Object Lock COMPLIANCE
// with one retain-until date, and carries metadata sha256 (lower-hex
// SHA-256 of its bytes).
//
//	_custody/<host>/checkpoints/<size>.note
//	    The signed checkpoint of the ledger when it had <size> records: a
//	    C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint) in a C2SP signed
//	    note. Text: "evidenced/<host>\n<size>\n<base64 Merkle root>\n",
//	    signed by the host key under the note key name "evidenced-<host>".
//	    The Merkle tree is RFC 6962 / RFC 9162 hashing over the records in
//	    seq order: leaf i is SHA-256(0x00 || record i+1's exact bytes).
//	    Written LAST: a checkpoint's presence means everything below for it
//	    was written first.
//	_custody/<host>/checkpoints/<size>.proof
//	    The consistency proof from the previous anchored checkpoint's size
//	    to <size> (absent for the first): "evidenced-tlog-proof/v1\n
//	    consistency <old> <new>\n" then one base64 hash per line (RFC 9162
//	    2.1.4 order).
//	_custody/<host>/checkpoints/<size>.tsr
//	    Only when a TSA is configured: the DER RFC 3161 TimeStampResp over
//	    SHA-256 of the exact bytes of <size>.note. Check with
//	    `openssl ts -verify -in <size>.tsr -data <size>.note -CAfile tsa-ca.pem`.
//	_custody/<host>/records/<from>-<to>.jsonl
//	    The records <from>..<to> (from = previous anchored size + 1, to =
//	    <size>), one per line: each line is the record's exact stored bytes
//	    (RFC 8785 canonical JSON, which has no raw newline) followed by
//	    "\n". `sha256sum` of a line without its newline is the record's
//	    hash; its prev_hash field chains it to the line before.
//	_custody/<host>/records/<from>-<to>.sig
//	    One line per record of the .jsonl, same order: "<seq> <base64
//	    Ed25519 signature of the record bytes>", or "<seq>" alone for a
//	    record written before the ledger had a host key.
//	_custody/<host>/keys/<key id>.pem
//	    The public key (PKIX PEM) that signed a checkpoint; the key id is
//	    the lower-hex SHA-256 of its DER (see package signing).
//
// # Invariants
//
//   - Anchor never writes a checkpoint that does not extend the last one
//     anchored: it checks the consistency proof from the anchored root to
//     the new one first (ErrDiverged otherwise), so a rewritten ledger is
//     never "blessed" by a fresh checkpoint.
//   - Anchor is idempotent: when the ledger has not grown since the last
//     anchored checkpoint it writes nothing; a retry after a crash rewrites
//     the same bytes, which the store recognises (objstore.Store.Put reuses
//     a version with the same SHA-256).
//   - The last anchored size is learned from the store itself (Lister), not
//     from local state the host could roll back.
//   - Check re-hashes the anchored records into every anchored root and
//     checks each anchored signature (records/<from>-<to>.sig) over the
//     anchored record bytes with the key in force at that record, followed
//     through the HOST_KEY and KEY_ROTATED records themselves.
//   - Check reads every version of every checkpoint object: a second
//     version of a checkpoint (possible for a privileged insider despite
//     the lock, or through a delete marker) is itself reported.
package anchor

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tlog"
	"github.com/evidenced/evidenced/internal/tsa"
)

// Sentinel errors.
var (
	// ErrDiverged: the local ledger is not an extension of the last
	// anchored checkpoint (rewritten, truncated, forked or restored from an
	// older copy). Anchor refuses to anchor it; run Check to see which.
	ErrDiverged = errors.New("anchor: local ledger does not extend the anchored checkpoint")
	// ErrNoStore: a Store without listing was given.
	ErrNoStore = errors.New("anchor: no store")
)

// Ledger is what anchoring needs of the custody ledger. *custody.Ledger
// implements it.
type Ledger interface {
	// TreeHead is the current unsigned checkpoint, cheaply (O(log n)).
	TreeHead(ctx context.Context) (tlog.Checkpoint, error)
	// Anchor signs a checkpoint now and returns the records since the
	// anchor of size since, with a consistency proof from since.
	Anchor(ctx context.Context, since uint64) (custody.Anchor, error)
	// VerifyAgainst checks that the ledger reproduces a signed checkpoint.
	VerifyAgainst(ctx context.Context, checkpointNote []byte, v note.Verifier) (tlog.Checkpoint, error)
}

var _ Ledger = (*custody.Ledger)(nil)

// Timestamper obtains an RFC 3161 time-stamp of a SHA-256. *tsa.Client
// implements it.
type Timestamper interface {
	Timestamp(ctx context.Context, sum digest.Sum) (*tsa.Token, error)
}

var _ Timestamper = (*tsa.Client)(nil)

// Options tune Anchor.
type Options struct {
	// TSA, when set, time-stamps every new checkpoint; a TSA failure fails
	// the anchor (it is retried next time) so that no checkpoint silently
	// goes without the stamp the configuration asked for.
	TSA Timestamper
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Verifier, when set, is the pinned host key: Anchor extends (and
	// measures the ledger against) only the newest checkpoint whose
	// signature verifies under it. A checkpoint planted in the store by
	// someone without the key is skipped with a warning, so it can neither
	// stop the daemon's start nor stop anchoring. Without it every
	// checkpoint counts, signed or not (Check verifies signatures).
	Verifier note.Verifier
	// Verifiers, when set, returns more pinned host keys, asked at each
	// Anchor: the keys the ledger vouches for through its HOST_KEY and
	// KEY_ROTATED records. After a rotation the checkpoints the earlier
	// key signed are then still the ones extended (without them, every
	// checkpoint would be skipped as planted and the whole ledger anchored
	// again from record 1).
	Verifiers func() []note.Verifier
}

// pinned is every pinned host key of o (none: every checkpoint counts).
func (o Options) pinned() []note.Verifier {
	var vs []note.Verifier
	if o.Verifier != nil {
		vs = append(vs, o.Verifier)
	}
	if o.Verifiers != nil {
		vs = append(vs, o.Verifiers()...)
	}
	return vs
}

// Result says what one Anchor did.
type Result struct {
	// Size is the anchored tree size now; Since the size anchored before.
	Size, Since uint64
	// Root is the Merkle root at Size.
	Root tlog.Hash
	// Written lists the keys written (or found already written) by this
	// call; empty when nothing was new.
	Written []string
	// Timestamped is true when a .tsr was stored for Size.
	Timestamped bool
}

// Prefix is the key prefix of host's custody objects.
func Prefix(hostID string) string { return "_custody/" + hostID + "/" }

// CheckpointKey is the key of the signed checkpoint of size.
func CheckpointKey(hostID string, size uint64) string {
	return Prefix(hostID) + "checkpoints/" + strconv.FormatUint(size, 10) + ".note"
}

func proofKey(hostID string, size uint64) string {
	return Prefix(hostID) + "checkpoints/" + strconv.FormatUint(size, 10) + ".proof"
}

// TimestampKey is the key of the RFC 3161 reply over checkpoint size.
func TimestampKey(hostID string, size uint64) string {
	return Prefix(hostID) + "checkpoints/" + strconv.FormatUint(size, 10) + ".tsr"
}

// RecordsKey is the key of the records from..to; SigsKey of their
// signatures.
func RecordsKey(hostID string, from, to uint64) string {
	return fmt.Sprintf("%srecords/%d-%d.jsonl", Prefix(hostID), from, to)
}

// SigsKey is the key of the signatures of records from..to.
func SigsKey(hostID string, from, to uint64) string {
	return fmt.Sprintf("%srecords/%d-%d.sig", Prefix(hostID), from, to)
}

// KeyKey is the key of the public key with id keyID.
func KeyKey(hostID, keyID string) string { return Prefix(hostID) + "keys/" + keyID + ".pem" }

// maxObject bounds what is read of a checkpoint, proof or time-stamp.
const maxObject = 1 << 20

// Anchor writes what the ledger holds beyond the last anchored checkpoint
// (see the package documentation for the layout) under COMPLIANCE until
// retainUntil. It returns a Result with no Written keys when the ledger has
// not grown. An empty ledger is not anchored.
func Anchor(ctx context.Context, l Ledger, s Store, hostID string, retainUntil time.Time, o Options) (Result, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if s == nil {
		return Result{}, ErrNoStore
	}
	if retainUntil.IsZero() || !retainUntil.After(time.Now()) {
		return Result{}, fmt.Errorf("anchor %s: retain-until %s is not in the future", hostID, retainUntil)
	}
	last, err := lastAnchored(ctx, s, hostID, o.pinned(), log)
	if err != nil {
		return Result{}, err
	}
	head, err := l.TreeHead(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("anchor %s: %w", hostID, err)
	}
	res := Result{Size: last.Size, Since: last.Size, Root: last.Root}
	if head.Size == 0 {
		return res, nil
	}
	if last.found && head.Size == last.Size {
		if head.Root != last.Root {
			return res, fmt.Errorf("anchor %s: %w: %s has root %s, the ledger at that size %s",
				hostID, ErrDiverged, CheckpointKey(hostID, last.Size), last.Root, head.Root)
		}
		return res, nil // nothing new
	}
	a, err := l.Anchor(ctx, last.Size)
	if err != nil {
		if errors.Is(err, custody.ErrCheckpoint) {
			return res, fmt.Errorf("anchor %s: %w: %w", hostID, ErrDiverged, err)
		}
		return res, fmt.Errorf("anchor %s: %w", hostID, err)
	}
	c := a.Checkpoint
	if last.found {
		if err := tlog.VerifyConsistency(last.Size, c.Size, last.Root, c.Root, a.Consistency.Hashes); err != nil {
			return res, fmt.Errorf("anchor %s: %w: the ledger at size %d is not an extension of %s (root %s): %v",
				hostID, ErrDiverged, c.Size, CheckpointKey(hostID, last.Size), last.Root, err)
		}
	}
	w := writer{s: s, until: retainUntil}

	// Records and their signatures.
	var recs, sigs bytes.Buffer
	signed := false
	for _, r := range a.Records {
		if bytes.IndexByte(r.Record, '\n') >= 0 {
			return res, fmt.Errorf("anchor %s: record %d holds a raw newline; it cannot be written one per line", hostID, r.Seq)
		}
		recs.Write(r.Record)
		recs.WriteByte('\n')
		sigs.WriteString(strconv.FormatUint(r.Seq, 10))
		if len(r.Sig) > 0 {
			signed = true
			sigs.WriteByte(' ')
			sigs.WriteString(base64.StdEncoding.EncodeToString(r.Sig))
		}
		sigs.WriteByte('\n')
	}
	from, to := a.Since+1, c.Size
	if err := w.put(ctx, RecordsKey(hostID, from, to), recs.Bytes(), "application/jsonl"); err != nil {
		return res, err
	}
	if signed {
		if err := w.put(ctx, SigsKey(hostID, from, to), sigs.Bytes(), "text/plain; charset=utf-8"); err != nil {
			return res, err
		}
	}
	if len(a.PublicKeyPEM) > 0 {
		pub, err := signing.ParsePublicPEM(a.PublicKeyPEM)
		if err != nil {
			return res, fmt.Errorf("anchor %s: the ledger's public key: %w", hostID, err)
		}
		if err := w.put(ctx, KeyKey(hostID, signing.KeyID(pub)), a.PublicKeyPEM, "application/x-pem-file"); err != nil {
			return res, err
		}
	}
	if last.found {
		p, err := a.Consistency.Marshal()
		if err != nil {
			return res, fmt.Errorf("anchor %s: consistency proof: %w", hostID, err)
		}
		if err := w.put(ctx, proofKey(hostID, c.Size), p, "text/plain; charset=utf-8"); err != nil {
			return res, err
		}
	}
	if o.TSA != nil {
		ok, err := w.timestamp(ctx, o.TSA, TimestampKey(hostID, c.Size), a.Note)
		if err != nil {
			return res, fmt.Errorf("anchor %s: time-stamp checkpoint %d: %w", hostID, c.Size, err)
		}
		res.Timestamped = ok
	}
	// The checkpoint last: its presence commits the anchor.
	if err := w.put(ctx, CheckpointKey(hostID, c.Size), a.Note, "text/plain; charset=utf-8"); err != nil {
		return res, err
	}
	res.Size, res.Root, res.Written = c.Size, c.Root, w.written
	log.Info("custody checkpoint anchored", "host", hostID, "tree_size", c.Size, "since", a.Since,
		"records", len(a.Records), "timestamped", res.Timestamped)
	return res, nil
}

// writer puts custody objects under COMPLIANCE.
type writer struct {
	s       Store
	until   time.Time
	written []string
}

func (w *writer) put(ctx context.Context, key string, data []byte, ctype string) error {
	sum := digest.Bytes(data)
	_, err := w.s.Put(ctx, objstore.PutRequest{
		Key: key, Body: bytes.NewReader(data), Size: int64(len(data)), SHA256: sum,
		Metadata:    map[string]string{"sha256": sum.Hex()},
		ContentType: ctype, LockMode: objstore.LockCompliance, RetainUntil: w.until,
	})
	if err != nil {
		return fmt.Errorf("anchor: put %s: %w", key, err)
	}
	w.written = append(w.written, key)
	return nil
}

// timestamp stores an RFC 3161 reply over the note at key, unless one for
// this very note is already there (a retry after a crash: the note bytes
// are deterministic, a new stamp would only add a version).
func (w *writer) timestamp(ctx context.Context, t Timestamper, key string, noteBytes []byte) (bool, error) {
	sum := digest.Bytes(noteBytes)
	if old, err := readObject(ctx, w.s, key, ""); err == nil {
		if _, perr := tsa.ParseResponse(old, sum, nil); perr == nil {
			w.written = append(w.written, key)
			return true, nil
		}
	} else if !errors.Is(err, objstore.ErrNotFound) {
		return false, err
	}
	tok, err := t.Timestamp(ctx, sum)
	if err != nil {
		return false, err
	}
	if err := w.put(ctx, key, tok.Response, "application/timestamp-reply"); err != nil {
		return false, err
	}
	return true, nil
}

// anchored is the last anchored checkpoint as the store holds it.
type anchored struct {
	found bool
	Size  uint64
	Root  tlog.Hash
}

// lastAnchored finds the largest checkpoint of host in the store and reads
// its root. Without vs the signature is not checked here (Check does that,
// with the keys a verifier trusts): Anchor only needs the root to refuse to
// extend something the ledger does not extend. With vs, a checkpoint whose
// signature verifies under none of them is not trusted: it is logged and
// the next largest one is read instead.
func lastAnchored(ctx context.Context, s Store, hostID string, vs []note.Verifier, log *slog.Logger) (anchored, error) {
	vers, err := s.ListVersions(ctx, Prefix(hostID)+"checkpoints/")
	if err != nil {
		return anchored{}, fmt.Errorf("anchor %s: list checkpoints: %w", hostID, err)
	}
	seen := map[uint64]bool{}
	var sizes []uint64
	for _, ver := range vers {
		n, ext, ok := parseCheckpointName(hostID, ver.Key)
		if ok && ext == "note" && !seen[n] {
			seen[n] = true
			sizes = append(sizes, n)
		}
	}
	slices.Sort(sizes)
	for i := len(sizes) - 1; i >= 0; i-- {
		size := sizes[i]
		key := CheckpointKey(hostID, size)
		b, err := readObject(ctx, s, key, "")
		if err != nil {
			return anchored{}, fmt.Errorf("anchor %s: read %s: %w", hostID, key, err)
		}
		var c tlog.Checkpoint
		if len(vs) > 0 {
			c, _, err = openNote(b, custody.CheckpointOrigin(hostID), vs)
			if err != nil || c.Size != size {
				log.Warn("ALERT: anchored checkpoint not signed by the host key; not trusted", "object", key, "err", err)
				continue
			}
		} else {
			c, err = parseUnverified(b)
			if err != nil {
				return anchored{}, fmt.Errorf("anchor %s: %s: %w", hostID, key, err)
			}
			if c.Size != size || c.Origin != custody.CheckpointOrigin(hostID) {
				return anchored{}, fmt.Errorf("anchor %s: %w: %s holds a checkpoint of %q size %d", hostID, ErrDiverged, key, c.Origin, c.Size)
			}
		}
		return anchored{found: true, Size: size, Root: c.Root}, nil
	}
	return anchored{}, nil
}

// parseUnverified parses a signed checkpoint note without checking its
// signature.
func parseUnverified(msg []byte) (tlog.Checkpoint, error) {
	_, err := note.Open(msg, note.VerifierList())
	var unv *note.UnverifiedNoteError
	if !errors.As(err, &unv) {
		return tlog.Checkpoint{}, fmt.Errorf("not a signed note: %v", err)
	}
	return tlog.ParseCheckpoint([]byte(unv.Note.Text))
}

// parseCheckpointName splits "_custody/<host>/checkpoints/<n>.<ext>".
func parseCheckpointName(hostID, key string) (uint64, string, bool) {
	rest, ok := strings.CutPrefix(key, Prefix(hostID)+"checkpoints/")
	if !ok {
		return 0, "", false
	}
	num, ext, ok := strings.Cut(rest, ".")
	if !ok || num == "" || (len(num) > 1 && num[0] == '0') {
		return 0, "", false
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != num {
		return 0, "", false
	}
	return n, ext, true
}

// readObject reads one version (versionID "" = latest), at most maxObject
// bytes.
func readObject(ctx context.Context, s objstore.Store, key, versionID string) ([]byte, error) {
	rc, err := s.Open(ctx, key, versionID)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxObject+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if len(b) > maxObject {
		return nil, fmt.Errorf("read %s: larger than %d bytes", key, maxObject)
	}
	return b, nil
}

// Anchored is one checkpoint as the store holds it, for a court export.
type Anchored struct {
	// Object is the key of the checkpoint note; Size its tree size.
	Object string
	Size   uint64
	// Note is the signed checkpoint's bytes (latest version); Timestamp the
	// latest version of its RFC 3161 reply, nil when none was anchored.
	Note, Timestamp []byte
}

// Latest returns the newest checkpoint of host anchored in s whose size is
// at most maxSize (the export's own checkpoint: one anchored meanwhile is
// not covered by it), with its time-stamp. found is false when there is
// none. Nothing is verified here: the caller checks the note against the
// host keys and the ledger, and the time-stamp against the note.
func Latest(ctx context.Context, s Store, hostID string, maxSize uint64) (a Anchored, found bool, err error) {
	if s == nil {
		return a, false, ErrNoStore
	}
	vs, err := s.ListVersions(ctx, Prefix(hostID)+"checkpoints/")
	if err != nil {
		return a, false, fmt.Errorf("anchor %s: list checkpoints: %w", hostID, err)
	}
	stamped := map[uint64]bool{}
	for _, v := range vs {
		n, ext, ok := parseCheckpointName(hostID, v.Key)
		switch {
		case !ok || n > maxSize:
		case ext == "tsr":
			stamped[n] = true
		case ext == "note" && (!found || n > a.Size):
			a.Size, found = n, true
		}
	}
	if !found {
		return a, false, nil
	}
	a.Object = CheckpointKey(hostID, a.Size)
	if a.Note, err = readObject(ctx, s, a.Object, ""); err != nil {
		return a, false, fmt.Errorf("anchor %s: %w", hostID, err)
	}
	if stamped[a.Size] {
		if a.Timestamp, err = readObject(ctx, s, TimestampKey(hostID, a.Size), ""); err != nil {
			return a, false, fmt.Errorf("anchor %s: %w", hostID, err)
		}
	}
	return a, true, nil
}
