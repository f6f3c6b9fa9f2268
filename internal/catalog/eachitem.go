package catalog

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/custody"
)

// eachItemBatch is how many items EachItem reads in one read transaction
// (a variable so that a test can make a walk cross many batches).
var eachItemBatch = 1024

// EachItem calls fn for every item a trusted, not withheld host serves,
// each id once (an item two hosts ingested as the host that uploaded it:
// the first host, in host order, whose copy names a stored object, else
// the first), in id order. fn may take its time and may write: it is
// called outside any transaction.
//
// Why not Find: Find returns every item at once, and a console's facts
// step walks the whole fleet when its index is new; at a million items
// that held every decoded item (and a map of them by id) in memory
// (docs/BENCHMARKS.md, "The console's start-up walk"). Here each trusted
// host's items are merged by id, eachItemBatch at a time, each batch in a
// short read transaction: memory is bounded by the batch, whatever the
// fleet, and no read transaction stays open across the walk (a long one
// keeps bbolt from reusing the pages a concurrent sync frees, so the file
// would grow while the walk runs). The index file's pages it read are
// released from the process's resident memory as it goes (releaseMapped).
func (c *Catalog) EachItem(ctx context.Context, fn func(custody.Item) error) error {
	var after []byte // the last id read; nil before the first batch
	defer c.releaseMapped()
	for n := 1; ; n++ {
		batch, err := c.itemBatch(ctx, after)
		if err != nil {
			return fmt.Errorf("catalog items: %w", err)
		}
		for _, it := range batch {
			if err := fn(it); err != nil {
				return err
			}
		}
		if len(batch) < eachItemBatch {
			return nil
		}
		if n%16 == 0 {
			// The pages read so far are not needed again by the walk.
			c.releaseMapped()
		}
		after = []byte(batch[len(batch)-1].ID)
	}
}

// itemBatch is up to eachItemBatch items with ids after after (all, for
// nil), merged across the served hosts by id, one per id.
func (c *Catalog) itemBatch(ctx context.Context, after []byte) ([]custody.Item, error) {
	type head struct {
		pre  []byte
		cur  *bolt.Cursor
		k, v []byte
	}
	var out []custody.Item
	err := c.db.View(func(tx *bolt.Tx) error {
		b, held := tx.Bucket(bItems), withheld(tx)
		var hs []*head
		for _, t := range c.trusted {
			if held[t.ID] {
				continue
			}
			h := &head{pre: hostPrefix(t.ID), cur: b.Cursor()}
			start := append(bytes.Clone(h.pre), after...)
			if h.k, h.v = h.cur.Seek(start); after != nil && bytes.Equal(h.k, start) {
				h.k, h.v = h.cur.Next()
			}
			hs = append(hs, h)
		}
		id := func(h *head) []byte { return h.k[len(h.pre):] }
		live := func(h *head) bool { return h.k != nil && bytes.HasPrefix(h.k, h.pre) }
		for len(out) < eachItemBatch {
			var low []byte
			for _, h := range hs {
				if live(h) && (low == nil || bytes.Compare(id(h), low) < 0) {
					low = id(h)
				}
			}
			if low == nil {
				return nil
			}
			low = bytes.Clone(low)
			var pick custody.Item
			var pickHost []byte
			found := false
			for _, h := range hs {
				if !live(h) || !bytes.Equal(id(h), low) {
					continue
				}
				var it custody.Item
				if err := decodeItem(h.v, &it); err != nil {
					return fmt.Errorf("item %q: %w", h.k, err)
				}
				better := !found ||
					(pick.ObjectKey == "" && it.ObjectKey != "") ||
					((pick.ObjectKey == "") == (it.ObjectKey == "") && bytes.Compare(h.pre, pickHost) < 0)
				if better {
					pick, pickHost, found = it, h.pre, true
				}
				h.k, h.v = h.cur.Next()
			}
			out = append(out, pick)
			if len(out)%256 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
		return ctx.Err()
	})
	return out, err
}
