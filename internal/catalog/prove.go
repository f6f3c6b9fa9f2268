package catalog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"fmt"

	"github.com/evidenced/evidenced/internal/tlog"
	bolt "go.etcd.io/bbolt"
)

// Proven is what a console's export carries of one trusted host: the
// checkpoint it followed (size and root), the keys it followed, and the
// exact bytes of the records asked for, each with its inclusion proof in
// that checkpoint's tree.
type Proven struct {
	Host    string
	Size    uint64
	Root    tlog.Hash
	Keys    []ed25519.PublicKey
	Records map[uint64][]byte
	Proofs  map[uint64][]tlog.Hash
}

// Prove proves host's records seqs in the last checkpoint followed. The
// proofs are computed from every indexed record of the host up to it
// (O(size) reads and hashes: the index keeps the frontier, not the tree),
// and the leaves must reproduce the followed root, so an index that no
// longer holds what was checked is refused, not exported. A host that is
// not trusted, or withheld, is refused by name.
func (c *Catalog) Prove(ctx context.Context, host string, seqs []uint64) (Proven, error) {
	if _, ok := c.trustedHost(host); !ok {
		return Proven{}, fmt.Errorf("catalog: host %s is not a trusted host", host)
	}
	hs, err := c.hostState(host)
	if err != nil {
		return Proven{}, err
	}
	if hs.Withheld {
		return Proven{}, fmt.Errorf("catalog: host %s is withheld (its anchored history failed the audit); nothing of it is exported", host)
	}
	p := Proven{Host: host, Size: hs.Tail.Size, Root: hs.Tail.Root, Records: map[uint64][]byte{}, Proofs: map[uint64][]tlog.Hash{}}
	if p.Keys, err = followedKeys(hs); err != nil {
		return Proven{}, err
	}
	want := map[uint64]bool{}
	for _, s := range seqs {
		if s == 0 || s > p.Size {
			return Proven{}, fmt.Errorf("catalog: record %d of %s is not within its followed checkpoint of size %d", s, host, p.Size)
		}
		want[s] = true
	}
	leaves := make([]tlog.Hash, 0, p.Size)
	err = c.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bRecords).Cursor()
		pre := hostPrefix(host)
		next := uint64(1)
		for k, v := cur.Seek(recordKey(host, 1)); k != nil && bytes.HasPrefix(k, pre) && next <= p.Size; k, v = cur.Next() {
			if len(k) != len(pre)+8 || binary.BigEndian.Uint64(k[len(pre):]) != next {
				return fmt.Errorf("record %d of %s is not indexed", next, host)
			}
			_, rec, _ := bytes.Cut(v, []byte("\n"))
			leaves = append(leaves, tlog.LeafHash(rec))
			if want[next] {
				p.Records[next] = bytes.Clone(rec)
			}
			next++
			if next%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
		if uint64(len(leaves)) != p.Size {
			return fmt.Errorf("%s has %d records indexed, its followed checkpoint %d", host, len(leaves), p.Size)
		}
		return nil
	})
	if err != nil {
		return Proven{}, fmt.Errorf("catalog: prove records of %s: %w", host, err)
	}
	if got := tlog.RootOf(leaves); got != p.Root {
		return Proven{}, fmt.Errorf("catalog: the indexed records of %s hash to root %s, the followed checkpoint's is %s", host, got, p.Root)
	}
	for s := range want {
		if p.Proofs[s], err = tlog.InclusionProof(leaves, s-1); err != nil {
			return Proven{}, fmt.Errorf("catalog: proof of record %d of %s: %w", s, host, err)
		}
	}
	return p, nil
}

// Keys are the keys followed for each trusted host so far (the pinned key,
// then each one a KEY_ROTATED record introduced): what an export made at
// the console is checked against.
func (c *Catalog) Keys(ctx context.Context) ([]ed25519.PublicKey, error) {
	var out []ed25519.PublicKey
	for _, t := range c.trusted {
		hs, err := c.hostState(t.ID)
		if err != nil {
			return nil, err
		}
		ks, err := followedKeys(hs)
		if err != nil {
			return nil, err
		}
		out = append(out, ks...)
	}
	return out, ctx.Err()
}

func followedKeys(hs HostState) ([]ed25519.PublicKey, error) {
	var out []ed25519.PublicKey
	for _, k := range hs.Keys {
		raw, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("catalog: a followed key of %s is malformed (%v)", hs.ID, err)
		}
		out = append(out, ed25519.PublicKey(raw))
	}
	return out, nil
}
