package custody

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tlog"
)

// CheckpointOrigin is the origin line of host's checkpoints:
// "evidenced/<host id>".
func CheckpointOrigin(host string) string { return "evidenced/" + host }

// TreeHead is the unsigned checkpoint of the ledger now: its size (the head
// seq) and Merkle root, read from v1/meta in O(log n). On a schema 1 ledger
// opened read-only it is computed from the records.
func (l *Ledger) TreeHead(ctx context.Context) (tlog.Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return tlog.Checkpoint{}, err
	}
	if l.version < 2 {
		seq, _, err := l.Head(ctx)
		if err != nil {
			return tlog.Checkpoint{}, err
		}
		root, err := l.RootAt(ctx, seq)
		if err != nil {
			return tlog.Checkpoint{}, err
		}
		return tlog.Checkpoint{Origin: CheckpointOrigin(l.host), Size: seq, Root: root}, nil
	}
	var f tlog.Frontier
	err := l.db.View(func(tx *bolt.Tx) error {
		b, err := buckets(tx)
		if err != nil {
			return err
		}
		f, err = readTree(b.meta)
		return err
	})
	if err != nil {
		return tlog.Checkpoint{}, fmt.Errorf("ledger %s tree head: %w", l.path, err)
	}
	return tlog.Checkpoint{Origin: CheckpointOrigin(l.host), Size: f.Size, Root: f.Root()}, nil
}

// Checkpoint returns the signed note of TreeHead (C2SP tlog-checkpoint,
// signed with Options.Signer as "evidenced-<host id>"): the statement to
// anchor off-host. The signer must be the key in force (ErrKeyMismatch).
func (l *Ledger) Checkpoint(ctx context.Context) ([]byte, error) {
	msg, _, err := l.checkpoint(ctx)
	return msg, err
}

func (l *Ledger) checkpoint(ctx context.Context) ([]byte, tlog.Checkpoint, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.checkpointLocked(ctx)
}

// checkpointLocked is checkpoint with l.mu held.
func (l *Ledger) checkpointLocked(ctx context.Context) ([]byte, tlog.Checkpoint, error) {
	key := l.signer
	if key == nil {
		return nil, tlog.Checkpoint{}, fmt.Errorf("ledger %s checkpoint: %w", l.path, ErrNoSigner)
	}
	var inForce []byte
	if err := l.db.View(func(tx *bolt.Tx) error {
		b, err := buckets(tx)
		if err == nil {
			inForce, _ = keyInForce(b.keys)
		}
		return err
	}); err != nil {
		return nil, tlog.Checkpoint{}, fmt.Errorf("ledger %s checkpoint: %w", l.path, err)
	}
	if inForce != nil && !bytes.Equal(inForce, key.pem) {
		return nil, tlog.Checkpoint{}, fmt.Errorf("ledger %s checkpoint: %w", l.path, ErrKeyMismatch)
	}
	c, err := l.TreeHead(ctx)
	if err != nil {
		return nil, tlog.Checkpoint{}, err
	}
	ns, err := signing.NoteSignerFor(l.host, key.s)
	if err != nil {
		return nil, tlog.Checkpoint{}, fmt.Errorf("ledger %s checkpoint: %w", l.path, err)
	}
	msg, err := tlog.SignCheckpoint(c, ns)
	if err != nil {
		return nil, tlog.Checkpoint{}, fmt.Errorf("ledger %s checkpoint: %w", l.path, err)
	}
	return msg, c, nil
}

var errStop = errors.New("stop")

