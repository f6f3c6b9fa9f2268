package custody

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tlog"
)

// Stored Merkle nodes and signed tree heads: what lets proofs read O(log n)
// hashes and Verify authenticate most records through one signature per key
// instead of one per record (see the package documentation, "Stored nodes
// and signed tree heads"). Both are derived from the records and the
// signatures, written in the transaction that appends, and checked by
// Verify; a ledger without them (written by an older release) is served by
// recomputing from the records.
var (
	bucketNodes   = []byte("nodes")
	bucketHeads   = []byte("heads")
	metaNodesSize = []byte("nodes_size")
	metaSigsHash  = []byte("sigs_hash")
)

// sigsExtension starts the checkpoint extension line of a signed tree head
// that carries the hash over the signatures.
const sigsExtension = "evidenced-sigs "

// nodeKey is the v1/nodes key of the perfect subtree at level (1: a pair
// of leaves) and index: golang.org/x/mod/sumdb/tlog's storage index, 8-byte
// big-endian, so keys grow in the order Append creates the nodes.
func nodeKey(level int, index uint64) []byte {
	return seqKey(uint64(xtlog.StoredHashIndex(level, int64(index))))
}

// sigsStep extends the hash over the signatures by record seq's signature:
// SHA-256(previous || seq as 8-byte big-endian || signature). It starts
// from 32 zero bytes and takes every v1/sigs entry of records 1..n in seq
// order.
func sigsStep(h tlog.Hash, seq uint64, sig []byte) tlog.Hash {
	// Hashed from one buffer on the stack when the signature is an Ed25519
	// one (every stored one): Verify takes a step per record.
	var buf [tlog.HashSize + 8 + 64]byte
	if len(sig) == 64 {
		copy(buf[:], h[:])
		binary.BigEndian.PutUint64(buf[tlog.HashSize:], seq)
		copy(buf[tlog.HashSize+8:], sig)
		return tlog.Hash(digest.Bytes(buf[:]))
	}
	d := digest.New()
	d.Write(h[:])
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	d.Write(k[:])
	d.Write(sig)
	return tlog.Hash(digest.FromHash(d))
}

// accel is the stored-node and signature-hash state of a write transaction.
type accel struct {
	nodes *bolt.Bucket
	sigs  tlog.Hash
	err   error // the first failed node write
}

// loadAccel reads the state for an Append at head seq: nil when the ledger
// has none (an older release's file that no writable Open has completed:
// Append then leaves it absent), an error when it is present but not at
// the head.
func loadAccel(b bkts, seq uint64) (*accel, error) {
	ns, sh := b.meta.Get(metaNodesSize), b.meta.Get(metaSigsHash)
	if b.nodes == nil && b.heads == nil && ns == nil && sh == nil {
		return nil, nil
	}
	if b.nodes == nil || b.heads == nil || len(ns) != 8 || len(sh) != 8+tlog.HashSize {
		return nil, fmt.Errorf("%w: the stored Merkle nodes or signed heads are incomplete; run verify", ErrCorrupt)
	}
	if n, s := binary.BigEndian.Uint64(ns), binary.BigEndian.Uint64(sh); n != seq || s != seq {
		return nil, fmt.Errorf("%w: the stored Merkle nodes (%d) or signature hash (%d) are not at the head record %d", ErrCorrupt, n, s, seq)
	}
	b.nodes.FillPercent = 1 // keys only ever grow: fill pages
	return &accel{nodes: b.nodes, sigs: tlog.Hash(sh[8:])}, nil
}

// node stores one interior node (tlog.Frontier.AppendFunc callback).
func (a *accel) node(level int, index uint64, h tlog.Hash) {
	if a.err == nil {
		if err := a.nodes.Put(nodeKey(level, index), bytes.Clone(h[:])); err != nil {
			a.err = fmt.Errorf("write Merkle node %d/%d: %w", level, index, err)
		}
	}
}

// nodeFunc is the AppendFunc callback, nil without state.
func (a *accel) nodeFunc() func(int, uint64, tlog.Hash) {
	if a == nil {
		return nil
	}
	return a.node
}

// save writes the sizes (both now seq) and the signature hash.
func (a *accel) save(meta *bolt.Bucket, seq uint64) error {
	if a.err != nil {
		return a.err
	}
	sh := make([]byte, 8, 8+tlog.HashSize)
	binary.BigEndian.PutUint64(sh, seq)
	sh = append(sh, a.sigs[:]...)
	if err := meta.Put(metaNodesSize, seqKey(seq)); err != nil {
		return fmt.Errorf("write v1/meta nodes_size: %w", err)
	}
	if err := meta.Put(metaSigsHash, sh); err != nil {
		return fmt.Errorf("write v1/meta sigs_hash: %w", err)
	}
	return nil
}

