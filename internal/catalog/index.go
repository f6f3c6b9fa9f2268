package catalog

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/custody"
)

// index writes checked batches and the host's new tail in one
// transaction: the index never holds records past a tail it did not reach.
// hs is updated to what was written.
func (c *Catalog) index(hs *HostState, group []followed) error {
	next := *hs
	err := c.db.Update(func(tx *bolt.Tx) error {
		w := newIndexWriter(tx, next.ID, group)
		for _, g := range group {
			for _, r := range g.b.Records {
				if err := w.record(r.Seq, r.KeyID, r.Bytes, r.Event); err != nil {
					return err
				}
				next.LastRecordAt = r.Event.At
			}
			t := g.next
			next.Tail, next.Records, next.Broken = t, t.Size, nil
			for _, k := range [][]byte{t.Key, t.Next} {
				if b64 := base64.StdEncoding.EncodeToString(k); len(k) > 0 && !slices.Contains(next.Keys, b64) {
					next.Keys = append(next.Keys, b64)
				}
			}
		}
		created, err := w.flush()
		if err != nil {
			return err
		}
		next.Items += created
		return putHost(tx, next)
	})
	if err == nil {
		*hs = next
	}
	return err
}

// indexWriter indexes one host's group of records in one transaction.
//
// Why it holds the group's items and cameras in memory and writes each
// once at the end: a recording's five records (DOCKED, COPIED, VAULTED,
// UPLOADED, VERIFIED) used to read, decode, encode and write its item
// three times and its not-verified entry four times, and look up (and
// decode again) the COPIED and DOCKED records the group had just decoded;
// that was most of the CPU a rebuild spent (docs/BENCHMARKS.md). What it
// writes is what writing record by record wrote.
type indexWriter struct {
	tx                *bolt.Tx
	host              string
	recs, items       *bolt.Bucket
	events            map[uint64]*custody.Event // the group's records by seq
	pending           map[string]*pendingItem   // by item id
	cameras           map[string]*pendingCamera // by serial
	assign, byCam     [][]byte                  // keys of items created by the group
	created           int
	recordPuts, byItm []keyValue
}

// pendingItem is an item as the group leaves it, and as the index held it
// before the group (was; zero when it was not indexed).
type pendingItem struct {
	it, was custody.Item
	dirty   bool
}

// pendingCamera is a camera's last dock as the group leaves it: known
// when the index or the group holds one, dirty when the group's is later.
type pendingCamera struct {
	cam          CameraHealth
	known, dirty bool
}

type keyValue struct{ k, v []byte }

// fillPercent is how full the index's pages are filled before a split.
const fillPercent = 0.9

func newIndexWriter(tx *bolt.Tx, host string, group []followed) *indexWriter {
	w := &indexWriter{tx: tx, host: host, recs: tx.Bucket(bRecords), items: tx.Bucket(bItems),
		pending: map[string]*pendingItem{}, cameras: map[string]*pendingCamera{}}
	n := 0
	for _, g := range group {
		n += len(g.b.Records)
	}
	w.events = make(map[uint64]*custody.Event, n)
	w.recordPuts, w.byItm = make([]keyValue, 0, n), make([]keyValue, 0, n)
	for _, g := range group {
		for i := range g.b.Records {
			r := &g.b.Records[i]
			w.events[r.Seq] = &r.Event
		}
	}
	return w
}

// record indexes one checked record.
func (w *indexWriter) record(seq uint64, keyID string, rec []byte, ev custody.Event) error {
	v := append(append(make([]byte, 0, len(keyID)+1+len(rec)), keyID...), '\n')
	w.recordPuts = append(w.recordPuts, keyValue{recordKey(w.host, seq), append(v, rec...)})
	if ev.Item != "" {
		w.byItm = append(w.byItm, keyValue{k: byItemKey(ev.Item, w.host, seq)})
	}
	if ev.Type == custody.Docked {
		if err := w.docked(ev); err != nil {
			return err
		}
	}
	return w.project(ev)
}

// docked records a camera's dock at the host, unless a later one at
// this host is already recorded: each host keeps its own (see the
// package-level docked).
func (w *indexWriter) docked(ev custody.Event) error {
	if ev.Camera == "" {
		return nil
	}
	old := w.cameras[ev.Camera]
	if old == nil {
		old = &pendingCamera{}
		if v := w.tx.Bucket(bCameras).Get(dockKey(ev.Camera, w.host)); v != nil {
			old.known = json.Unmarshal(v, &old.cam) == nil
		}
		w.cameras[ev.Camera] = old
	}
	if c := old.cam; old.known && c.LastDockedAt.After(ev.At) {
		return nil
	}
	*old = pendingCamera{known: true, dirty: true, cam: CameraHealth{Serial: ev.Camera, Host: w.host, Kind: ev.Details["kind"],
		AssignedTo: ev.Details["assigned_to"], LastDockedAt: ev.At}}
	return nil
}

