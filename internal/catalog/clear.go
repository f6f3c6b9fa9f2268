package catalog

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tlog"
)

// Errors of Clear. ErrNotFlagged and ErrNotTrusted are a request that does
// not apply; a *StillBrokenError is the history still failing its checks.
var (
	ErrNotTrusted = errors.New("not a trusted host (console.hosts does not list it)")
	ErrNotFlagged = errors.New("not flagged: its anchored history is neither broken nor withheld")
)

// StillBrokenError: Clear re-checked the host's anchored history and it
// still does not verify; nothing was cleared.
type StillBrokenError struct {
	Host     string
	Problems []anchor.Problem
}

func (e *StillBrokenError) Error() string {
	return fmt.Sprintf("the anchored history of %s still does not verify (%d problem(s), the first: %s); nothing cleared",
		e.Host, len(e.Problems), e.Problems[0])
}

// Unwrap makes a StillBrokenError an anchor.ErrBroken.
func (e *StillBrokenError) Unwrap() error { return anchor.ErrBroken }

// Cleared is what Clear accepted: the host's history as it was re-checked.
type Cleared struct {
	Host string
	// Size is the newest checkpoint of the re-checked history (the tree
	// size), Root its root (hex) and Object its key.
	Size   uint64
	Root   string
	Object string
	// IndexedSize is how far the index had followed the host; the next
	// Sync continues from there.
	IndexedSize uint64
	// Was are the problems that flagged the host; Withheld whether the
	// audit had withheld it.
	Was      []anchor.Problem
	Withheld bool
}

