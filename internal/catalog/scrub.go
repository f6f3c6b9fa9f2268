package catalog

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
)

// Cursor names the last item a scrub re-hashed (its host and id); the zero
// Cursor starts at the first item.
type Cursor struct{ Host, ID string }

// SliceSize is how many of total objects one daily scrub re-reads so that
// all of them are re-read once per cycle: total divided by the cycle's
// days, rounded up (at least one when there is anything).
func SliceSize(total int, cycle time.Duration) int {
	days := int(cycle / (24 * time.Hour))
	if days < 1 {
		days = 1
	}
	return (total + days - 1) / days
}

// ScrubSlice returns up to n stored items after cur in index order (host,
// then id), wrapping to the start, and how many stored items there are.
// Only items the store holds (a recorded object key and version) count.
func (c *Catalog) ScrubSlice(ctx context.Context, cur Cursor, n int) ([]custody.Item, int, error) {
	var out []custody.Item
	total := 0
	err := c.db.View(func(tx *bolt.Tx) error {
		b, held := tx.Bucket(bItems), withheld(tx)
		stored := func(v []byte) (custody.Item, bool, error) {
			var it custody.Item
			if err := decodeItem(v, &it); err != nil {
				return it, false, err
			}
			return it, it.ObjectKey != "" && it.VersionID != "" && !held[it.Host], nil
		}
		var after, upTo []custody.Item // after the cursor; from the start up to it
		start := itemKey(cur.Host, cur.ID)
		if err := b.ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			it, ok, err := stored(v)
			if err != nil {
				return fmt.Errorf("item %q: %w", k, err)
			}
			if !ok {
				return nil
			}
			total++
			switch {
			case cur != (Cursor{}) && bytes.Compare(k, start) <= 0:
				if len(upTo) < n {
					upTo = append(upTo, it)
				}
			case len(after) < n:
				after = append(after, it)
			}
			return nil
		}); err != nil {
			return err
		}
		out = append(after, upTo...)
		if len(out) > n {
			out = out[:n]
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("catalog scrub slice: %w", err)
	}
	return out, total, nil
}

// Rehash is what re-reading one stored object found.
type Rehash struct {
	// OK: the version holds Size bytes hashing to the recorded SHA-256.
	OK bool
	// Missing: the store has no such version.
	Missing bool
	// SHA256 and Size are what was read (when the version was there).
	SHA256 string
	Size   int64
}

// RehashItem reads the item's recorded version in full and hashes it: the
// store's own checksums are its claim about the bytes, a re-read is the
// bytes. The error is operational (the store could not be read, worth a
// retry); a version that is gone or holds other bytes is a Rehash that is
// not OK.
func RehashItem(ctx context.Context, s objstore.Store, it custody.Item) (Rehash, error) {
	rc, err := s.Open(ctx, it.ObjectKey, it.VersionID)
	if errors.Is(err, objstore.ErrNotFound) {
		return Rehash{Missing: true}, nil
	}
	if err != nil {
		return Rehash{}, fmt.Errorf("scrub %s (version %s): %w", it.ObjectKey, it.VersionID, err)
	}
	defer rc.Close()
	// The body is read under ctx's request: cancelling ctx ends the read.
	sum, n, err := digest.Reader(rc)
	if err != nil {
		return Rehash{}, fmt.Errorf("scrub %s (version %s): read: %w", it.ObjectKey, it.VersionID, err)
	}
	return Rehash{OK: n == it.Size && sum.Hex() == it.SHA256, SHA256: sum.Hex(), Size: n}, nil
}

// Orphan is a stored object version under the store's prefix that no
// trusted host's indexed records name: footage no custody vouches for
// (uploaded by a host not listed, by hand, or left by a host whose history
// broke before it recorded the upload).
type Orphan struct {
	Key       string `json:"key"`
	VersionID string `json:"version_id"`
	Size      int64  `json:"size"`
}

// Orphans lists every object version outside _custody/ and _inventory/ whose key and
// version no indexed item names. It lists the whole store: run it daily,
// not every poll.
//
// It is a merge of two streams in one order: the store's listing, a page
// at a time in key order (each page sorted by key then version), and
// by_object, the index's items by object key and version. Memory is a
// page and the orphans found, whatever the fleet (a set of every item's
// object was several GB at 25 M items).
func (c *Catalog) Orphans(ctx context.Context) ([]Orphan, error) {
	out := []Orphan{}
	err := objstore.EachVersionPage(ctx, c.store, "", func(vs []objstore.Version) error {
		slices.SortFunc(vs, func(a, b objstore.Version) int {
			return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.VersionID, b.VersionID))
		})
		// A read transaction per page: a long one would hold bbolt's
		// file from growing while Sync writes.
		return c.db.View(func(tx *bolt.Tx) error {
			held := withheld(tx)
			cur := tx.Bucket(bByObject).Cursor()
			for _, v := range vs {
				// _inventory/ holds the console's published inventory, not footage.
				if strings.HasPrefix(v.Key, "_custody/") || strings.HasPrefix(v.Key, "_inventory/") || named(cur, v, held) {
					continue
				}
				out = append(out, Orphan{Key: v.Key, VersionID: v.VersionID, Size: v.Size})
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("catalog orphans: list the store: %w", err)
	}
	// A store that lists in another order (not a PageLister) came in one
	// page: sorted there. Pages come in key order: out is in order.
	return out, nil
}

// named reports whether an item of a host not withheld names v: the
// by_object keys of (v.Key, v.VersionID) follow the cursor's Seek.
func named(cur *bolt.Cursor, v objstore.Version, held map[string]bool) bool {
	pre := byObjectKey(v.Key, v.VersionID, "", "")
	pre = pre[:len(pre)-1] // key 0 version 0
	for k, _ := cur.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, _ = cur.Next() {
		host, _, _ := bytes.Cut(k[len(pre):], []byte{0})
		if !held[string(host)] {
			return true
		}
	}
	return false
}