// project updates the item an event describes, the way the dock host's
// ledger did when it appended it: the item exists from VAULTED (with what
// COPIED and its DOCKED recorded), and UPLOADED and VERIFIED move it on.
func (w *indexWriter) project(ev custody.Event) error {
	if ev.Item == "" {
		return nil
	}
	switch ev.Type {
	case custody.Vaulted, custody.Uploaded, custody.Verified:
	default:
		return nil
	}
	p := w.pending[ev.Item]
	if p == nil {
		var it custody.Item
		if v := w.items.Get(itemKey(w.host, ev.Item)); v != nil {
			if err := decodeItem(v, &it); err != nil {
				return fmt.Errorf("item %s of %s: %w", ev.Item, w.host, err)
			}
		} else if ev.Type != custody.Vaulted {
			return nil
		}
		p = &pendingItem{it: it, was: it}
		w.pending[ev.Item] = p
	}
	it := &p.it
	p.dirty = true
	d := ev.Details
	switch ev.Type {
	case custody.Vaulted:
		created := it.ID == ""
		*it = custody.Item{ID: ev.Item, Camera: ev.Camera, SHA256: ev.SHA256, Host: w.host, IngestedAt: ev.At,
			State: custody.StateVaulted, VaultPath: d["vault_path"], RetentionClass: it.RetentionClass}
		if cp, ok := w.lookup(d["copied_seq"]); ok {
			c := cp.Details
			it.SourcePath = c["source_path"]
			it.Size, _ = strconv.ParseInt(c["size"], 10, 64)
			it.RecordedAt, _ = time.Parse(time.RFC3339Nano, c["recorded_at"])
			it.DockSeq, _ = strconv.ParseUint(c["dock_seq"], 10, 64)
			if dk, ok := w.lookup(c["dock_seq"]); ok {
				it.Kind, it.AssignedTo = dk.Details["kind"], dk.Details["assigned_to"]
			}
		}
		if created {
			// Who a recording was issued to and when it was recorded are
			// fixed at VAULTED: the index by them is written once.
			w.created++
			w.assign = append(w.assign, assignKey(it.AssignedTo, it.RecordedAt, w.host, it.ID))
			w.byCam = append(w.byCam, assignKey(it.Camera, it.RecordedAt, w.host, it.ID))
		}
	case custody.Uploaded:
		it.State, it.ObjectKey, it.VersionID = custody.StateUploaded, d["key"], d["version_id"]
		if d["retention_class"] != "" {
			it.RetentionClass = d["retention_class"]
		}
		if t, err := time.Parse(time.RFC3339, d["retain_until"]); err == nil {
			it.RetainUntil = t
		}
	case custody.Verified:
		it.State = custody.StateVerified
	}
	return nil
}

// lookup is the host's record seq (a decimal string): from the group when
// it is there (already decoded), else from the index.
func (w *indexWriter) lookup(seq string) (custody.Event, bool) {
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return custody.Event{}, false
	}
	if ev, ok := w.events[n]; ok {
		return *ev, true
	}
	v := w.recs.Get(recordKey(w.host, n))
	if v == nil {
		return custody.Event{}, false
	}
	_, rec, _ := bytes.Cut(v, []byte("\n"))
	ev, err := custody.DecodeRecord(rec)
	return ev, err == nil
}

// flush writes what the group's records add up to, each bucket's keys in
// order (bbolt fills its pages in order rather than splitting them at
// random), and returns how many items the group created.
func (w *indexWriter) flush() (int, error) {
	var itemPuts, unvPuts, unvDels, objPuts, objDels []keyValue
	for _, p := range w.pending {
		if !p.dirty {
			continue
		}
		it, was := p.it, p.was
		v, err := encodeItem(it)
		if err != nil {
			return 0, err
		}
		itemPuts = append(itemPuts, keyValue{itemKey(w.host, it.ID), v})
		if was.ID != "" && was.State != custody.StateVerified {
			unvDels = append(unvDels, keyValue{k: unverifiedKey(w.host, was.IngestedAt, was.ID)})
		}
		if it.State != custody.StateVerified {
			unvPuts = append(unvPuts, keyValue{k: unverifiedKey(w.host, it.IngestedAt, it.ID)})
		}
		moved := was.ObjectKey != it.ObjectKey || was.VersionID != it.VersionID
		if was.ID != "" && was.ObjectKey != "" && moved {
			objDels = append(objDels, keyValue{k: byObjectKey(was.ObjectKey, was.VersionID, w.host, was.ID)})
		}
		if it.ObjectKey != "" && (was.ID == "" || moved) {
			objPuts = append(objPuts, keyValue{k: byObjectKey(it.ObjectKey, it.VersionID, w.host, it.ID)})
		}
	}
	var camPuts []keyValue
	for serial, p := range w.cameras {
		if !p.dirty {
			continue
		}
		v, err := json.Marshal(p.cam)
		if err != nil {
			return 0, err
		}
		camPuts = append(camPuts, keyValue{dockKey(serial, w.host), v})
	}
	keysOnly := func(ks [][]byte) []keyValue {
		out := make([]keyValue, len(ks))
		for i, k := range ks {
			out[i] = keyValue{k: k}
		}
		return out
	}
	for _, b := range []struct {
		name []byte
		kvs  []keyValue
	}{{bUnverified, unvDels}, {bByObject, objDels}} {
		bk := w.tx.Bucket(b.name)
		slices.SortFunc(b.kvs, func(a, b keyValue) int { return bytes.Compare(a.k, b.k) })
		for _, kv := range b.kvs {
			if err := bk.Delete(kv.k); err != nil {
				return 0, err
			}
		}
	}
	for _, b := range []struct {
		name []byte
		kvs  []keyValue
	}{
		{bRecords, w.recordPuts}, {bByItem, w.byItm}, {bItems, itemPuts}, {bUnverified, unvPuts},
		{bByAssign, keysOnly(w.assign)}, {bByCamera, keysOnly(w.byCam)}, {bCameras, camPuts}, {bByObject, objPuts},
	} {
		bk := w.tx.Bucket(b.name)
		// Each host's keys of every bucket arrive mostly in order (by
		// sequence, id, time): pages filled to bbolt's default half
		// before a split stay half empty, which doubled the file.
		bk.FillPercent = fillPercent
		slices.SortFunc(b.kvs, func(a, b keyValue) int { return bytes.Compare(a.k, b.k) })
		for _, kv := range b.kvs {
			if err := bk.Put(kv.k, kv.v); err != nil {
				return 0, fmt.Errorf("index %s: %w", b.name, err)
			}
		}
	}
	return w.created, nil
}
