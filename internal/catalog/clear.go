package catalog

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/signing"
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

// Clear lifts a trusted host's broken or withheld flag, only if its whole
// anchored history now verifies: followed again from its first record
// with the configured (pinned) key, every record, chain link, signature,
// consistency proof and KEY_ROTATED checked as Sync checks them; audited
// as Audit does with the keys reached; and the checkpoint the index
// stopped at is one of that history's (so what is indexed is a prefix of
// what was checked). Why: a flag is a custodian's business to lift, and a
// flag lifted on someone's word would serve records nobody re-checked.
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

	// Follow the whole history again, keeping only what the checks after
	// it need: the checkpoints' roots and the keys reached.
	var tail anchor.Tail
	var last anchor.Batch
	roots := map[uint64]string{}
	var vers []note.Verifier
	seen := map[string]bool{}
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
		roots[next.Size] = next.Root.String()
		tail, last = next, b
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
	if hs.Tail.Size > 0 && roots[hs.Tail.Size] != hs.Tail.Root.String() {
		return still([]anchor.Problem{{Object: anchor.CheckpointKey(host, hs.Tail.Size),
			What: "the checkpoint the index followed is not one of the history that now verifies; delete the index to rebuild it from the store"}})
	}
	cl := Cleared{Host: host, Size: tail.Size, Root: tail.Root.String(), Object: last.Object,
		IndexedSize: hs.Tail.Size, Was: hs.Broken, Withheld: hs.Withheld}
	if err := record(cl); err != nil {
		return Cleared{}, err
	}
	hs.Broken, hs.Withheld = nil, false
	if err := c.putHost(hs); err != nil {
		return Cleared{}, fmt.Errorf("clear %s: %w", host, err)
	}
	c.log.Warn("a custodian cleared a dock host's flag; its history re-checked and is served again", "host", host,
		"checkpoint", cl.Size, "problems_cleared", len(cl.Was), "withheld", cl.Withheld)
	return cl, nil
}