// leafHashes recomputes the Merkle leaf hashes of records 1..n from the
// stored record bytes (O(n)). Leaf i (0-based) is record i+1.
func (l *Ledger) leafHashes(ctx context.Context, n uint64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, 0, n)
	if n == 0 {
		return out, nil
	}
	err := l.Records(ctx, 1, func(seq uint64, rec []byte) error {
		if seq != uint64(len(out))+1 {
			return fmt.Errorf("%w: record %d is missing", ErrCorrupt, len(out)+1)
		}
		out = append(out, tlog.LeafHash(rec))
		if uint64(len(out)) == n {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	if uint64(len(out)) < n {
		return nil, fmt.Errorf("%w: the ledger has %d records, not %d", ErrCheckpoint, len(out), n)
	}
	return out, nil
}

// RootAt recomputes, from the stored records, the Merkle root of the
// ledger when it had size records (O(n)). It never trusts v1/meta. A ledger
// with fewer records gives an error wrapping ErrCheckpoint.
func (l *Ledger) RootAt(ctx context.Context, size uint64) (tlog.Hash, error) {
	root, have, err := l.rootAt(ctx, size)
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("ledger %s root at size %d: %w", l.path, size, err)
	}
	if have < size {
		return tlog.Hash{}, fmt.Errorf("ledger %s root at size %d: %w: the ledger has only %d records", l.path, size, ErrCheckpoint, have)
	}
	return root, nil
}

// rootAt returns the root over the first size records, or how many
// contiguous records there are when fewer.
func (l *Ledger) rootAt(ctx context.Context, size uint64) (tlog.Hash, uint64, error) {
	var f tlog.Frontier
	if size == 0 {
		return f.Root(), 0, nil
	}
	err := l.Records(ctx, 1, func(seq uint64, rec []byte) error {
		if seq != f.Size+1 {
			return errStop // a gap: the records end here as far as the tree goes
		}
		f.Append(tlog.LeafHash(rec))
		if f.Size == size {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return tlog.Hash{}, 0, err
	}
	return f.Root(), f.Size, nil
}

// InclusionProof proves that record seq is in the ledger's tree of
// treeSize records (leaf index seq-1; 0 treeSize means the current size).
// The leaf is tlog.LeafHash of the record's stored bytes. It reads
// O(log treeSize) hashes from v1/nodes and the records (O(treeSize) from
// the records alone in a ledger without stored nodes). The proof is not
// checked here: a damaged stored node gives a proof that fails against
// the signed root, which is how export and any third party use it.
func (l *Ledger) InclusionProof(ctx context.Context, seq, treeSize uint64) (tlog.Proof, error) {
	if treeSize == 0 {
		c, err := l.TreeHead(ctx)
		if err != nil {
			return tlog.Proof{}, err
		}
		treeSize = c.Size
	}
	if seq < 1 || seq > treeSize {
		return tlog.Proof{}, fmt.Errorf("ledger %s inclusion of record %d in tree size %d: %w", l.path, seq, treeSize, tlog.ErrRange)
	}
	if hs, ok, err := l.fromNodes(ctx, treeSize, func(r xtlog.HashReader) ([]xtlog.Hash, error) {
		return xtlog.ProveRecord(int64(treeSize), int64(seq-1), r)
	}); err != nil || ok {
		if err != nil {
			return tlog.Proof{}, fmt.Errorf("ledger %s inclusion of record %d: %w", l.path, seq, err)
		}
		return tlog.Proof{Kind: tlog.Inclusion, A: seq - 1, B: treeSize, Hashes: hs}, nil
	}
	leaves, err := l.leafHashes(ctx, treeSize)
	if err != nil {
		return tlog.Proof{}, fmt.Errorf("ledger %s inclusion of record %d: %w", l.path, seq, err)
	}
	p, err := tlog.InclusionProof(leaves, seq-1)
	if err != nil {
		return tlog.Proof{}, err
	}
	return tlog.Proof{Kind: tlog.Inclusion, A: seq - 1, B: treeSize, Hashes: p}, nil
}

// ConsistencyProof proves the tree of oldSize records is a prefix of the
// tree of newSize records (0 newSize: the current size), in O(log newSize)
// reads like InclusionProof.
func (l *Ledger) ConsistencyProof(ctx context.Context, oldSize, newSize uint64) (tlog.Proof, error) {
	if newSize == 0 {
		c, err := l.TreeHead(ctx)
		if err != nil {
			return tlog.Proof{}, err
		}
		newSize = c.Size
	}
	if oldSize > newSize {
		return tlog.Proof{}, fmt.Errorf("ledger %s consistency %d to %d: %w", l.path, oldSize, newSize, tlog.ErrRange)
	}
	if oldSize > 0 && oldSize < newSize {
		if hs, ok, err := l.fromNodes(ctx, newSize, func(r xtlog.HashReader) ([]xtlog.Hash, error) {
			return xtlog.ProveTree(int64(newSize), int64(oldSize), r)
		}); err != nil || ok {
			if err != nil {
				return tlog.Proof{}, fmt.Errorf("ledger %s consistency %d to %d: %w", l.path, oldSize, newSize, err)
			}
			return tlog.Proof{Kind: tlog.Consistency, A: oldSize, B: newSize, Hashes: hs}, nil
		}
	}
	leaves, err := l.leafHashes(ctx, newSize)
	if err != nil {
		return tlog.Proof{}, fmt.Errorf("ledger %s consistency %d to %d: %w", l.path, oldSize, newSize, err)
	}
	p, err := tlog.ConsistencyProof(leaves, oldSize)
	if err != nil {
		return tlog.Proof{}, err
	}
	return tlog.Proof{Kind: tlog.Consistency, A: oldSize, B: newSize, Hashes: p}, nil
}

// VerifyAgainst checks that this ledger reproduces a checkpoint taken
// earlier (typically read back from the object store): the note must be
// signed by v and name this host's origin, and the Merkle root recomputed
// from the first Size stored records must equal its root. This detects a
// ledger that was truncated, restored from an older copy, rewritten or
// forked after the checkpoint, even if every hash and signature in it was
// recomputed. Failures wrap ErrCheckpoint and say which.
func (l *Ledger) VerifyAgainst(ctx context.Context, checkpointNote []byte, v note.Verifier) (tlog.Checkpoint, error) {
	c, err := tlog.OpenCheckpoint(checkpointNote, CheckpointOrigin(l.host), v)
	if err != nil {
		return tlog.Checkpoint{}, fmt.Errorf("ledger %s: %w: %w", l.path, ErrCheckpoint, err)
	}
	var root tlog.Hash
	var have uint64
	err = safely(func() error {
		var err error
		root, have, err = l.rootAt(ctx, c.Size)
		return err
	})
	if err != nil {
		return c, fmt.Errorf("ledger %s: verify against checkpoint of size %d: %w", l.path, c.Size, err)
	}
	if have < c.Size {
		return c, fmt.Errorf("ledger %s: %w: the checkpoint has %d records but the ledger only %d (in sequence): records were removed, or it was truncated or restored from an older copy",
			l.path, ErrCheckpoint, c.Size, have)
	}
	if root != c.Root {
		return c, fmt.Errorf("ledger %s: %w: the first %d records have Merkle root %s, the checkpoint says %s: records up to %d were rewritten, removed or forked since it was taken",
			l.path, ErrCheckpoint, c.Size, root, c.Root, c.Size)
	}
	return c, nil
}

// SignedRecord is one record as anchored: its exact bytes and signature.
type SignedRecord struct {
	Seq    uint64 `json:"seq"`
	Record []byte `json:"record"`
	Sig    []byte `json:"sig,omitempty"`
}

// Anchor is what to write off-host (the object store, under Object Lock)
// so the ledger up to Checkpoint.Size can be checked without this host.
type Anchor struct {
	// Note is the signed checkpoint (C2SP tlog-checkpoint signed note).
	Note []byte
	// Checkpoint is Note's content.
	Checkpoint tlog.Checkpoint
	// Since is the size of the previous anchor (0: none); Records are the
	// records Since+1 .. Checkpoint.Size with their signatures.
	Since   uint64
	Records []SignedRecord
	// Consistency proves the tree of Since records is a prefix of this one
	// (empty when Since is 0 or equals the size).
	Consistency tlog.Proof
	// PublicKeyPEM is the key that signed Note.
	PublicKeyPEM []byte
}

// Anchor takes a signed checkpoint now and collects what happened since the
// previous anchor of size since: the function the anchoring job calls, then
// writes the result under <prefix>/_custody/<host id>/. It holds no
// transaction across its reads: records never change once written, so
// reading them after the checkpoint is consistent. It recomputes the tree
// from the records (O(size)) and refuses to anchor a checkpoint the records
// do not reproduce (a damaged v1/meta tree).
func (l *Ledger) Anchor(ctx context.Context, since uint64) (Anchor, error) {
	l.mu.RLock() // no rotation between the checkpoint and the key reported
	defer l.mu.RUnlock()
	msg, c, err := l.checkpointLocked(ctx)
	if err != nil {
		return Anchor{}, err
	}
	if since > c.Size {
		return Anchor{}, fmt.Errorf("ledger %s anchor: %w: the previous anchor has size %d but the ledger only %d: truncated or restored from an older copy",
			l.path, ErrCheckpoint, since, c.Size)
	}
	a := Anchor{Note: msg, Checkpoint: c, Since: since, PublicKeyPEM: bytes.Clone(l.signer.pem)}
	leaves, err := l.leafHashes(ctx, c.Size)
	if err != nil {
		return Anchor{}, fmt.Errorf("ledger %s anchor: %w", l.path, err)
	}
	if root := tlog.RootOf(leaves); root != c.Root {
		return Anchor{}, fmt.Errorf("ledger %s anchor: %w: v1/meta says root %s for size %d but the records give %s; run verify",
			l.path, ErrCorrupt, c.Root, c.Size, root)
	}
	p, err := tlog.ConsistencyProof(leaves, since)
	if err != nil {
		return Anchor{}, err
	}
	a.Consistency = tlog.Proof{Kind: tlog.Consistency, A: since, B: c.Size, Hashes: p}
	if a.Records, err = l.signedRecords(ctx, since+1, c.Size); err != nil {
		return Anchor{}, fmt.Errorf("ledger %s anchor: %w", l.path, err)
	}
	return a, nil
}

// signedRecords reads records from..to with their signatures, in chunks of
// short read transactions.
func (l *Ledger) signedRecords(ctx context.Context, from, to uint64) ([]SignedRecord, error) {
	var out []SignedRecord
	for next := from; next <= to; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		err := l.db.View(func(tx *bolt.Tx) error {
			b, err := buckets(tx)
			if err != nil {
				return err
			}
			for n := 0; n < l.chunk && next <= to; n++ {
				rec := b.events.Get(seqKey(next))
				if rec == nil {
					return fmt.Errorf("%w: record %d is missing", ErrCorrupt, next)
				}
				r := SignedRecord{Seq: next, Record: bytes.Clone(rec)}
				if b.sigs != nil {
					r.Sig = bytes.Clone(b.sigs.Get(seqKey(next)))
				}
				out = append(out, r)
				next++
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// nodeReader serves golang.org/x/mod/sumdb/tlog hash reads in one read
// transaction: level 0 is the leaf hash of the stored record, higher
// levels come from v1/nodes.
type nodeReader struct{ b bkts }

func (r nodeReader) ReadHashes(indexes []int64) ([]xtlog.Hash, error) {
	out := make([]xtlog.Hash, len(indexes))
	for i, x := range indexes {
		level, n := xtlog.SplitStoredHashIndex(x)
		if level == 0 {
			rec := r.b.events.Get(seqKey(uint64(n) + 1))
			if rec == nil {
				return nil, fmt.Errorf("%w: record %d is missing", ErrCorrupt, n+1)
			}
			out[i] = xtlog.Hash(tlog.LeafHash(rec))
			continue
		}
		v := r.b.nodes.Get(seqKey(uint64(x)))
		if len(v) != tlog.HashSize {
			return nil, fmt.Errorf("%w: stored Merkle node %d/%d is missing or malformed", ErrCorrupt, level, n)
		}
		out[i] = xtlog.Hash(v)
	}
	return out, nil
}

// fromNodes runs prove over the stored nodes when they cover a tree of
// size records (ok false, nothing done, when the ledger has none or they
// stop short of size: the caller recomputes from the records).
func (l *Ledger) fromNodes(ctx context.Context, size uint64, prove func(xtlog.HashReader) ([]xtlog.Hash, error)) ([]tlog.Hash, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	var out []tlog.Hash
	var ok bool
	err := safely(func() error {
		return l.db.View(func(tx *bolt.Tx) error {
			b, err := buckets(tx)
			if err != nil {
				return err
			}
			ns := b.meta.Get(metaNodesSize)
			if b.nodes == nil || len(ns) != 8 || binary.BigEndian.Uint64(ns) < size {
				return nil
			}
			p, err := prove(nodeReader{b})
			if err != nil {
				return err
			}
			out, ok = make([]tlog.Hash, len(p)), true
			for i, h := range p {
				out[i] = tlog.Hash(h)
			}
			return nil
		})
	})
	return out, ok, err
}
