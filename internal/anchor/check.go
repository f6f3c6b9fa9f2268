package anchor

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tlog"
	"github.com/evidenced/evidenced/internal/tsa"
)

// Problem is one thing wrong with what is anchored, or with the local
// ledger measured against it.
type Problem struct {
	// Object is the key of the object concerned (relative to the store's
	// prefix); VersionID the version, when one version is meant.
	Object    string
	VersionID string
	// What says what is wrong, in words for an operator or a court.
	What string
}

func (p Problem) String() string {
	if p.VersionID != "" {
		return fmt.Sprintf("%s (version %s): %s", p.Object, p.VersionID, p.What)
	}
	return p.Object + ": " + p.What
}

// Report is what Check found.
type Report struct {
	// Checkpoints is how many checkpoint sizes are anchored; Valid how
	// many of them have a validly signed note.
	Checkpoints, Valid int
	// Reproduced is the largest anchored size the local ledger reproduces
	// (0 when none, or when Check ran without a ledger).
	Reproduced uint64
	// Timestamps is how many checkpoints have a time-stamp that matches.
	Timestamps int
	// Records is how many anchored records were re-hashed into the
	// checkpoints' roots; Signatures how many of their anchored
	// signatures (records/<from>-<to>.sig) verify with the key in force.
	Records    uint64
	Signatures uint64
	// Notices are things worth knowing that are not wrong (leftovers of an
	// anchor interrupted by a crash).
	Notices []string
	// Problems lists everything wrong; empty means all is consistent.
	Problems []Problem
	// Audited, when CheckOptions.Through asked for it and the check found
	// nothing wrong, is what the next audit can start from.
	Audited *Audited
	// Listed is the checkpoint sizes the check's listing of checkpoints/
	// found a note for, behind Since too (those it did not read); nil when
	// the prefix could not be listed to its end. A caller that checks
	// other objects against the checkpoints uses it rather than listing
	// the prefix again.
	Listed *NoteSizes

	// unread is the first read of an anchored object that failed for a
	// reason that may pass (the store timed out or answered 5xx): the
	// check could not be made, which CheckWith returns as an error rather
	// than as a finding.
	unread error
}

// cannotRead notes an anchored object that could not be read: a problem
// when the store answered for good (a listed version gone, access
// refused), and otherwise the
// could-not-check error CheckWith returns.
func (r *Report) cannotRead(key, version string, err error) {
	if !objstore.IsPermanent(err) && !errors.Is(err, objstore.ErrNotFound) {
		if r.unread == nil {
			r.unread = fmt.Errorf("anchor check: reading %s: %w", key, err)
		}
		return
	}
	r.Problems = append(r.Problems, Problem{Object: key, VersionID: version, What: fmt.Sprintf("cannot be read: %v", err)})
}

// OK reports whether Check found nothing wrong.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// CheckOptions tune CheckWith.
type CheckOptions struct {
	// Verifiers are the host keys whose checkpoint signatures are trusted
	// (every key the host ever had, for a ledger whose key was rotated).
	Verifiers []note.Verifier
	// TSARoots, when set, also verifies each time-stamp's signature and
	// certificate chain; otherwise only that it stamps the note.
	TSARoots *x509.CertPool
	// SkipRecords skips re-hashing the anchored records (which reads them
	// all from the store).
	SkipRecords bool
	// Since is what an earlier audit of the same host verified (its
	// Report.Audited): the versions up to Since.Size are listed and
	// digested, and read only if they are not the ones it verified. Only
	// without a ledger and with SkipRecords: a ledger's check, and the
	// records', are made in full.
	Since *Audited
	// Through, when not 0, asks for Report.Audited up to this checkpoint
	// size (one already followed and checked, e.g. a console's tail).
	Through uint64
}

// Check fetches every anchored checkpoint of host and verifies, naming the
// object for each failure: its signature with v; that the local ledger
// reproduces its root at its size (so a ledger rewritten, truncated, forked
// or restored from an older copy is detected even if every local hash was
// recomputed); the consistency proofs between successive checkpoints; the
// time-stamps' imprints; that the anchored records hash to every root; and
// that each anchored record signature verifies with the key in force.
// The error is for an operational failure (the store cannot be listed);
// integrity failures are Problems.
func Check(ctx context.Context, l Ledger, s Store, hostID string, v note.Verifier) (Report, error) {
	return CheckWith(ctx, l, s, hostID, CheckOptions{Verifiers: []note.Verifier{v}})
}

