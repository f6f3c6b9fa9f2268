package anchor

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tlog"
)

// Tail is how far a reader that does not hold the host's ledger (a fleet
// console) has followed one host's anchored history, and what it needs to
// check the next anchor without reading the earlier ones again: the tree
// frontier, the last record's hash and the host key in force. It is plain
// data so the reader can keep it between runs; a reader that loses it
// starts again from the zero Tail and arrives at the same one.
type Tail struct {
	// Size is the last checkpoint followed (0: none yet); Root its root.
	Size uint64    `json:"size"`
	Root tlog.Hash `json:"root"`
	// Frontier is the Merkle frontier at Size (tlog.Frontier.MarshalBinary).
	Frontier []byte `json:"frontier"`
	// PrevHash is the hash of record Size (custody.GenesisHash at 0).
	PrevHash string `json:"prev_hash"`
	// Key is the host key in force after record Size; Next the key a
	// KEY_ROTATED record Size named, in force from record Size+1.
	Key  []byte `json:"key,omitempty"`
	Next []byte `json:"next,omitempty"`
}

// Batch is one anchor of a host, checked: the records From..To and the
// signed checkpoint of size To that covers them.
type Batch struct {
	From, To uint64
	// Records are the anchored records in seq order, decoded.
	Records []FollowedRecord
	// Checkpoint is the signed checkpoint of size To; Note its bytes.
	Checkpoint tlog.Checkpoint
	Note       []byte
	// Object is the checkpoint's key.
	Object string
}

// FollowedRecord is one anchored record as it was checked.
type FollowedRecord struct {
	Seq uint64
	// Bytes are the record's exact stored bytes; Event their decoding.
	Bytes []byte
	Event custody.Event
	// KeyID is the host key that signed the record ("" for a record
	// anchored before the ledger had a key).
	KeyID string
}

// ErrBroken is wrapped by Follow when what is anchored next does not
// continue the history followed so far: a fork, a gap, a checkpoint or
// record that fails its signature, a record that does not hash into its
// checkpoint. The Problems say which object; nothing of the batch may be
// trusted, and the Tail is not advanced.
var ErrBroken = errors.New("anchored history broken")

// BrokenError is the error Follow returns for a break.
type BrokenError struct{ Problems []Problem }

func (e *BrokenError) Error() string {
	var b strings.Builder
	b.WriteString(ErrBroken.Error())
	for _, p := range e.Problems {
		b.WriteString("; ")
		b.WriteString(p.String())
	}
	return b.String()
}

func (e *BrokenError) Unwrap() error { return ErrBroken }

// FollowOptions tune Follow.
type FollowOptions struct {
	// AllSignatures verifies every record's own signature. Without it
	// only the HOST_KEY and KEY_ROTATED records' signatures are verified
	// (a key changes only by a record the key before it signed) and every
	// other record's signature must be present: those records are bound
	// to the checkpoint by the root their hashes reproduce, and the
	// checkpoint is signed by the key in force. Verifying an Ed25519
	// signature costs more than everything else indexing a record does.
	AllSignatures bool
}

