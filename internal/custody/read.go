package custody

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Item returns the projection of item id, or an error wrapping ErrNotFound.
func (l *Ledger) Item(ctx context.Context, id string) (Item, error) {
	if err := ctx.Err(); err != nil {
		return Item{}, err
	}
	var it Item
	err := l.db.View(func(tx *bolt.Tx) error {
		b, err := buckets(tx)
		if err != nil {
			return err
		}
		raw := b.items.Get([]byte(id))
		if raw == nil {
			return ErrNotFound
		}
		// decodeItem copies everything out of raw, which is only valid
		// inside the transaction.
		it, err = decodeItem(raw)
		return err
	})
	if err != nil {
		return Item{}, fmt.Errorf("ledger item %s: %w", id, err)
	}
	return it, nil
}

// Filter selects items. Zero fields do not filter.
type Filter struct {
	Camera     string
	AssignedTo string
	// Since and Until bound RecordedAt: Since <= RecordedAt < Until (half
	// open, so consecutive windows do not overlap). Zero = open.
	Since, Until time.Time
	States       []State // any of these
}

// Matches reports whether the filter selects it: the same rule Items
// applies, for an index of items kept elsewhere (a fleet console's).
func (f Filter) Matches(it Item) bool { return f.match(it) }

func (f Filter) match(it Item) bool {
	switch {
	case f.Camera != "" && it.Camera != f.Camera,
		f.AssignedTo != "" && it.AssignedTo != f.AssignedTo,
		!f.Since.IsZero() && it.RecordedAt.Before(f.Since),
		!f.Until.IsZero() && !it.RecordedAt.Before(f.Until),
		len(f.States) > 0 && !slices.Contains(f.States, it.State):
		return false
	}
	return true
}