type goodCheckpoint struct {
	c    tlog.Checkpoint
	note []byte
}

// Audited is what a ledger-less audit of a host's checkpoints/ prefix
// verified, for the next audit to start from (CheckOptions.Since): the
// versions listed for the checkpoint sizes up to Size, counted and
// digested in key and version order, and the root of checkpoint Size.
//
// Why it is enough to read only what comes after: every checkpoint, proof
// and time-stamp is written under COMPLIANCE Object Lock, so the bytes of a
// version cannot change under its version id; what can change behind Size
// is which versions exist (one added, one gone), and that changes the
// count or the digest, which sends the audit back to reading everything.
type Audited struct {
	Size uint64    `json:"size"`
	Root tlog.Hash `json:"root"`
	// Versions is how many versions of objects named for a size ≤ Size
	// were listed; Digest the SHA-256 (hex) over their key, version id
	// and byte size, in key then version id order.
	Versions uint64 `json:"versions"`
	Digest   string `json:"digest"`
	// Checkpoints, Valid and Timestamps are the Report's counts up to Size.
	Checkpoints int `json:"checkpoints"`
	Valid       int `json:"valid"`
	Timestamps  int `json:"timestamps"`
}

// listDigest digests listed versions in the order they are fed.
type listDigest struct {
	h hash.Hash
	n uint64
}

func (d *listDigest) add(v Version) {
	if d.h == nil {
		d.h = sha256.New()
	}
	d.n++
	fmt.Fprintf(d.h, "%s\x00%s\x00%d\n", v.Key, v.VersionID, v.Size)
}

func (d *listDigest) sum() string {
	if d.h == nil {
		d.h = sha256.New()
	}
	return hex.EncodeToString(d.h.Sum(nil))
}

// CheckWith is Check with options. l may be nil: then only the anchored
// objects are checked against each other (what a third party without the
// host's ledger can do).
//
// The checkpoints/ prefix is listed a page at a time
// (objstore.EachVersionPage) and what is kept of it is, per checkpoint
// size, the version ids of its note, proof and time-stamp: not the
// listing. With Since (a ledger-less audit that skips the records), the
// versions at or behind Since.Size are only counted and digested: when
// they are the ones Since describes, only the versions after it are read;
// when not (a version added behind it, or one gone), everything is read
// and checked as without Since.
//
// checkpoints/ is listed once, and what the listing found is handed out
// (Report.Listed); twice only when the versions behind Since are not the
// ones it describes: the second listing is the one everything is read
// from, as the first kept only the versions after Since.
func CheckWith(ctx context.Context, l Ledger, s Store, hostID string, o CheckOptions) (Report, error) {
	if o.Since != nil && (l != nil || !o.SkipRecords || o.Since.Size == 0) {
		return Report{}, errors.New("anchor check: Since is for an audit without a ledger that skips the records")
	}
	if o.Since != nil && o.Through != 0 && o.Through < o.Since.Size {
		o.Since = nil // an audit behind what was verified: read everything
	}
	if o.Since != nil {
		rep, resumed, err := checkFrom(ctx, l, s, hostID, o, o.Since)
		if err != nil || resumed {
			return rep, err
		}
		rep, _, err = checkFrom(ctx, l, s, hostID, o, nil)
		rep.Notices = append(rep.Notices, fmt.Sprintf("%scheckpoints/: the versions listed up to checkpoint %d are not those the last audit verified (a version added or gone); every checkpoint was read again", Prefix(hostID), o.Since.Size))
		return rep, err
	}
	rep, _, err := checkFrom(ctx, l, s, hostID, o, nil)
	return rep, err
}