// Clear lifts a trusted host's broken or withheld flag, only if its
// anchored history now verifies. Why: a flag is a custodian's business to
// lift, and a flag lifted on someone's word would serve records nobody
// re-checked.
//
// The re-check starts from the checkpoint the index had followed (its
// tail: checked when it was followed, before the flag), not from the
// host's first record, so the host's sync does not wait for its whole
// history to be read again:
//   - the indexed records up to the tail are hashed again (locally) and
//     must reproduce the tail's root, and the checkpoint of that size the
//     store holds must open with a key followed and carry that root: what
//     is served is a prefix of the history in the store;
//   - from there the host is followed with the configured (pinned) key to
//     its newest checkpoint, every record, chain link, signature,
//     consistency proof and KEY_ROTATED checked as Sync checks them;
//   - the whole anchored prefix is audited as Audit does (every
//     checkpoint's versions and signature with the keys followed and
//     reached, the consistency proofs between them, objects evidenced does
//     not write).
//
// A host whose index holds nothing (tail 0) is followed from its start.
// What this does not do that a follow from the start would: re-read the
// store's copies of the records up to the tail (the index's copies, which
// are what is served and exported, are re-hashed instead, and a second
// version of any stored one is seen by recordObjectsOnce).
//
// record is called with what was accepted before the flag is lifted, with
// no Sync or Audit running; if it fails nothing is cleared. The index
// keeps what it holds; the next Sync continues from where it stopped.
func (c *Catalog) Clear(ctx context.Context, host string, record func(Cleared) error) (Cleared, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	t, ok := c.trustedHost(host)
	if !ok {
		return Cleared{}, fmt.Errorf("clear %s: %w", host, ErrNotTrusted)
	}
	hs, err := c.hostState(host)
	if err != nil {
		return Cleared{}, err
	}
	if !hs.Withheld && len(hs.Broken) == 0 {
		return Cleared{}, fmt.Errorf("clear %s: %w", host, ErrNotFlagged)
	}
	still := func(p []anchor.Problem) (Cleared, error) {
		return Cleared{}, &StillBrokenError{Host: host, Problems: p}
	}
	vers, err := keyVerifiers(host, hs.Keys)
	if err != nil {
		return Cleared{}, fmt.Errorf("clear %s: %w", host, err)
	}
	seen := map[string]bool{}
	for _, k := range hs.Keys {
		raw, _ := base64.StdEncoding.DecodeString(k) // decoded by keyVerifiers
		seen[string(raw)] = true
	}
	tail := hs.Tail
	if tail.Size > 0 {
		// A read that could not be made (the store timed out, the
		// clear was cancelled) is an error: the flag stays and the
		// custodian tries again, but nothing was found wrong (exit 1,
		// not 3), as with Follow's and CheckWith's errors below.
		p, err := c.indexedPrefix(ctx, host, tail, vers)
		if err != nil {
			return Cleared{}, fmt.Errorf("clear %s: %w", host, err)
		}
		if p != nil {
			return still([]anchor.Problem{*p})
		}
		listed, err := anchor.ListNoteSizes(ctx, c.store, host)
		if err != nil {
			return Cleared{}, fmt.Errorf("clear %s: list the checkpoints the index followed: %w", host, err)
		}
		if p, err = c.recordObjectsOnce(ctx, host, tail.Size, listed); err != nil {
			return Cleared{}, fmt.Errorf("clear %s: %w", host, err)
		}
		if p != nil {
			return still([]anchor.Problem{*p})
		}
	}

	// Follow from the tail to the newest checkpoint, keeping the keys
	// reached for the audit.
	object := anchor.CheckpointKey(host, tail.Size)
	for {
		if err := ctx.Err(); err != nil {
			return Cleared{}, err
		}
		b, next, ok, err := anchor.Follow(ctx, c.store, host, t.Key, tail, anchor.FollowOptions{AllSignatures: c.allSigs})
		var be *anchor.BrokenError
		if errors.As(err, &be) {
			return still(be.Problems)
		}
		if err != nil {
			return Cleared{}, fmt.Errorf("clear %s: re-read its anchored history: %w", host, err)
		}
		if !ok {
			break
		}
		for _, k := range [][]byte{next.Key, next.Next} {
			if len(k) == 0 || seen[string(k)] {
				continue
			}
			seen[string(k)] = true
			v, err := signing.NoteVerifier(host, k)
			if err != nil {
				return Cleared{}, fmt.Errorf("clear %s: %w", host, err)
			}
			vers = append(vers, v)
		}
		tail, object = next, b.Object
	}
	if tail.Size == 0 {
		return still([]anchor.Problem{{Object: anchor.Prefix(host), What: "nothing anchored that checks out with the configured key"}})
	}
	rep, err := anchor.CheckWith(ctx, nil, c.store, host, anchor.CheckOptions{Verifiers: vers, SkipRecords: true})
	if err != nil {
		return Cleared{}, fmt.Errorf("clear %s: audit its anchored history: %w", host, err)
	}
	if !rep.OK() {
		return still(rep.Problems)
	}
	cl := Cleared{Host: host, Size: tail.Size, Root: tail.Root.String(), Object: object,
		IndexedSize: hs.Tail.Size, Was: hs.Broken, Withheld: hs.Withheld}
	if err := record(cl); err != nil {
		return Cleared{}, err
	}
	hs.Broken, hs.Withheld = nil, false
	// What earlier audits verified is not carried over a flag: the next
	// audit of the host reads its whole prefix again.
	if err := c.db.Update(func(tx *bolt.Tx) error {
		if err := forgetAudit(tx, host); err != nil {
			return err
		}
		return putHost(tx, hs)
	}); err != nil {
		return Cleared{}, fmt.Errorf("clear %s: %w", host, err)
	}
	c.log.Warn("a custodian cleared a dock host's flag; its history re-checked and is served again", "host", host,
		"checkpoint", cl.Size, "problems_cleared", len(cl.Was), "withheld", cl.Withheld)
	return cl, nil
}