// Items calls fn for every item matching f, ordered by RecordedAt then ID,
// stopping at (and returning) fn's first error. It walks an index: by_camera
// when Camera is set, else by_assignee when AssignedTo is set, else by_time.
//
// fn is called outside any transaction (it may do I/O), after each chunk of
// the index is read, so the walk is not a snapshot: an item written during
// the walk may or may not be seen, and is seen with its state at the time its
// chunk was read.
func (l *Ledger) Items(ctx context.Context, f Filter, fn func(Item) error) error {
	var stop uint64 // index keys with a time prefix above this cannot match
	if f.Until.IsZero() {
		stop = ^uint64(0)
	} else {
		stop = clampNanos(f.Until)
	}
	var start []byte
	if !f.Since.IsZero() {
		start = seqKey(clampNanos(f.Since))
	}
	after := start // resume point; the first chunk seeks to it inclusively
	first := true
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var batch []Item
		done := true
		err := l.db.View(func(tx *bolt.Tx) error {
			b, err := buckets(tx)
			if err != nil {
				return err
			}
			idx := b.byTime
			switch {
			case f.Camera != "":
				idx = b.byCamera.Bucket([]byte(f.Camera))
			case f.AssignedTo != "":
				idx = b.byAssignee.Bucket([]byte(f.AssignedTo))
			}
			if idx == nil {
				return nil
			}
			c := idx.Cursor()
			var k []byte
			if after == nil {
				k, _ = c.First()
			} else {
				k, _ = c.Seek(after)
				if !first && k != nil && bytes.Equal(k, after) {
					k, _ = c.Next()
				}
			}
			for n := 0; k != nil; k, _ = c.Next() {
				if len(k) < 8 {
					continue // garbage; Verify reports it
				}
				if binary.BigEndian.Uint64(k) > stop {
					return nil
				}
				if n == l.chunk {
					done = false
					return nil
				}
				n++
				after = slices.Clone(k)
				raw := b.items.Get(k[8:])
				if raw == nil {
					continue // stale index entry; Verify reports it
				}
				it, err := decodeItem(raw)
				if err != nil {
					return fmt.Errorf("item %s: %w", k[8:], err)
				}
				if !bytes.Equal(timeKey(it.RecordedAt, it.ID), k) {
					continue // stale index entry; Verify reports it
				}
				if f.match(it) {
					batch = append(batch, it)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("ledger %s items: %w", l.path, err)
		}
		first = false
		for _, it := range batch {
			if err := fn(it); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
	}
}

// Custody returns the item's custody chain by seq: the DOCKED event its
// DockSeq names plus every event naming the item. An id with no item and no
// events gives ErrNotFound; events naming an id that was never vaulted (a
// failed copy) are returned without a DOCKED event.
func (l *Ledger) Custody(ctx context.Context, id string) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Event
	err := l.db.View(func(tx *bolt.Tx) error {
		b, err := buckets(tx)
		if err != nil {
			return err
		}
		var seqs []uint64
		if raw := b.items.Get([]byte(id)); raw != nil {
			it, err := decodeItem(raw)
			if err != nil {
				return fmt.Errorf("item: %w", err)
			}
			if it.DockSeq != 0 {
				seqs = append(seqs, it.DockSeq)
			}
		}
		if ie := b.itemEvents.Bucket([]byte(id)); ie != nil {
			c := ie.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				if len(k) == 8 {
					seqs = append(seqs, binary.BigEndian.Uint64(k))
				}
			}
		}
		if len(seqs) == 0 {
			return ErrNotFound
		}
		slices.Sort(seqs)
		seqs = slices.Compact(seqs)
		for _, s := range seqs {
			raw := b.events.Get(seqKey(s))
			if raw == nil {
				return fmt.Errorf("%w: record %d is indexed but missing", ErrCorrupt, s)
			}
			ev, err := DecodeRecord(raw)
			if err != nil {
				return fmt.Errorf("record %d: %w", s, err)
			}
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger %s custody of %s: %w", l.path, id, err)
	}
	return out, nil
}

// Events calls fn for every event from fromSeq (0 and 1 both mean the
// start) to the head, in seq order, stopping at fn's first error. fn runs
// outside any transaction. A record that does not decode stops the walk
// with an error wrapping ErrCorrupt (Verify is the tool that carries on).
func (l *Ledger) Events(ctx context.Context, fromSeq uint64, fn func(Event) error) error {
	return l.Records(ctx, fromSeq, func(seq uint64, rec []byte) error {
		ev, err := DecodeRecord(rec)
		if err != nil {
			return fmt.Errorf("ledger %s record %d: %w", l.path, seq, err)
		}
		if ev.Seq != seq {
			return fmt.Errorf("ledger %s record %d: %w: record says seq %d", l.path, seq, ErrCorrupt, ev.Seq)
		}
		return fn(ev)
	})
}

// Records calls fn with the exact stored bytes of every record from fromSeq,
// in seq order: the form to export for third-party checking (one record per
// line; a record never contains a raw newline). rec is a copy fn may keep.
func (l *Ledger) Records(ctx context.Context, fromSeq uint64, fn func(seq uint64, rec []byte) error) error {
	next := max(fromSeq, 1)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		type kv struct {
			seq uint64
			rec []byte
		}
		var batch []kv
		done := true
		err := l.db.View(func(tx *bolt.Tx) error {
			b, err := buckets(tx)
			if err != nil {
				return err
			}
			c := b.events.Cursor()
			for k, v := c.Seek(seqKey(next)); k != nil; k, v = c.Next() {
				if len(batch) == l.chunk {
					done = false
					return nil
				}
				if len(k) != 8 || v == nil {
					continue // not a record; Verify reports it
				}
				seq := binary.BigEndian.Uint64(k)
				batch = append(batch, kv{seq, bytes.Clone(v)})
				next = seq + 1
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("ledger %s records: %w", l.path, err)
		}
		for _, r := range batch {
			if err := fn(r.seq, r.rec); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
	}
}