// checkFrom is CheckWith from since (nil: from the first checkpoint). It
// reports false, with nothing checked, when the versions listed up to
// since.Size are not the ones since describes.
func checkFrom(ctx context.Context, l Ledger, s Store, hostID string, o CheckOptions, since *Audited) (Report, bool, error) {
	var rep Report
	problem := func(key, version, format string, args ...any) {
		rep.Problems = append(rep.Problems, Problem{Object: key, VersionID: version, What: fmt.Sprintf(format, args...)})
	}
	if s == nil {
		return rep, false, ErrNoStore
	}
	if len(o.Verifiers) == 0 {
		return rep, false, errors.New("anchor check: no host key to verify checkpoints with")
	}
	var behind, through listDigest // versions ≤ since.Size; ≤ o.Through
	// Per size, the version ids listed (not the listing: a host's prefix
	// grows for years).
	notes := map[uint64][]string{}
	proofs := map[uint64][]string{}
	stamps := map[uint64][]string{}
	var listed NoteSizes
	err := objstore.EachVersionPage(ctx, s, Prefix(hostID)+"checkpoints/", func(vs []Version) error {
		// A page holds every version of its keys, and pages come in key
		// order: sorted, the digests see one order whatever the paging.
		slices.SortFunc(vs, func(a, b Version) int {
			return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.VersionID, b.VersionID))
		})
		for _, v := range vs {
			n, ext, ok := parseCheckpointName(hostID, v.Key)
			if !ok || (ext != "note" && ext != "proof" && ext != "tsr") {
				problem(v.Key, v.VersionID, "an object evidenced does not write in checkpoints/")
				continue
			}
			if ext == "note" {
				// Behind since too: not read here, but what is checked
				// against the listing (Report.Listed) needs every one.
				listed.add(n)
			}
			if o.Through != 0 && n <= o.Through {
				through.add(v)
			}
			if since != nil && n <= since.Size {
				behind.add(v)
				continue
			}
			switch ext {
			case "note":
				notes[n] = append(notes[n], v.VersionID)
			case "proof":
				proofs[n] = append(proofs[n], v.VersionID)
			case "tsr":
				stamps[n] = append(stamps[n], v.VersionID)
			}
		}
		return nil
	})
	if err != nil {
		return rep, false, fmt.Errorf("anchor check %s: list checkpoints: %w", hostID, err)
	}
	if since != nil && (behind.n != since.Versions || behind.sum() != since.Digest) {
		return Report{}, false, nil
	}
	rep.Listed = listed.done()
	sizes := make([]uint64, 0, len(notes))
	for n := range notes {
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	rep.Checkpoints = len(sizes)
	origin := custody.CheckpointOrigin(hostID)

	var good []goodCheckpoint
	// The counts up to o.Through, for the Audited this check returns.
	var upTo Audited
	if since != nil {
		// What since verified is the first good checkpoint: the next
		// one must extend it.
		good = append(good, goodCheckpoint{c: tlog.Checkpoint{Size: since.Size, Root: since.Root}})
		rep.Checkpoints += since.Checkpoints
		rep.Valid, rep.Timestamps = since.Valid, since.Timestamps
		upTo = *since
	}
	for _, size := range sizes {
		if err := ctx.Err(); err != nil {
			return rep, false, err
		}
		key := CheckpointKey(hostID, size)
		versions := notes[size]
		if len(versions) > 1 {
			problem(key, "", "%d versions: evidenced writes a checkpoint once, so a version was added after it was anchored (Object Lock keeps every version; each is checked)", len(versions))
		}
		var valid []goodCheckpoint
		for _, v := range versions {
			b, err := readObject(ctx, s, key, v)
			if err != nil {
				if ctx.Err() != nil {
					return rep, false, ctx.Err()
				}
				rep.cannotRead(key, v, err)
				continue
			}
			c, ver, err := openNote(b, origin, o.Verifiers)
			if err != nil {
				problem(key, v, "the signed checkpoint does not verify with the host key: %v", err)
				continue
			}
			if c.Size != size {
				problem(key, v, "holds a checkpoint of size %d, not %d as its name says", c.Size, size)
				continue
			}
			valid = append(valid, goodCheckpoint{c: c, note: b})
			if l != nil {
				if _, err := l.VerifyAgainst(ctx, b, ver); err != nil {
					problem(key, v, "the local ledger does not reproduce this checkpoint (size %d, root %s): %v", size, c.Root, err)
				} else if size > rep.Reproduced {
					rep.Reproduced = size
				}
			}
		}
		if o.Through != 0 && size <= o.Through {
			upTo.Checkpoints++
		}
		switch {
		case len(valid) == 0:
			continue
		case slices.ContainsFunc(valid[1:], func(g goodCheckpoint) bool { return g.c.Root != valid[0].c.Root }):
			problem(key, "", "validly signed versions with different roots: the host key signed two histories of size %d (a fork)", size)
			continue
		}
		rep.Valid++
		good = append(good, valid[0])
		stamped := rep.Timestamps
		checkStamps(ctx, s, hostID, size, valid[0].note, stamps[size], o.TSARoots, &rep, problem)
		if o.Through != 0 && size <= o.Through {
			upTo.Valid++
			upTo.Timestamps += rep.Timestamps - stamped
			if size == o.Through {
				upTo.Size, upTo.Root = size, valid[0].c.Root
			}
		}
	}

	// Successive checkpoints must be consistent: each later tree extends
	// the earlier one. The proofs are in the store, so this holds or fails
	// without the local ledger.
	for i := 1; i < len(good); i++ {
		prev, cur := good[i-1].c, good[i].c
		key := proofKey(hostID, cur.Size)
		pv := proofs[cur.Size]
		if len(pv) == 0 {
			problem(key, "", "missing: nothing proves checkpoint %d extends checkpoint %d", cur.Size, prev.Size)
			continue
		}
		if len(pv) > 1 {
			problem(key, "", "%d versions: a proof is written once", len(pv))
		}
		for _, v := range pv {
			b, err := readObject(ctx, s, key, v)
			if err != nil {
				rep.cannotRead(key, v, err)
				continue
			}
			p, err := tlog.ParseProof(b)
			if err != nil {
				problem(key, v, "not a proof: %v", err)
				continue
			}
			if p.Kind != tlog.Consistency || p.A != prev.Size || p.B != cur.Size {
				problem(key, v, "is a %s proof %d→%d, want consistency %d→%d (the previous valid checkpoint)", p.Kind, p.A, p.B, prev.Size, cur.Size)
				continue
			}
			if err := p.Verify(tlog.Hash{}, prev.Root, cur.Root); err != nil {
				problem(key, v, "checkpoint %d (root %s) is not an extension of checkpoint %d (root %s): %v",
					cur.Size, cur.Root, prev.Size, prev.Root, err)
			}
		}
	}
	for n, pv := range proofs {
		if _, ok := notes[n]; !ok {
			for _, v := range pv {
				// Not an attack: the checkpoint is written last, so a process
				// killed mid-anchor leaves the proof behind, locked for good.
				// Nothing trusts a proof without its signed checkpoint.
				rep.Notices = append(rep.Notices, fmt.Sprintf("%s (version %s): a proof for a checkpoint that was never written (an anchor interrupted before its checkpoint; harmless, nothing relies on it)", proofKey(hostID, n), v))
			}
		}
	}

	if !o.SkipRecords && len(good) > 0 {
		if err := checkRecords(ctx, s, hostID, good, &rep, problem); err != nil {
			return rep, true, err
		}
	}
	if rep.unread != nil {
		return rep, true, rep.unread
	}
	// Only a clean check is remembered, and only up to a checkpoint it
	// found good.
	if o.Through != 0 && rep.OK() && upTo.Size == o.Through {
		upTo.Versions, upTo.Digest = through.n, through.sum()
		rep.Audited = &upTo
	}
	return rep, true, nil
}

