package custody

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/tlog"
)

// migrations[i] moves a ledger from schema i+1 to i+2. Open runs the ones a
// file needs, in order, in the same write transaction that checks the
// layout: a ledger is never left half migrated. Each has its own test on a
// file written by the previous schema's code path.
var migrations = []func(l *Ledger, tx *bolt.Tx) error{
	migrate1to2,
}

// migrate brings a writable ledger to schemaVersion.
func (l *Ledger) migrate(tx *bolt.Tx) error {
	for l.version < schemaVersion {
		from := l.version
		if err := migrations[from-1](l, tx); err != nil {
			return fmt.Errorf("migrate schema %d to %d: %w", from, from+1, err)
		}
		meta := tx.Bucket(bucketV1).Bucket(bucketMeta)
		if err := meta.Put(metaVersion, seqKey(from+1)); err != nil {
			return fmt.Errorf("migrate schema %d to %d: %w", from, from+1, err)
		}
		l.version = from + 1
		l.log.Info("custody ledger migrated", "path", l.path, "from_version", from, "to_version", from+1)
	}
	return nil
}

// migrate1to2 adds signing and the Merkle tree. Records are not touched,
// and the records written under schema 1 stay unsigned (Verify reports them
// as a notice, not a problem): signing them now would have the key vouch
// for steps it never witnessed. The first record signed afterwards (the
// HOST_KEY record) carries the hash of the last schema-1 record as its
// prev_hash, so its signature covers the whole earlier chain. It:
//
//   - creates v1/sigs and v1/keys (empty);
//   - computes the Merkle tree over the stored records and writes its
//     state to v1/meta tree;
//   - writes v1/meta migrated_from_v1: the head seq at migration.
func migrate1to2(l *Ledger, tx *bolt.Tx) error {
	v1 := tx.Bucket(bucketV1)
	for _, name := range [][]byte{bucketSigs, bucketKeys} {
		if bk := v1.Bucket(name); bk != nil {
			if k, _ := bk.Cursor().First(); k != nil {
				return fmt.Errorf("%w: schema 1 ledger already has a non-empty v1/%s", ErrSchema, name)
			}
		}
		if _, err := v1.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket v1/%s: %w", name, err)
		}
	}
	b, err := buckets(tx)
	if err != nil {
		return err
	}
	head, _, err := readHead(b.meta)
	if err != nil {
		return err
	}
	var f tlog.Frontier
	c := b.events.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 8 || v == nil {
			continue // not a record; Verify reports it
		}
		if seq := binary.BigEndian.Uint64(k); seq != f.Size+1 {
			return fmt.Errorf("%w: record %d missing; run verify (the schema 1 ledger is unchanged)", ErrCorrupt, f.Size+1)
		}
		f.Append(tlog.LeafHash(v))
	}
	if f.Size != head {
		return fmt.Errorf("%w: %d records but v1/meta says the head is %d; run verify (the schema 1 ledger is unchanged)", ErrCorrupt, f.Size, head)
	}
	if err := b.meta.Put(metaTree, mustFrontier(f)); err != nil {
		return fmt.Errorf("write v1/meta tree: %w", err)
	}
	if err := b.meta.Put(metaMigrated, seqKey(head)); err != nil {
		return fmt.Errorf("write v1/meta migrated_from_v1: %w", err)
	}
	return nil
}
