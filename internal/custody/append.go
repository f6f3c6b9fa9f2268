package custody

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tlog"
)

// Append writes ev and, if item != nil, the item projection and its indexes,
// in ONE synced bbolt transaction, and returns the stored event (Seq, At,
// Host, PrevHash, ItemHash and Hash filled in). It is the commit point of
// every custody step: nothing counts as done before Append returns nil.
//
// Seq, Host, PrevHash, ItemHash and Hash passed in are ignored. At, if set,
// is kept (in UTC); if zero it is taken inside the write transaction, so
// Append-stamped times never go backwards along seq unless the wall clock
// does.
//
// With item != nil: ev.Item may be empty (it becomes item.ID) but must not
// name another item; a VAULTED event with empty SHA256 gets item.SHA256;
// item.Host defaults to the ledger's host and item.IngestedAt to ev.At (to
// the stored value on later writes). Append refuses with ErrInvalid:
//   - an item that does not exist yet, unless ev is VAULTED (an item exists
//     only once vaulted);
//   - a change to an item's ID, SHA256, Size, Camera, SourcePath, RecordedAt,
//     IngestedAt, Host or DockSeq (what was acquired, where and when, is
//     fixed at vault time);
//   - state "uploaded" unless ev or an earlier event naming the item is
//     UPLOADED; state "verified" likewise with VERIFIED;
//   - a DockSeq that is not the seq of a DOCKED event (of the same camera,
//     when both name one).
//
// Whether or not item is given, a COPIED, VAULTED, UPLOADED or VERIFIED event
// that names an existing item and carries a SHA256 must carry that item's
// SHA256 (record a mismatch as VERIFY_FAILED). Invalid UTF-8 anywhere is
// refused, never repaired.
//
// Safe for concurrent callers: bbolt serialises writers, and seq and
// prev_hash are read from v1/meta inside the write transaction. Append does
// not use bolt.Batch, whose coalescing would add up to 10ms to every
// uncontended step; at a few steps per second per host the fsync per Append
// is affordable. ctx is checked before the transaction starts; a started
// transaction is not abandoned.
//
// With Options.Signer, the record is signed (v1/sigs) in the same
// transaction; on a ledger without a host key yet, a HOST_KEY record is
// written first (see the package documentation), and the returned event is
// still the caller's. Without a Signer, Append on a ledger that has a host
// key fails with ErrNoSigner.
func (l *Ledger) Append(ctx context.Context, ev Event, item *Item) (Event, error) {
	out, err := l.appendAll(ctx, []pending{{ev: ev, item: item}})
	if err != nil {
		return Event{}, err
	}
	return out[len(out)-1], nil
}

type pending struct {
	ev   Event
	item *Item
	// rotateTo is the next key of a KEY_ROTATED record: in force from the
	// record after it.
	rotateTo *keyInfo
}

// appendAll appends several events in one transaction, all or none, and
// returns them (preceded by the HOST_KEY record when one was written).
// Append and AppendGrouped (a group commit of access records) call it;
// tests use it to build large ledgers quickly.
func (l *Ledger) appendAll(ctx context.Context, ps []pending) ([]Event, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.appendLocked(ctx, ps, l.signer)
}