// indexedPrefix checks that what the index holds of host up to its tail is
// a prefix of the history in the store: the indexed records hash to the
// tail's root, and the store's checkpoint of the tail's size opens with a
// key in vers and carries that root. It returns the problem found, if any. A
// checkpoint the store no longer has (or refuses for good) is a problem; a
// read that failed for a reason that may pass is the error.
func (c *Catalog) indexedPrefix(ctx context.Context, host string, tail anchor.Tail, vers []note.Verifier) (*anchor.Problem, error) {
	key := anchor.CheckpointKey(host, tail.Size)
	var f tlog.Frontier
	n := uint64(0)
	err := c.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bRecords).Cursor()
		pre := hostPrefix(host)
		for k, v := cur.Seek(recordKey(host, 1)); k != nil && bytes.HasPrefix(k, pre) && n < tail.Size; k, v = cur.Next() {
			if len(k) != len(pre)+8 || binary.BigEndian.Uint64(k[len(pre):]) != n+1 {
				return fmt.Errorf("record %d is not indexed", n+1)
			}
			_, rec, _ := bytes.Cut(v, []byte("\n"))
			f.Append(tlog.LeafHash(rec))
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		return &anchor.Problem{Object: key, What: "the index's records of the host up to it: " + err.Error() + "; delete the index to rebuild it from the store"}, nil
	case n != tail.Size || f.Root() != tail.Root:
		return &anchor.Problem{Object: key, What: fmt.Sprintf("the index's %d records of the host do not reproduce the root it followed (%s); delete the index to rebuild it from the store", n, tail.Root)}, nil
	}
	data, err := c.store.Open(ctx, key, "")
	if err != nil {
		// Gone, or refused for good: what the index followed is not in
		// the store as it was. Anything else may pass.
		if objstore.IsPermanent(err) || errors.Is(err, objstore.ErrNotFound) {
			return &anchor.Problem{Object: key, What: "the checkpoint the index followed cannot be read: " + err.Error()}, nil
		}
		return nil, fmt.Errorf("read the checkpoint the index followed, %s: %w", key, err)
	}
	defer data.Close()
	msg, err := io.ReadAll(io.LimitReader(data, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read the checkpoint the index followed, %s: %w", key, err)
	}
	for _, v := range vers {
		if cp, err := tlog.OpenCheckpoint(msg, custody.CheckpointOrigin(host), v); err == nil {
			if cp.Size != tail.Size || cp.Root != tail.Root {
				break
			}
			return nil, nil
		}
	}
	return &anchor.Problem{Object: key, What: "the checkpoint the index followed is not the one the store holds (it does not open with a key followed, or its root differs); delete the index to rebuild it from the store"}, nil
}

// recordObjectsOnce checks that each records and signatures object of host
// up to size that a follow reads (a batch from just after one checkpoint
// to the next, of the sizes listed holds a note of) still has one
// version, as anchor.Follow checks each object it follows: evidenced
// writes each once. Why here: a version added behind the tail is seen
// neither by the audit (it reads the checkpoints) nor by a follow from
// the tail, and a clear that followed from the first record saw it; its
// newest copy, the one a reader of the store gets, is not what was
// checked. The records an interrupted anchor left (no checkpoint at their
// end) are not followed, by this or by Follow. Listing costs no read of
// the records. It returns the problem, or nil, and the error of a listing
// that could not be made. Clear and Audit both check it; the audit with
// the checkpoints its anchor.CheckWith listed (Report.Listed), so that a
// run lists a host's checkpoints/ once.
func (c *Catalog) recordObjectsOnce(ctx context.Context, host string, size uint64, listed *anchor.NoteSizes) (*anchor.Problem, error) {
	// The listing is read a page at a time (objstore.EachVersionPage): a
	// host's prefix grows for years, and what is kept of it is a count
	// per key of one page.
	checkpoint := func(n uint64) bool { return n == 0 || listed.Has(n) }
	prefix := anchor.Prefix(host) + "records/"
	var found *anchor.Problem
	err := objstore.EachVersionPage(ctx, c.store, prefix, func(vs []objstore.Version) error {
		// Every version of a key is in the page that lists it.
		versions := map[string]int{}
		for _, v := range vs {
			name, _, _ := strings.Cut(strings.TrimPrefix(v.Key, prefix), ".")
			first, last, _ := strings.Cut(name, "-")
			from, ferr := strconv.ParseUint(first, 10, 64)
			to, terr := strconv.ParseUint(last, 10, 64)
			if ferr == nil && terr == nil && from > 0 && to <= size && checkpoint(from-1) && checkpoint(to) {
				versions[v.Key]++
			}
		}
		for _, k := range slices.Sorted(maps.Keys(versions)) {
			if n := versions[k]; n > 1 {
				found = &anchor.Problem{Object: k, What: fmt.Sprintf("%d versions: evidenced writes it once, so a version was added after it was anchored (behind the checkpoint the index followed)", n)}
				return errFound
			}
		}
		return nil
	})
	if found != nil {
		return found, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list the records the index followed: %w", err)
	}
	return nil, nil
}

// errFound stops a paged listing once what it looked for is found.
var errFound = errors.New("found")
