// Package witness keeps a copy of every signed tree head of the custody
// ledger outside state_dir, and reads the newest one back.
//
// Anchoring puts checkpoints off the host only every
// custody.checkpoint_interval, and only with an object store. Records
// written in between (a find, a custody look, a dock) could otherwise be
// trimmed by anyone who can rewrite the ledger file, head and Merkle tree
// recomputed, without the host key: the trimmed ledger is consistent in
// itself. The witness closes that window: every head the ledger signs is
// also written where write access to state_dir does not reach (the systemd
// journal, or an append-only file elsewhere), and verify and the daemon's
// start check that the ledger still reproduces the newest witnessed head.
//
// What is witnessed is the signed note itself, so a head planted in the
// witness by someone else (any local user can write to the journal) counts
// only when its signature verifies under a host key the ledger vouches for,
// for the sizes that key signed: Latest skips the rest.
package witness

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/tlog"
)

// Head is one witnessed signed tree head.
type Head struct {
	Host string `json:"host"`
	Size uint64 `json:"tree_size"`
	// Root is the Merkle root at Size, base64 (as in the note).
	Root string `json:"root"`
	// Key is the fingerprint of the key that signed Note
	// (signing.Fingerprint: "SHA256:...").
	Key string `json:"key"`
	// Note is the signed checkpoint: the only part Latest trusts, and only
	// once its signature verifies.
	Note string    `json:"note"`
	At   time.Time `json:"at"`
}

// Witness is where heads are written and read back.
type Witness interface {
	// Write records h durably before it returns.
	Write(h Head) error
	// Recent returns recently witnessed heads of host, in any order (the
	// newest among them included); nothing witnessed yet is an empty
	// list, not an error. An error means the witness could not be read.
	Recent(ctx context.Context, host string) ([]Head, error)
	// String says where the witness is, for messages.
	String() string
}

// ErrUnreadable wraps every failure to read a witness: the ledger could
// not be compared with it, which is not a finding about the ledger.
var ErrUnreadable = errors.New("witness unreadable")

// Key is a host key a witnessed head counts under, and the tree sizes it
// signed heads for: From to To (To 0: no end). After a key rotation the
// ledger signs the heads up to its KEY_ROTATED record with the key before
// and the later ones with the next key; a head signed by a key outside
// its period is not the host's (a leaked rotated-out key signs no head
// past its rotation).
type Key struct {
	Verifier note.Verifier
	From, To uint64
}

func (k Key) covers(size uint64) bool { return size >= k.From && (k.To == 0 || size <= k.To) }

// Latest returns the largest head of host among w's recent ones whose note
// verifies, with the ledger's origin, under a key of keys whose period
// covers its size, and that key. skipped counts the heads that did not
// (planted, or signed outside their key's period): they are never
// trusted.
func Latest(ctx context.Context, w Witness, host, origin string, keys []Key) (h Head, c tlog.Checkpoint, by note.Verifier, found bool, skipped int, err error) {
	hs, err := w.Recent(ctx, host)
	if err != nil {
		return Head{}, tlog.Checkpoint{}, nil, false, 0, fmt.Errorf("%w: %s: %w", ErrUnreadable, w, err)
	}
	for _, x := range hs {
		if x.Host != host {
			continue
		}
		xc, v, ok := open(x, origin, keys)
		if !ok {
			skipped++
			continue
		}
		if !found || xc.Size > c.Size {
			h, c, by, found = x, xc, v, true
		}
	}
	return h, c, by, found, skipped, nil
}

// open verifies x under the first key of keys that signed it and whose
// period covers its size.
func open(x Head, origin string, keys []Key) (tlog.Checkpoint, note.Verifier, bool) {
	for _, k := range keys {
		xc, err := tlog.OpenCheckpoint([]byte(x.Note), origin, k.Verifier)
		if err == nil && xc.Size == x.Size && k.covers(xc.Size) {
			return xc, k.Verifier, true
		}
	}
	return tlog.Checkpoint{}, nil, false
}