// appendLocked is appendAll with l.mu held and the signer to use.
func (l *Ledger) appendLocked(ctx context.Context, ps []pending, key *keyInfo) ([]Event, error) {
	if l.readOnly {
		return nil, fmt.Errorf("append to ledger %s: %w", l.path, ErrReadOnly)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prepared := make([]pending, len(ps))
	for i, p := range ps {
		q, err := l.prepare(p)
		if err != nil {
			return nil, fmt.Errorf("append %s event: %w", p.ev.Type, err)
		}
		prepared[i] = q
	}

	var out []Event
	var head *WitnessedHead
	err := l.db.Update(func(tx *bolt.Tx) error {
		out, head = out[:0], nil
		b, err := buckets(tx)
		if err != nil {
			return err
		}
		seq, prev, err := readHead(b.meta)
		if err != nil {
			return err
		}
		tree, err := readTree(b.meta)
		if err != nil {
			return err
		}
		if tree.Size != seq {
			return fmt.Errorf("%w: the Merkle tree in v1/meta has %d leaves but the head is record %d", ErrCorrupt, tree.Size, seq)
		}
		acc, err := loadAccel(b, seq)
		if err != nil {
			return err
		}
		all := prepared
		inForce, _ := keyInForce(b.keys)
		switch {
		case key == nil && inForce != nil:
			return fmt.Errorf("%w: this ledger has a host key, so every record must be signed: open it with Options.Signer", ErrNoSigner)
		case key != nil && inForce == nil:
			kev := keyEvent(HostKey, key, nil)
			addNoteKey(kev.Details, l.host, key.pub)
			// Bind the ledger's identity in v1/meta to the signed chain.
			kev.Details["ledger_created_at"] = string(b.meta.Get(metaCreatedAt))
			if m := b.meta.Get(metaMigrated); len(m) == 8 {
				kev.Details["migrated_from_v1"] = strconv.FormatUint(binary.BigEndian.Uint64(m), 10)
			}
			hk, err := l.prepare(pending{ev: kev})
			if err != nil {
				return err
			}
			all = append([]pending{hk}, prepared...)
		case key != nil && !bytes.Equal(inForce, key.pem):
			return fmt.Errorf("%w: the signer is key %s; rotate keys with RotateKey, signed by the key in force", ErrKeyMismatch, key.id)
		}
		for _, p := range all {
			ev, rec, err := l.appendOne(b, seq+1, prev, p.ev, p.item)
			if err != nil {
				return fmt.Errorf("append %s event as seq %d: %w", p.ev.Type, seq+1, err)
			}
			tree.AppendFunc(tlog.LeafHash(rec), acc.nodeFunc())
			if key != nil {
				sig, err := signRecord(b, key, ev.Seq, rec)
				if err != nil {
					return err
				}
				if acc != nil {
					acc.sigs = sigsStep(acc.sigs, ev.Seq, sig)
				}
			}
			switch {
			case ev.Type == HostKey:
				if err := b.keys.Put(seqKey(ev.Seq), key.pem); err != nil {
					return fmt.Errorf("write v1/keys: %w", err)
				}
			case p.rotateTo != nil:
				if err := b.keys.Put(seqKey(ev.Seq+1), p.rotateTo.pem); err != nil {
					return fmt.Errorf("write v1/keys: %w", err)
				}
			}
			seq, prev = ev.Seq, ev.Hash
			out = append(out, ev)
		}
		if err := b.meta.Put(metaTree, mustFrontier(tree)); err != nil {
			return fmt.Errorf("write tree: %w", err)
		}
		if acc != nil {
			if err := acc.save(b.meta, seq); err != nil {
				return err
			}
			if key != nil {
				msg, err := l.writeHead(b, key, seq, tree.Root(), acc.sigs)
				if err != nil {
					return err
				}
				if msg != nil {
					head = &WitnessedHead{Size: seq, Root: tree.Root(), Note: msg, Key: signing.Fingerprint(key.pub)}
				}
			}
		}
		if err := b.meta.Put(metaHeadSeq, seqKey(seq)); err != nil {
			return fmt.Errorf("write head: %w", err)
		}
		if err := b.meta.Put(metaHeadHash, []byte(prev)); err != nil {
			return fmt.Errorf("write head: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", l.path, err)
	}
	for _, ev := range out {
		l.log.Debug("custody event appended", "seq", ev.Seq, "type", string(ev.Type))
	}
	if head != nil {
		l.witnessHead(*head)
	}
	return out, nil
}

// witnessHead gives h to Options.Witness unless a head at least as large
// was given already (two Appends may finish out of order). A failure is
// logged: the record is committed and signed, and verify and the next
// start compare the ledger with the last head the witness did take.
func (l *Ledger) witnessHead(h WitnessedHead) {
	if l.witness == nil {
		return
	}
	l.witnessMu.Lock()
	defer l.witnessMu.Unlock()
	if h.Size <= l.witnessed {
		return
	}
	if err := l.witness(h); err != nil {
		l.log.Error("custody head not witnessed", "tree_size", h.Size, "err", err)
		return
	}
	l.witnessed = h.Size
}

// prepare validates and normalises what the caller passed, outside the write
// transaction so bad input never takes the writer lock.
func (l *Ledger) prepare(p pending) (pending, error) {
	ev := p.ev
	ev.Seq, ev.PrevHash, ev.ItemHash, ev.Hash = 0, "", "", ""
	ev.Host = l.host
	// Copy the map: the caller may reuse it while the transaction runs.
	if len(ev.Details) == 0 {
		ev.Details = nil
	} else {
		ev.Details = maps.Clone(ev.Details)
	}
	if !ev.At.IsZero() {
		if _, err := canonicalTime(ev.At); err != nil {
			return pending{}, err
		}
		ev.At = ev.At.UTC()
	}
	if len(ev.Item) > maxNameLen {
		return pending{}, fmt.Errorf("%w: item id longer than %d bytes", ErrInvalid, maxNameLen)
	}
	var it *Item
	if p.item != nil {
		c := *p.item
		normalizeItem(&c)
		if c.Host == "" {
			c.Host = l.host
		}
		if err := validateItem(c); err != nil {
			return pending{}, err
		}
		switch {
		case ev.Item == "":
			ev.Item = c.ID
		case ev.Item != c.ID:
			return pending{}, fmt.Errorf("%w: event names item %q but the item passed is %q", ErrInvalid, ev.Item, c.ID)
		}
		if ev.Type == Vaulted && ev.SHA256 == "" {
			ev.SHA256 = c.SHA256
		}
		it = &c
	}
	if err := validateEvent(ev); err != nil {
		return pending{}, err
	}
	return pending{ev: ev, item: it, rotateTo: p.rotateTo}, nil
}

// appendOne writes one record (and item) inside the write transaction and
// returns the stored event and record bytes.
func (l *Ledger) appendOne(b bkts, seq uint64, prev string, ev Event, it *Item) (Event, []byte, error) {
	key := seqKey(seq)
	if b.events.Get(key) != nil {
		return Event{}, nil, fmt.Errorf("%w: a record already exists at seq %d beyond the head in v1/meta", ErrCorrupt, seq)
	}
	ev.Seq, ev.PrevHash = seq, prev
	if ev.At.IsZero() {
		ev.At = time.Now().UTC()
	}
	if it != nil {
		h, err := l.putItem(b, &ev, *it)
		if err != nil {
			return Event{}, nil, err
		}
		ev.ItemHash = h
	} else if ev.Item != "" && hashBearing(ev.Type) && ev.SHA256 != "" {
		if raw := b.items.Get([]byte(ev.Item)); raw != nil {
			cur, err := decodeItem(raw)
			if err != nil {
				return Event{}, nil, fmt.Errorf("item %s: %w", ev.Item, err)
			}
			if ev.SHA256 != cur.SHA256 {
				return Event{}, nil, fmt.Errorf("%w: %s sha256 %s differs from item %s's %s", ErrInvalid, ev.Type, ev.SHA256, ev.Item, cur.SHA256)
			}
		}
	}
	rec, err := EncodeRecord(ev)
	if err != nil {
		return Event{}, nil, err
	}
	if err := b.events.Put(key, rec); err != nil {
		return Event{}, nil, fmt.Errorf("write record: %w", err)
	}
	if ev.Item != "" {
		ie, err := b.itemEvents.CreateBucketIfNotExists([]byte(ev.Item))
		if err != nil {
			return Event{}, nil, fmt.Errorf("index item %s: %w", ev.Item, err)
		}
		if err := ie.Put(key, []byte{}); err != nil {
			return Event{}, nil, fmt.Errorf("index item %s: %w", ev.Item, err)
		}
	}
	ev.Hash = RecordHash(rec)
	return ev, rec, nil
}

// hashBearing types assert the item's content hash; a vaulted item's
// events of these types must agree with it.
func hashBearing(t EventType) bool {
	return t == Copied || t == Vaulted || t == Uploaded || t == Verified
}

// putItem applies the item rules, writes the projection and its indexes, and
// returns the hash of the stored item bytes for the event's item_hash.
func (l *Ledger) putItem(b bkts, ev *Event, it Item) (string, error) {
	id := []byte(it.ID)
	var old *Item
	if raw := b.items.Get(id); raw != nil {
		o, err := decodeItem(raw)
		if err != nil {
			return "", fmt.Errorf("item %s: %w", it.ID, err)
		}
		old = &o
	}
	if old == nil {
		if ev.Type != Vaulted {
			return "", fmt.Errorf("%w: item %s does not exist yet; an item is created by a VAULTED event, not %s", ErrInvalid, it.ID, ev.Type)
		}
		if it.IngestedAt.IsZero() {
			it.IngestedAt = ev.At
		}
		if it.Host != l.host {
			return "", fmt.Errorf("%w: item %s host %q is not this ledger's host %q", ErrInvalid, it.ID, it.Host, l.host)
		}
	} else {
		if it.IngestedAt.IsZero() {
			it.IngestedAt = old.IngestedAt
		}
		if f := immutableChanged(*old, it); f != "" {
			return "", fmt.Errorf("%w: item %s %s cannot change once vaulted", ErrInvalid, it.ID, f)
		}
	}
	if hashBearing(ev.Type) && ev.SHA256 != "" && ev.SHA256 != it.SHA256 {
		return "", fmt.Errorf("%w: %s sha256 %s differs from item %s's %s", ErrInvalid, ev.Type, ev.SHA256, it.ID, it.SHA256)
	}
	for _, need := range [...]struct {
		state State
		typ   EventType
	}{{StateUploaded, Uploaded}, {StateVerified, Verified}} {
		if it.State != need.state || ev.Type == need.typ {
			continue
		}
		ok, err := itemHasEvent(b, it.ID, need.typ)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", fmt.Errorf("%w: item %s cannot be %s without an %s event", ErrInvalid, it.ID, it.State, need.typ)
		}
	}
	if it.DockSeq != 0 {
		if err := checkDock(b, it); err != nil {
			return "", err
		}
	}

	enc, err := encodeItem(it)
	if err != nil {
		return "", err
	}
	if err := b.items.Put(id, enc); err != nil {
		return "", fmt.Errorf("write item %s: %w", it.ID, err)
	}
	if err := reindex(b, old, it); err != nil {
		return "", fmt.Errorf("index item %s: %w", it.ID, err)
	}
	return digest.Bytes(enc).Hex(), nil
}

func immutableChanged(old, it Item) string {
	switch {
	case old.SHA256 != it.SHA256:
		return "sha256"
	case old.Size != it.Size:
		return "size"
	case old.Camera != it.Camera:
		return "camera"
	case old.SourcePath != it.SourcePath:
		return "source_path"
	case !old.RecordedAt.Equal(it.RecordedAt):
		return "recorded_at"
	case !old.IngestedAt.Equal(it.IngestedAt):
		return "ingested_at"
	case old.Host != it.Host:
		return "host"
	case old.DockSeq != it.DockSeq:
		return "dock_seq"
	}
	return ""
}

// checkDock requires it.DockSeq to be a DOCKED record of the item's camera.
func checkDock(b bkts, it Item) error {
	raw := b.events.Get(seqKey(it.DockSeq))
	if raw == nil {
		return fmt.Errorf("%w: item %s dock_seq %d: no such record", ErrInvalid, it.ID, it.DockSeq)
	}
	dock, err := DecodeRecord(raw)
	if err != nil {
		return fmt.Errorf("item %s dock_seq %d: %w", it.ID, it.DockSeq, err)
	}
	if dock.Type != Docked {
		return fmt.Errorf("%w: item %s dock_seq %d is a %s record, not DOCKED", ErrInvalid, it.ID, it.DockSeq, dock.Type)
	}
	if dock.Camera != "" && it.Camera != "" && dock.Camera != it.Camera {
		return fmt.Errorf("%w: item %s dock_seq %d docked camera %q, not the item's %q", ErrInvalid, it.ID, it.DockSeq, dock.Camera, it.Camera)
	}
	return nil
}

// itemHasEvent reports whether a record of type t names item id.
func itemHasEvent(b bkts, id string, t EventType) (bool, error) {
	ie := b.itemEvents.Bucket([]byte(id))
	if ie == nil {
		return false, nil
	}
	c := ie.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		raw := b.events.Get(k)
		if raw == nil {
			continue
		}
		ev, err := DecodeRecord(raw)
		if err != nil {
			return false, fmt.Errorf("item %s record %x: %w", id, k, err)
		}
		if ev.Type == t && ev.Item == id {
			return true, nil
		}
	}
	return false, nil
}

// indexEntry is one key an item has in one index bucket.
type indexEntry struct {
	index string // "by_time", "by_camera" or "by_assignee"
	sub   string // nested bucket name; "" for by_time
	key   []byte
}

// indexEntries lists the index keys an item must have.
func indexEntries(it Item) []indexEntry {
	k := timeKey(it.RecordedAt, it.ID)
	out := []indexEntry{{index: "by_time", key: k}}
	if it.Camera != "" {
		out = append(out, indexEntry{index: "by_camera", sub: it.Camera, key: k})
	}
	if it.AssignedTo != "" {
		out = append(out, indexEntry{index: "by_assignee", sub: it.AssignedTo, key: k})
	}
	return out
}

func (b bkts) indexBucket(e indexEntry, create bool) (*bolt.Bucket, error) {
	var parent *bolt.Bucket
	switch e.index {
	case "by_time":
		return b.byTime, nil
	case "by_camera":
		parent = b.byCamera
	case "by_assignee":
		parent = b.byAssignee
	}
	if create {
		return parent.CreateBucketIfNotExists([]byte(e.sub))
	}
	return parent.Bucket([]byte(e.sub)), nil
}

func reindex(b bkts, old *Item, it Item) error {
	want := indexEntries(it)
	if old != nil {
	stale:
		for _, o := range indexEntries(*old) {
			for _, n := range want {
				if o.index == n.index && o.sub == n.sub && bytes.Equal(o.key, n.key) {
					continue stale
				}
			}
			bk, _ := b.indexBucket(o, false)
			if bk != nil {
				if err := bk.Delete(o.key); err != nil {
					return err
				}
			}
		}
	}
	for _, e := range want {
		bk, err := b.indexBucket(e, true)
		if err != nil {
			return err
		}
		if err := bk.Put(e.key, []byte{}); err != nil {
			return err
		}
	}
	return nil
}