// openNote verifies msg with whichever of vs signed it and parses it.
func openNote(msg []byte, origin string, vs []note.Verifier) (tlog.Checkpoint, note.Verifier, error) {
	var firstErr error
	for _, v := range vs {
		c, err := tlog.OpenCheckpoint(msg, origin, v)
		if err == nil {
			return c, v, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return tlog.Checkpoint{}, nil, firstErr
}

// checkStamps checks the time-stamps of one checkpoint.
func checkStamps(ctx context.Context, s Store, hostID string, size uint64, noteBytes []byte, versions []string,
	roots *x509.CertPool, rep *Report, problem func(key, version, format string, args ...any)) {
	key := TimestampKey(hostID, size)
	sum := digest.Bytes(noteBytes)
	ok := false
	for _, v := range versions {
		b, err := readObject(ctx, s, key, v)
		if err != nil {
			rep.cannotRead(key, v, err)
			continue
		}
		tok, err := tsa.ParseResponse(b, sum, nil)
		if err != nil {
			problem(key, v, "is not a time-stamp of checkpoint %d (SHA-256 %s): %v", size, sum.Hex(), err)
			continue
		}
		if roots != nil {
			if err := tok.Verify(roots); err != nil {
				problem(key, v, "the time-stamp does not verify: %v", err)
				continue
			}
		}
		ok = true
	}
	if ok {
		rep.Timestamps++
	}
}

// maxLine bounds one record line (custody records are at most 1 MiB).
const maxLine = 1<<20 + 1

// checkRecords re-hashes the anchored records, file by file in checkpoint
// order, into the Merkle tree and compares the root at every checkpoint:
// the check a third party can make with the anchored objects alone. It
// stops at the first file that fails, since every later root depends on
// it.
func checkRecords(ctx context.Context, s Store, hostID string, good []goodCheckpoint, rep *Report,
	problem func(key, version, format string, args ...any)) error {
	// Listed a page at a time; what is kept is a count per key.
	count := map[string]int{}
	err := objstore.EachVersionPage(ctx, s, Prefix(hostID)+"records/", func(vs []Version) error {
		for _, v := range vs {
			count[v.Key]++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("anchor check %s: list records: %w", hostID, err)
	}
	var f tlog.Frontier
	var keys keyState
	prevHash := custody.GenesisHash
	for _, g := range good {
		from, to := f.Size+1, g.c.Size
		key := RecordsKey(hostID, from, to)
		if count[key] == 0 {
			problem(key, "", "missing: the records covered by checkpoint %d are not anchored", to)
			return nil
		}
		if count[key] > 1 {
			problem(key, "", "%d versions: records are written once", count[key])
		}
		sk := SigsKey(hostID, from, to)
		sigs, sigsFound, sigErr := readSigs(ctx, s, sk, count[sk], from, to)
		var readErr *sigsReadError
		switch {
		case errors.As(sigErr, &readErr):
			rep.cannotRead(sk, "", readErr.err)
		case sigErr != nil:
			problem(sk, "", "%v", sigErr)
		}
		if count[sk] > 1 {
			problem(sk, "", "%d versions: signatures are written once", count[sk])
		}
		rc, err := s.Open(ctx, key, "")
		if err != nil {
			rep.cannotRead(key, "", err)
			return nil
		}
		bad := 0
		msg := hashRecords(bufio.NewReaderSize(rc, 64<<10), &f, to, &prevHash, func(seq uint64, rec []byte, ev custody.Event) {
			if what := keys.check(seq, rec, ev, sigs, sigsFound && sigErr == nil); what != "" {
				if bad++; bad <= maxSigProblems {
					problem(sk, "", "record %d: %s", seq, what)
				} else if bad == maxSigProblems+1 {
					problem(sk, "", "more records fail their signature check; only the first %d are named", maxSigProblems)
				}
			} else if keys.pub != nil {
				rep.Signatures++
			}
		})
		rc.Close()
		if msg != "" {
			problem(key, "", "%s", msg)
			return nil
		}
		if root := f.Root(); root != g.c.Root {
			problem(key, "", "the records 1..%d hash to root %s but %s says %s: an anchored record was altered",
				to, root, CheckpointKey(hostID, to), g.c.Root)
			return nil
		}
		rep.Records = f.Size
	}
	return nil
}

// hashRecords reads records up to seq to from r into f, checking each
// record's seq and prev_hash and handing it to each; it returns what is
// wrong, or "".
func hashRecords(r *bufio.Reader, f *tlog.Frontier, to uint64, prevHash *string, each func(seq uint64, rec []byte, ev custody.Event)) string {
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Sprintf("record %d: line longer than a record can be", f.Size+1)
		}
		if errors.Is(err, io.EOF) {
			if len(line) != 0 {
				return fmt.Sprintf("record %d: the last line has no newline", f.Size+1)
			}
			break
		}
		if err != nil {
			return fmt.Sprintf("read after record %d: %v", f.Size, err)
		}
		rec := bytes.TrimSuffix(line, []byte("\n"))
		seq := f.Size + 1
		if seq > to {
			return fmt.Sprintf("holds more than the %d records its name says", to)
		}
		ev, err := custody.DecodeRecord(rec)
		if err != nil {
			return fmt.Sprintf("line for record %d does not decode: %v", seq, err)
		}
		if ev.Seq != seq {
			return fmt.Sprintf("line for record %d holds seq %d", seq, ev.Seq)
		}
		if !strings.EqualFold(ev.PrevHash, *prevHash) {
			return fmt.Sprintf("record %d: prev_hash %s does not chain to record %d (%s)", seq, ev.PrevHash, seq-1, *prevHash)
		}
		*prevHash = custody.RecordHash(rec)
		f.Append(tlog.LeafHash(rec))
		each(seq, rec, ev)
	}
	if f.Size != to {
		return fmt.Sprintf("ends at record %d, its name says %d", f.Size, to)
	}
	return ""
}

// sigsReadError is readSigs failing to read the object (not to parse it).
type sigsReadError struct{ err error }

func (e *sigsReadError) Error() string { return fmt.Sprintf("cannot be read: %v", e.err) }

// maxSigProblems bounds how many records of one .sig file are named.
const maxSigProblems = 10

// readSigs reads records/<from>-<to>.sig (latest version): seq → raw
// signature (nil for a record anchored unsigned). found is false when no
// such object exists. A malformed file is an error naming the line.
func readSigs(ctx context.Context, s Store, key string, versions int, from, to uint64) (map[uint64][]byte, bool, error) {
	if versions == 0 {
		return nil, false, nil
	}
	b, err := readObject(ctx, s, key, "")
	if err != nil {
		return nil, true, &sigsReadError{err}
	}
	sigs, err := parseSigs(b, from, to)
	return sigs, true, err
}

// parseSigs parses a .sig file: one line per record from..to, in order,
// "<seq> <base64 signature>" or "<seq>".
func parseSigs(b []byte, from, to uint64) (map[uint64][]byte, error) {
	out := map[uint64][]byte{}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, errors.New("does not end in a newline")
	}
	lines := strings.Split(string(b[:len(b)-1]), "\n")
	if uint64(len(lines)) != to-from+1 {
		return nil, fmt.Errorf("has %d lines for the %d records %d..%d", len(lines), to-from+1, from, to)
	}
	for i, l := range lines {
		want := from + uint64(i)
		num, sig, hasSig := strings.Cut(l, " ")
		if num != strconv.FormatUint(want, 10) {
			return nil, fmt.Errorf("line %d is %.40q, want record %d", i+1, l, want)
		}
		if !hasSig {
			out[want] = nil
			continue
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(sig)
		if err != nil || len(raw) != ed25519.SignatureSize {
			return nil, fmt.Errorf("line %d: the signature of record %d is not base64 of %d bytes", i+1, want, ed25519.SignatureSize)
		}
		out[want] = raw
	}
	return out, nil
}

// keyState follows the host key in force through the anchored records: a
// HOST_KEY record introduces a key in force from itself on (it signs
// itself), a KEY_ROTATED record names the key in force from the next
// record. The records are bound to the signed checkpoints by their roots,
// so the keys they name are as trustworthy as the checkpoints.
type keyState struct {
	pub  ed25519.PublicKey // in force; nil before the first HOST_KEY
	next ed25519.PublicKey // named by KEY_ROTATED, in force from the next record
	// keyRecordsOnly verifies the signatures of HOST_KEY and KEY_ROTATED
	// records only and requires the others to be present (Follow's
	// default: those records are vouched for by the checkpoint signature
	// over the root their hashes reproduce).
	keyRecordsOnly bool
}

// check checks record seq's anchored signature and advances the key in
// force; it returns what is wrong, or "". usable is false when the .sig
// file is absent or unreadable.
func (k *keyState) check(seq uint64, rec []byte, ev custody.Event, sigs map[uint64][]byte, usable bool) string {
	if k.next != nil {
		k.pub, k.next = k.next, nil
	}
	if ev.Type == custody.HostKey {
		pub, err := signing.ParsePublicBase64(ev.Details["public_key"])
		if err != nil {
			return fmt.Sprintf("the HOST_KEY record's public key: %v", err)
		}
		k.pub = pub
	}
	if ev.Type == custody.KeyRotated {
		defer func() {
			if pub, err := signing.ParsePublicBase64(ev.Details["public_key"]); err == nil {
				k.next = pub
			}
		}()
	}
	sig := sigs[seq]
	switch {
	case k.pub == nil && sig != nil:
		return "signed, but no host key is in force at this record"
	case k.pub == nil:
		return ""
	case !usable:
		return "no anchored signature, but a host key is in force (the .sig file is missing or unusable)"
	case sig == nil:
		return "no anchored signature, but a host key is in force"
	case k.keyRecordsOnly && ev.Type != custody.HostKey && ev.Type != custody.KeyRotated:
	case !ed25519.Verify(k.pub, rec, sig):
		return fmt.Sprintf("the signature does not verify with the key in force (%s) over the anchored record", signing.KeyID(k.pub))
	}
	return ""
}