// Follow reads and checks the next anchor of hostID after t. pinned is the
// host's key as the reader learned it from outside the store: the first
// HOST_KEY record must introduce exactly that key, and any later key is
// trusted only through a KEY_ROTATED record signed by the key before it. A
// key the store offers (keys/*.pem) is never trusted on its own word.
//
// It lists only the records of the next anchor (records/<Size+1>-*), so a
// reader that polls costs one narrow listing per host when nothing is new.
// It returns ok false when nothing new is anchored (or the next anchor was
// interrupted before its checkpoint: the checkpoint is written last); a
// *BrokenError (ErrBroken) when the next anchor does not continue t; any
// other error is operational (the store could not be read) and worth a
// retry.
func Follow(ctx context.Context, s Store, hostID string, pinned ed25519.PublicKey, t Tail, o FollowOptions) (Batch, Tail, bool, error) {
	if s == nil {
		return Batch{}, t, false, ErrNoStore
	}
	var probs []Problem
	problem := func(key, version, format string, args ...any) {
		probs = append(probs, Problem{Object: key, VersionID: version, What: fmt.Sprintf(format, args...)})
	}
	broken := func() (Batch, Tail, bool, error) { return Batch{}, t, false, &BrokenError{Problems: probs} }

	from := t.Size + 1
	prefix := fmt.Sprintf("%srecords/%d-", Prefix(hostID), from)
	vs, err := s.ListVersions(ctx, prefix)
	if err != nil {
		return Batch{}, t, false, fmt.Errorf("follow %s: list %s: %w", hostID, prefix, err)
	}
	files := map[uint64]int{} // to → versions of the .jsonl
	sigVersions := map[uint64]int{}
	for _, v := range vs {
		rest := strings.TrimPrefix(v.Key, prefix)
		num, ext, _ := strings.Cut(rest, ".")
		to, err := strconv.ParseUint(num, 10, 64)
		if err != nil || strconv.FormatUint(to, 10) != num || to < from {
			problem(v.Key, v.VersionID, "an object evidenced does not write in records/")
			continue
		}
		switch ext {
		case "jsonl":
			files[to]++
		case "sig":
			sigVersions[to]++
		default:
			problem(v.Key, v.VersionID, "an object evidenced does not write in records/")
		}
	}
	// Which of the record files has its checkpoint: only one may. Files
	// without one are an anchor interrupted before its checkpoint (Anchor
	// writes the checkpoint last) and are left alone.
	var tos []uint64
	notes := map[uint64][]Version{}
	proofs := map[uint64][]Version{}
	for to := range files {
		cvs, err := s.ListVersions(ctx, fmt.Sprintf("%scheckpoints/%d.", Prefix(hostID), to))
		if err != nil {
			return Batch{}, t, false, fmt.Errorf("follow %s: list checkpoint %d: %w", hostID, to, err)
		}
		for _, v := range cvs {
			switch n, ext, ok := parseCheckpointName(hostID, v.Key); {
			case ok && n == to && ext == "note":
				notes[to] = append(notes[to], v)
			case ok && n == to && ext == "proof":
				proofs[to] = append(proofs[to], v)
			}
		}
		if len(notes[to]) > 0 {
			tos = append(tos, to)
		}
	}
	// In order, so that what is reported (and followed) does not depend on
	// map iteration.
	slices.Sort(tos)
	switch {
	case len(tos) == 0 && len(probs) == 0:
		return Batch{}, t, false, nil
	case len(tos) == 0:
		return broken()
	case len(tos) > 1:
		var keys []string
		for _, to := range tos {
			keys = append(keys, CheckpointKey(hostID, to))
		}
		problem(prefix, "", "%d checkpointed continuations after checkpoint %d (%s): the host's history forks", len(tos), t.Size, strings.Join(keys, ", "))
		return broken()
	}
	to := tos[0]
	b := Batch{From: from, To: to, Object: CheckpointKey(hostID, to)}
	// The batch's records, room made once: appending them one by one
	// regrew the slice a dozen times per anchor (growslice and its copies
	// were ≈ 4 % of indexing's CPU, docs/BENCHMARKS.md). The count comes
	// from an object's name, so it is bounded: a name is not trusted to
	// size an allocation.
	b.Records = make([]FollowedRecord, 0, min(to-from+1, 1<<16))
	rkey, skey := RecordsKey(hostID, from, to), SigsKey(hostID, from, to)
	for key, n := range map[string]int{rkey: files[to], skey: sigVersions[to], b.Object: len(notes[to]), proofKey(hostID, to): len(proofs[to])} {
		if n > 1 {
			problem(key, "", "%d versions: evidenced writes it once, so a version was added after it was anchored", n)
		}
	}

	// The records: chained, hashed into the tree, each signature checked
	// with the key in force, the keys followed from the pinned one.
	f, err := tlog.UnmarshalFrontier(t.Frontier)
	if err != nil && t.Size > 0 {
		return Batch{}, t, false, fmt.Errorf("follow %s: the followed frontier: %w", hostID, err)
	}
	if t.Size == 0 {
		f = tlog.Frontier{}
	}
	prevHash := t.PrevHash
	if t.Size == 0 || prevHash == "" {
		prevHash = custody.GenesisHash
	}
	keys := keyState{pub: t.Key, next: t.Next, keyRecordsOnly: !o.AllSignatures}
	sigs, sigsFound, sigErr := readSigs(ctx, s, skey, sigVersions[to], from, to)
	if sigErr != nil {
		problem(skey, "", "%v", sigErr)
	}
	rc, err := s.Open(ctx, rkey, "")
	if err != nil {
		return Batch{}, t, false, fmt.Errorf("follow %s: open %s: %w", hostID, rkey, err)
	}
	var keyIDOf ed25519.PublicKey // the key keyID names
	var keyID string
	msg := hashRecords(bufio.NewReaderSize(rc, 64<<10), &f, to, &prevHash, func(seq uint64, rec []byte, ev custody.Event) {
		inForce := keys.pub
		if keys.next != nil {
			inForce = keys.next
		}
		if ev.Type == custody.HostKey {
			pub, err := signing.ParsePublicBase64(ev.Details["public_key"])
			switch {
			case err != nil:
			case inForce == nil && !pub.Equal(pinned):
				problem(rkey, "", "record %d: HOST_KEY introduces key %s, not the key configured for %s (%s)", seq, signing.KeyID(pub), hostID, signing.KeyID(pinned))
			case inForce != nil && !pub.Equal(inForce):
				problem(rkey, "", "record %d: HOST_KEY introduces key %s while key %s is in force: a key changes only by a KEY_ROTATED record signed by the key in force", seq, signing.KeyID(pub), signing.KeyID(inForce))
			}
		}
		if ev.Type == custody.KeyRotated && inForce != nil && ev.Details["previous_key_id"] != signing.KeyID(inForce) {
			problem(rkey, "", "record %d rotates from key %q but key %s is in force", seq, ev.Details["previous_key_id"], signing.KeyID(inForce))
		}
		if what := keys.check(seq, rec, ev, sigs, sigsFound && sigErr == nil); what != "" {
			problem(skey, "", "record %d: %s", seq, what)
		}
		r := FollowedRecord{Seq: seq, Bytes: bytes.Clone(rec), Event: ev}
		if keys.pub != nil {
			// A key id is a hash of the key's DER encoding: computed
			// once per key, not once per record (it was a tenth of
			// indexing's CPU).
			if !keyIDOf.Equal(keys.pub) {
				keyIDOf, keyID = keys.pub, signing.KeyID(keys.pub)
			}
			r.KeyID = keyID
		}
		b.Records = append(b.Records, r)
	})
	rc.Close()
	if msg != "" {
		problem(rkey, "", "%s", msg)
		return broken()
	}

	// The checkpoint: signed by the key in force at its last record (or
	// the one a rotation in that record just named), never by another.
	signer := keys.pub
	if keys.next != nil {
		signer = keys.next
	}
	var vers []note.Verifier
	for _, k := range []ed25519.PublicKey{signer, keys.pub} {
		if k == nil {
			continue
		}
		v, err := signing.NoteVerifier(hostID, k)
		if err != nil {
			return Batch{}, t, false, fmt.Errorf("follow %s: note verifier: %w", hostID, err)
		}
		vers = append(vers, v)
	}
	if len(vers) == 0 {
		problem(b.Object, "", "no host key is in force at record %d, so nothing can have signed this checkpoint", to)
		return broken()
	}
	origin := custody.CheckpointOrigin(hostID)
	for _, v := range notes[to] {
		nb, err := readObject(ctx, s, b.Object, v.VersionID)
		if err != nil {
			return Batch{}, t, false, fmt.Errorf("follow %s: read %s: %w", hostID, b.Object, err)
		}
		c, _, err := openNote(nb, origin, vers)
		switch {
		case err != nil:
			problem(b.Object, v.VersionID, "the signed checkpoint does not verify with the key in force (%s): %v", signing.KeyID(signer), err)
			continue
		case c.Size != to:
			problem(b.Object, v.VersionID, "holds a checkpoint of size %d, not %d as its name says", c.Size, to)
			continue
		case c.Root != f.Root():
			problem(b.Object, v.VersionID, "the records %d..%d hash to root %s but the checkpoint says %s: an anchored record was altered", from, to, f.Root(), c.Root)
			continue
		}
		if b.Note == nil {
			b.Checkpoint, b.Note = c, nb
		}
	}

	// The proof from the last checkpoint followed: the records already
	// prove the extension (they were hashed onto the same frontier); a
	// proof that says otherwise is a forgery worth naming all the same.
	if t.Size > 0 && b.Note != nil {
		pk := proofKey(hostID, to)
		if len(proofs[to]) == 0 {
			problem(pk, "", "missing: nothing proves checkpoint %d extends checkpoint %d", to, t.Size)
		}
		for _, v := range proofs[to] {
			pb, err := readObject(ctx, s, pk, v.VersionID)
			if err != nil {
				return Batch{}, t, false, fmt.Errorf("follow %s: read %s: %w", hostID, pk, err)
			}
			p, err := tlog.ParseProof(pb)
			if err == nil && (p.Kind != tlog.Consistency || p.A != t.Size || p.B != to) {
				err = fmt.Errorf("is a %s proof %d→%d, want consistency %d→%d", p.Kind, p.A, p.B, t.Size, to)
			}
			if err == nil {
				err = p.Verify(tlog.Hash{}, t.Root, b.Checkpoint.Root)
			}
			if err != nil {
				problem(pk, v.VersionID, "%v", err)
			}
		}
	}
	if len(probs) > 0 {
		return broken()
	}
	fb, err := f.MarshalBinary()
	if err != nil {
		return Batch{}, t, false, fmt.Errorf("follow %s: %w", hostID, err)
	}
	next := Tail{Size: to, Root: b.Checkpoint.Root, Frontier: fb, PrevHash: prevHash, Key: keys.pub, Next: keys.next}
	return b, next, true, nil
}

// Hosts lists the host ids that have anything anchored under _custody/:
// from the store's directory listing when it has one
// (objstore.Directories, one short answer whatever the fleet wrote), else
// from one listing of every version under the prefix.
func Hosts(ctx context.Context, s Lister) ([]string, error) {
	if d, ok := s.(objstore.Directories); ok {
		hosts, err := d.ListDirectories(ctx, "_custody/")
		if err != nil {
			return nil, fmt.Errorf("list anchored hosts: %w", err)
		}
		return hosts, nil
	}
	vs, err := s.ListVersions(ctx, "_custody/")
	if err != nil {
		return nil, fmt.Errorf("list anchored hosts: %w", err)
	}
	seen := map[string]bool{}
	var out []string
	for _, v := range vs {
		h, _, ok := strings.Cut(strings.TrimPrefix(v.Key, "_custody/"), "/")
		if ok && h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out, nil
}