// headText is the checkpoint a signed tree head signs: the ledger's origin,
// size and root, and the hash over the signatures of records 1..size.
func headText(host string, size uint64, root, sigs tlog.Hash) tlog.Checkpoint {
	return tlog.Checkpoint{Origin: CheckpointOrigin(host), Size: size, Root: root,
		Extensions: []string{sigsExtension + sigs.Base64()}}
}

// headSigs reads the signature hash of a signed tree head.
func headSigs(c tlog.Checkpoint) (tlog.Hash, bool) {
	if len(c.Extensions) != 1 || !strings.HasPrefix(c.Extensions[0], sigsExtension) {
		return tlog.Hash{}, false
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(c.Extensions[0][len(sigsExtension):])
	if err != nil || len(raw) != tlog.HashSize {
		return tlog.Hash{}, false
	}
	return tlog.Hash(raw), true
}

// writeHead signs the tree head at size with key and stores it as the
// head of key's period in v1/heads (keyed by the record the key is in
// force from), and returns the signed note (for the witness). A host id
// that cannot name a note key gets no heads (nil note): Verify then checks
// every signature.
func (l *Ledger) writeHead(b bkts, key *keyInfo, size uint64, root, sigs tlog.Hash) ([]byte, error) {
	var from uint64
	c := b.keys.Cursor()
	for k, v := c.Last(); k != nil; k, v = c.Prev() {
		if len(k) == 8 && binary.BigEndian.Uint64(k) <= size {
			if !bytes.Equal(v, key.pem) {
				return nil, fmt.Errorf("%w: v1/keys names another key in force at record %d", ErrCorrupt, size)
			}
			from = binary.BigEndian.Uint64(k)
			break
		}
	}
	if from == 0 {
		return nil, fmt.Errorf("%w: no host key in force at record %d in v1/keys", ErrCorrupt, size)
	}
	ns, err := signing.NoteSignerFor(l.host, key.s)
	if err != nil {
		return nil, nil
	}
	msg, err := tlog.SignCheckpoint(headText(l.host, size, root, sigs), ns)
	if err != nil {
		return nil, fmt.Errorf("sign tree head %d: %w", size, err)
	}
	if err := b.heads.Put(seqKey(from), msg); err != nil {
		return nil, fmt.Errorf("write v1/heads: %w", err)
	}
	return msg, nil
}

// backfill builds the stored nodes and the signature hash of a ledger that
// lacks them or whose state fell behind the head (an older release appended
// since): the migration a writable Open runs, in its transaction. A ledger
// whose records do not run 1..head without a gap is left as it is (Append
// then refuses it, Verify says why). Signed heads cannot be made without the
// key: the next Append writes the head of the key in force; until then
// Verify checks every signature.
func (l *Ledger) backfill(tx *bolt.Tx) error {
	b, err := buckets(tx)
	if err != nil {
		return err
	}
	head, _, err := readHead(b.meta)
	if err != nil {
		return nil // Verify reports it
	}
	if _, err := loadAccel(b, head); err == nil && b.nodes != nil {
		return nil
	}
	// Records 1..head, contiguous?
	c := b.events.Cursor()
	var n uint64
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 8 || v == nil || binary.BigEndian.Uint64(k) != n+1 {
			l.log.Warn("custody ledger: records do not run without a gap; stored Merkle nodes not built", "path", l.path)
			return nil
		}
		n++
	}
	if n != head {
		l.log.Warn("custody ledger: records and head disagree; stored Merkle nodes not built", "path", l.path)
		return nil
	}
	v1 := tx.Bucket(bucketV1)
	if v1.Bucket(bucketNodes) != nil {
		if err := v1.DeleteBucket(bucketNodes); err != nil {
			return fmt.Errorf("rebuild v1/nodes: %w", err)
		}
	}
	nodes, err := v1.CreateBucket(bucketNodes)
	if err != nil {
		return fmt.Errorf("create v1/nodes: %w", err)
	}
	nodes.FillPercent = 1
	if _, err := v1.CreateBucketIfNotExists(bucketHeads); err != nil {
		return fmt.Errorf("create v1/heads: %w", err)
	}
	a := &accel{nodes: nodes}
	var f tlog.Frontier
	for k, v := c.First(); k != nil; k, v = c.Next() {
		f.AppendFunc(tlog.LeafHash(v), a.node)
	}
	if b.sigs != nil {
		sc := b.sigs.Cursor()
		for k, v := sc.First(); k != nil; k, v = sc.Next() {
			if len(k) == 8 && v != nil && binary.BigEndian.Uint64(k) <= head {
				a.sigs = sigsStep(a.sigs, binary.BigEndian.Uint64(k), v)
			}
		}
	}
	if err := a.save(b.meta, head); err != nil {
		return err
	}
	l.log.Info("custody ledger: stored Merkle nodes built", "path", l.path, "records", head)
	return nil
}
