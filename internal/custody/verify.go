package custody

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/tlog"
)

// Problem is one thing Verify found wrong. Seq is the record it concerns (0
// when none), Item the item (empty when none); What is a plain sentence for
// a custodian's report.
type Problem struct {
	Seq  uint64 `json:"seq,omitempty"`
	Item string `json:"item,omitempty"`
	What string `json:"what"`
}

// Notice is something Verify reports that is not a failure but that a
// custodian's report should show (records from before signing, a schema 1
// ledger not yet migrated). Seq is the first record it concerns.
type Notice struct {
	Seq  uint64 `json:"seq,omitempty"`
	What string `json:"what"`
}

// VerifyStats says how much Verify looked at.
type VerifyStats struct {
	Events   uint64 // records walked
	Items    uint64 // item projections checked
	Problems uint64 // problems passed to fn
	Signed   uint64 // records whose signature verified with the key in force
	// Vouched is how many of the Signed were authenticated through the
	// signed tree head of their key (one signature over the Merkle root and
	// a hash of the signatures) rather than one by one.
	Vouched  uint64
	Unsigned uint64 // records before the first host key (a Notice, not a problem)
}

// Verify re-walks the whole ledger and passes every inconsistency to fn (nil
// fn only counts them). It never stops at the first problem and never
// panics on garbage; its error is reserved for not being able to look (ctx
// cancelled, file closed). It checks, in order:
//
//   - v1/meta: schema version, host id, a well-formed head;
//   - the chain: every record decodes canonically, its seq matches its key,
//     seqs run from 1 without gaps, each prev_hash is the hash of the record
//     before it, and the head in v1/meta is the last record's seq and hash.
//     A broken link is reported against the EARLIER record, whose bytes no
//     longer hash to what its successor vouches for: that is the record
//     whose bytes were altered (unless the successor's prev_hash was);
//   - every record naming an item is in that item's v1/item_events, and
//     every item a record wrote still exists;
//   - every item: it decodes, its key is its id, its bytes hash to the
//     item_hash of the last record that wrote it, the first such record is
//     VAULTED, its sha256 equals its VAULTED record's (and that of every
//     later COPIED/VAULTED/UPLOADED/VERIFIED record naming it), its host is
//     the VAULTED record's, its state is backed by an UPLOADED or VERIFIED
//     record, its dock_seq is an earlier DOCKED record of its camera, every
//     v1/item_events entry is a record naming it, and it is in each index;
//   - every v1/item_events entry of ids never vaulted, and every entry of
//     by_time, by_camera and by_assignee, points at what it claims to.
//
// The walk reads in chunks of short read transactions (see defaultChunk)
// and may run while Append does. Each record and each item is checked
// within one transaction, so concurrent appends cause no false reports; the
// chain is checked up to the last record present when the walk reached the
// end, against the head in the same transaction.
//
// What the chain and signatures cannot show by themselves: someone able to
// rewrite the file could drop tail records, clean the indexes and rewrite
// the head (and, holding the key, re-sign a rewritten chain). VerifyAgainst
// each checkpoint anchored elsewhere (the object store) rules that out.
//
// Schema 2 adds, in the chain walk: every record from the first HOST_KEY
// record on has a signature in v1/sigs that verifies over its stored bytes
// with the key in force at its seq (keys followed through HOST_KEY and
// KEY_ROTATED records, and v1/keys checked against them); records before it
// are counted as Unsigned and reported as a Notice; and the Merkle tree
// state in v1/meta is the tree over the records (checked only when the chain
// is otherwise sound, since any altered record already shows there).
//
// A signature is checked on its own unless the signed tree head of its key
// (v1/heads) vouches for it: the head's signature verifies with that key and
// its root and signature hash are the ones recomputed from the records and
// v1/sigs when the walk reaches its size. A head that does not check out
// vouches for nothing: every record it was to cover is checked on its own
// after the walk, so the problems named are those a check of every
// signature names. The stored Merkle nodes are compared with the tree the
// walk computes, and they, the heads and the meta sizes are reported only
// on an otherwise sound ledger. Decoding and hashing run on every core, and
// the item side (items, orphans, indexes) beside the chain side. What the
// workers decode is checked in record order all the same: the chain's
// problems come in record order, so the first record the chain names is
// the lowest one altered (TestVerifyParallelNamesTheFirst); signatures
// that do not verify are reported, in record order, when the chain walk
// has ended, and the item side's problems after them.
//
// A panic or memory fault from a damaged file is returned as an error
// wrapping ErrCorrupt.
func (l *Ledger) Verify(ctx context.Context, fn func(Problem)) (VerifyStats, error) {
	return l.VerifyNotices(ctx, fn, nil)
}

// VerifyNotices is Verify that also passes notices (not failures) to notice.
func (l *Ledger) VerifyNotices(ctx context.Context, fn func(Problem), notice func(Notice)) (VerifyStats, error) {
	v := &verifier{l: l, fn: fn, expect: 1, lastHash: GenesisHash, indexWant: map[string]uint64{},
		keysWant: map[uint64][]byte{}, sigc: newSigChecker()}
	defer v.sigc.wait()
	if !l.readOnly { // a read-only Open did this already
		if err := safely(l.checkStructure); err != nil {
			return v.stats, fmt.Errorf("verify ledger %s: %w", l.path, err)
		}
	}
	v.nodeFn = func(level int, index uint64, h tlog.Hash) { v.acc.node(level, index, h, v.seq) }
	chain := func(ctx context.Context) error {
		err := v.chain(ctx)
		if err == nil {
			err = v.recheckSignatures(ctx)
		}
		v.finishSignatures()
		return err
	}
	steps := func(ctx context.Context, fs ...func(context.Context) error) error {
		for _, step := range fs {
			if err := safely(func() error { return step(ctx) }); err != nil {
				return err
			}
		}
		return nil
	}
	if err := steps(ctx, v.meta); err != nil {
		return v.stats, fmt.Errorf("verify ledger %s: %w", l.path, err)
	}
	if !v.noV1 {
		// The item side (items, orphans, indexes) reads nothing the chain
		// side (records, signatures, keys) works out, so it runs at the same
		// time on its own transactions; its problems are kept and passed on
		// after the chain's, in the order a sequential walk reports them.
		iv := &verifier{l: l, indexWant: map[string]uint64{}}
		var items []Problem
		iv.fn = func(p Problem) { items = append(items, p) }
		ictx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- steps(ictx, iv.items, iv.orphans, iv.indexes) }()
		err := steps(ctx, chain, v.keysIndex)
		if err != nil {
			cancel()
		}
		ierr := <-done
		cancel()
		if err == nil {
			err = ierr
		}
		if err != nil {
			return v.stats, fmt.Errorf("verify ledger %s: %w", l.path, err)
		}
		v.stats.Items = iv.stats.Items
		v.found = append(v.found, items...)
		v.flush()
		v.reportAccel()
	}
	if v.unsignedFirst != 0 {
		v.notices = append(v.notices, v.unsignedNotices()...)
	}
	if notice != nil {
		for _, n := range v.notices {
			notice(n)
		}
	}
	l.log.Info("custody ledger verified", "events", v.stats.Events, "items", v.stats.Items,
		"problems", v.stats.Problems, "signed", v.stats.Signed, "unsigned", v.stats.Unsigned)
	return v.stats, nil
}

type verifier struct {
	l     *Ledger
	fn    func(Problem)
	stats VerifyStats
	// found holds the problems of the current transaction; fn is called
	// after it ends, because fn may do I/O.
	found []Problem
	noV1  bool

	// chain walk state, carried across chunks
	expect   uint64 // next seq expected
	havePrev bool   // prevHash is the hash of record expect-1
	prevSeq  uint64
	prevItem string
	prevHash string
	lastSeq  uint64
	lastHash string

	// index entries the item walk found present, by index name
	indexWant    map[string]uint64
	indexMissing bool

	// schema 2: signatures, keys and the Merkle tree
	notices                     []Notice
	version                     uint64
	migratedAt                  uint64 // head seq when migrated from schema 1; 0 if never
	key, pendingKey             *verKey
	keysWant                    map[uint64][]byte
	unsignedFirst, unsignedLast uint64
	tree                        tlog.Frontier
	sigc                        *sigChecker
	hostKeySeq                  uint64            // the first HOST_KEY record
	hostKeyDetails              map[string]string // and what it says

	kvs []recKV  // the chain walk's chunk buffer
	its []itemKV // the item walk's
	ix  indexLookup

	// point lookups through cursors kept within a transaction
	gSigs, gItems, gEvents getter
	gItemEvents            itemEventsGetter

	// stored nodes and signed tree heads
	acc    accelCheck
	seq    uint64                       // the record being walked
	nodeFn func(int, uint64, tlog.Hash) // v.acc.node for v.seq
}

// unsignedNotices describes the records before the first host key.
func (v *verifier) unsignedNotices() []Notice {
	var out []Notice
	first, last := v.unsignedFirst, v.unsignedLast
	if v.migratedAt >= first {
		end := min(last, v.migratedAt)
		out = append(out, Notice{Seq: first, What: fmt.Sprintf(
			"records %d to %d are unsigned (created before signing, schema v1); the first signed record after them vouches for them through the hash chain", first, end)})
		first = end + 1
	}
	if first <= last {
		out = append(out, Notice{Seq: first, What: fmt.Sprintf(
			"records %d to %d are unsigned (appended before this ledger had a host key)", first, last)})
	}
	return out
}

func (v *verifier) report(seq uint64, item, format string, args ...any) {
	addProblem(&v.found, seq, item, format, args...)
}

func addProblem(ps *[]Problem, seq uint64, item, format string, args ...any) {
	*ps = append(*ps, Problem{Seq: seq, Item: item, What: fmt.Sprintf(format, args...)})
}

func (v *verifier) flush() {
	for _, p := range v.found {
		v.stats.Problems++
		if v.fn != nil {
			v.fn(p)
		}
	}
	v.found = v.found[:0]
}

// view runs fn in a read transaction with whatever v1 buckets exist (nil
// for missing ones), then hands the problems it found to the caller.
func (v *verifier) view(ctx context.Context, fn func(b bkts) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := v.l.db.View(func(tx *bolt.Tx) error {
		v1 := tx.Bucket(bucketV1)
		if v1 == nil {
			return fn(bkts{})
		}
		return fn(bkts{
			meta: v1.Bucket(bucketMeta), events: v1.Bucket(bucketEvents), items: v1.Bucket(bucketItems),
			itemEvents: v1.Bucket(bucketItemEvents), byCamera: v1.Bucket(bucketByCamera),
			byAssignee: v1.Bucket(bucketByAssignee), byTime: v1.Bucket(bucketByTime),
			sigs: v1.Bucket(bucketSigs), keys: v1.Bucket(bucketKeys),
			nodes: v1.Bucket(bucketNodes), heads: v1.Bucket(bucketHeads),
		})
	})
	v.flush()
	return err
}

func (v *verifier) meta(ctx context.Context) error {
	return v.view(ctx, func(b bkts) error {
		if b == (bkts{}) {
			v.report(0, "", "bucket v1 is missing: this is not a custody ledger")
			v.noV1 = true
			return nil
		}
		for _, c := range [...]struct {
			name string
			bk   *bolt.Bucket
		}{
			{"meta", b.meta}, {"events", b.events}, {"items", b.items}, {"item_events", b.itemEvents},
			{"by_camera", b.byCamera}, {"by_assignee", b.byAssignee}, {"by_time", b.byTime},
		} {
			if c.bk == nil {
				v.report(0, "", "bucket v1/%s is missing", c.name)
			}
		}
		if b.meta == nil {
			return nil
		}
		ver := b.meta.Get(metaVersion)
		if len(ver) == 8 {
			v.version = binary.BigEndian.Uint64(ver)
		}
		switch {
		case v.version == schemaVersion:
			for _, c := range [...]struct {
				name string
				bk   *bolt.Bucket
			}{{"sigs", b.sigs}, {"keys", b.keys}} {
				if c.bk == nil {
					v.report(0, "", "bucket v1/%s is missing", c.name)
				}
			}
			if m := b.meta.Get(metaMigrated); len(m) == 8 {
				v.migratedAt = binary.BigEndian.Uint64(m)
			}
			v.acc.read(b)
		case v.version == 1 && v.l.readOnly:
			v.notices = append(v.notices, Notice{What: "schema 1 ledger opened read-only: not migrated yet, so no record is signed and the Merkle tree is not stored (open it writable once to migrate)"})
			v.migratedAt = ^uint64(0) // every record predates signing
		default:
			v.report(0, "", "v1/meta schema version is %x, expected %d", ver, schemaVersion)
		}
		if _, err := time.Parse(time.RFC3339Nano, string(b.meta.Get(metaCreatedAt))); err != nil {
			v.report(0, "", "v1/meta created_at is missing or not an RFC 3339 time")
		}
		if host := b.meta.Get(metaHost); len(host) == 0 {
			v.report(0, "", "v1/meta has no host id")
		}
		if _, _, err := readHead(b.meta); err != nil {
			v.report(0, "", "v1/meta head is missing or malformed")
		}
		return nil
	})
}

// walk resumes a cursor after key `after` (from the start when nil).
func walk(c *bolt.Cursor, after []byte) (k, val []byte) {
	if after == nil {
		return c.First()
	}
	k, val = c.Seek(after)
	if k != nil && bytes.Equal(k, after) {
		k, val = c.Next()
	}
	return k, val
}

func (v *verifier) chain(ctx context.Context) error {
	var after []byte
	for {
		done := true
		err := v.view(ctx, func(b bkts) error {
			if b.events == nil {
				return nil
			}
			c := b.events.Cursor()
			v.acc.bucket, v.acc.cur = b.nodes, nil
			kvs := v.kvs[:0] // reused: a chunk's worth is large
			for k, val := walk(c, after); k != nil; k, val = c.Next() {
				if len(kvs) == v.l.chunk {
					done = false
					break
				}
				kvs = append(kvs, recKV{k: k, val: val})
			}
			if len(kvs) > 0 {
				after = slices.Clone(kvs[len(kvs)-1].k)
			}
			// Decoding and hashing are most of a record's cost and need
			// nothing but its bytes (valid until the transaction ends): do
			// them on every core while the chain is checked in order.
			pipeline(len(kvs), func(i int) { kvs[i].decode() }, func(i int) { v.record(b, &kvs[i]) })
			clear(kvs) // nothing of this transaction's pages outlives it
			v.kvs = kvs
			if done {
				v.head(b)
			}
			return nil
		})
		if err != nil || done {
			return err
		}
	}
}

// recKV is one v1/events entry of a chunk and what decode works out of it.
type recKV struct {
	k, val []byte
	ev     Event
	err    error
	hash   string
	leaf   tlog.Hash
}

func (r *recKV) decode() {
	if r.val == nil || len(r.k) != 8 {
		return
	}
	r.hash, r.leaf = RecordHash(r.val), tlog.LeafHash(r.val)
	r.ev, r.err = decodeCanonical(r.val)
	if r.err == nil {
		r.ev.Hash = r.hash
	}
}

// pipeline runs decode(0..n-1) on GOMAXPROCS goroutines, in blocks taken
// in order, while the calling goroutine runs check(0..n-1) in order, each
// as soon as its block is decoded: the in-order checks of a chunk overlap
// its decoding instead of waiting for all of it. decode(i) may touch only
// what belongs to i; check(i) sees everything decode(i) wrote. It returns
// when all are done and no decoding goroutine is left running (they read
// the caller's transaction). A panic in a decoding goroutine (a damaged
// page under SetPanicOnFault) is re-raised on the caller's goroutine, so
// its safely catches it.
func pipeline(n int, decode, check func(i int)) {
	const block = 128
	nb := (n + block - 1) / block
	p := min(runtime.GOMAXPROCS(0), nb)
	if p <= 1 {
		for i := range n {
			decode(i)
		}
		for i := range n {
			check(i)
		}
		return
	}
	done := make([]chan struct{}, nb)
	for j := range done {
		done[j] = make(chan struct{})
	}
	var (
		stop  atomic.Bool
		taken atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		fault any
	)
	for range p {
		wg.Add(1)
		go func() {
			defer wg.Done()
			debug.SetPanicOnFault(true)
			j := -1
			defer func() {
				if r := recover(); r != nil {
					mu.Lock()
					fault = r
					mu.Unlock()
					stop.Store(true)
					if j >= 0 && j < nb {
						close(done[j]) // the checker sees the fault there
					}
				}
			}()
			for !stop.Load() {
				if j = int(taken.Add(1) - 1); j >= nb {
					return
				}
				for i := j * block; i < min(n, (j+1)*block); i++ {
					decode(i)
				}
				close(done[j])
			}
		}()
	}
	// However check ends (a fault of its own too), no decoder outlives it.
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	for j := range nb {
		<-done[j]
		mu.Lock()
		f := fault
		mu.Unlock()
		if f != nil {
			stop.Store(true)
			wg.Wait()
			panic(f)
		}
		for i := j * block; i < min(n, (j+1)*block); i++ {
			check(i)
		}
	}
}

func (v *verifier) record(b bkts, r *recKV) {
	k, val := r.k, r.val
	if val == nil {
		v.report(0, "", "v1/events key %x is a bucket, not a record", k)
		return
	}
	if len(k) != 8 {
		v.report(0, "", "v1/events key %x is not an 8-byte sequence number", k)
		return
	}
	seq := binary.BigEndian.Uint64(k)
	v.stats.Events++
	if seq != v.expect {
		if seq == v.expect+1 {
			v.report(v.expect, "", "record %d is missing", v.expect)
		} else {
			v.report(v.expect, "", "records %d to %d are missing", v.expect, seq-1)
		}
		v.havePrev = false
	}
	h := r.hash
	v.seq = seq
	v.tree.AppendFunc(r.leaf, v.nodeFn)
	ev, err := r.ev, r.err
	if err != nil {
		v.report(seq, "", "record %d does not decode: %v", seq, err)
		v.signature(b, k, seq, val, nil)
	} else {
		v.signature(b, k, seq, val, &ev)
		if ev.Seq != seq {
			v.report(seq, ev.Item, "record stored at seq %d says it is seq %d", seq, ev.Seq)
		}
		if ev.Host != v.l.host {
			v.report(seq, ev.Item, "record %d was made by host %q, but this ledger belongs to host %q", seq, ev.Host, v.l.host)
		}
		switch {
		case seq == 1 && ev.PrevHash != GenesisHash:
			v.report(seq, ev.Item, "record 1's prev_hash is %s, not the genesis hash", ev.PrevHash)
		case v.havePrev && ev.PrevHash != v.prevHash:
			v.report(v.prevSeq, v.prevItem,
				"record %d's bytes hash to %s, but record %d holds prev_hash %s for it: record %d was altered (or record %d's prev_hash was)",
				v.prevSeq, v.prevHash, seq, ev.PrevHash, v.prevSeq, seq)
		}
		if ev.Item != "" {
			if v.gItemEvents.get(b.itemEvents, ev.Item, k) == nil {
				v.report(seq, ev.Item, "record %d names item %s but that item's custody index (v1/item_events) does not list it", seq, ev.Item)
			}
			// Items are never deleted, and the item is written in the
			// same transaction as the record, so this cannot be a race.
			if ev.ItemHash != "" && b.items != nil && v.gItems.get(b.items, []byte(ev.Item)) == nil {
				v.report(seq, ev.Item, "record %d wrote item %s, which no longer exists", seq, ev.Item)
			}
		}
	}
	v.expect = seq + 1
	v.havePrev, v.prevSeq, v.prevHash, v.prevItem = true, seq, h, ev.Item
	v.lastSeq, v.lastHash = seq, h
}

// head compares the end of the chain with v1/meta, in the transaction that
// found the end, so an Append racing the walk cannot cause a false report.
func (v *verifier) head(b bkts) {
	if b.meta == nil {
		return
	}
	hs, hh, err := readHead(b.meta)
	if err != nil {
		return // reported by meta
	}
	switch {
	case hs > v.lastSeq:
		v.report(v.lastSeq+1, "", "v1/meta says the head is record %d but the last record is %d: records %d to %d were removed from the tail",
			hs, v.lastSeq, v.lastSeq+1, hs)
	case hs < v.lastSeq:
		v.report(hs+1, "", "records %d to %d lie beyond the head recorded in v1/meta (%d)", hs+1, v.lastSeq, hs)
	case hh != v.lastHash && hs == 0:
		v.report(0, "", "the ledger is empty but the head hash in v1/meta is %s, not the genesis hash", hh)
	case hh != v.lastHash:
		v.report(hs, v.prevItem, "record %d's bytes hash to %s, but the head in v1/meta holds %s: record %d was altered (or the head was)",
			hs, v.lastHash, hh, hs)
	}
	if b.sigs != nil {
		if k, _ := b.sigs.Cursor().Last(); len(k) == 8 && binary.BigEndian.Uint64(k) > v.lastSeq {
			v.report(binary.BigEndian.Uint64(k), "", "v1/sigs holds a signature for record %d, which does not exist", binary.BigEndian.Uint64(k))
		}
	}
	if v.version < 2 {
		return
	}
	v.endCover(v.lastSeq)
	v.acc.endNodes(b, v.lastSeq)
	v.checkMetaBinding(b)
	stored, err := readTree(b.meta)
	switch {
	case err != nil:
		v.report(0, "", "the Merkle tree state in v1/meta is missing or malformed")
	case v.stats.Problems+uint64(len(v.found)) > 0:
		// Any altered record is already reported, and changes the tree.
	case stored.Size != v.tree.Size || stored.Root() != v.tree.Root():
		v.report(0, "", "the Merkle tree state in v1/meta (size %d, root %s) is not the tree over the records (size %d, root %s)",
			stored.Size, stored.Root(), v.tree.Size, v.tree.Root())
	}
}

// itemFacts is what an item's records say about it.
type itemFacts struct {
	firstWrite, lastWrite    uint64
	firstWriteType           EventType
	lastWriteHash            string
	firstVaulted             uint64
	vaultedSHA, vaultedHost  string
	hasUploaded, hasVerified bool
	shaClaims                []shaClaim
}

type shaClaim struct {
	seq uint64
	typ EventType
	sha string
}

// itemRecords checks the item_events entries of id and gathers what the
// records they point at say, adding what is wrong to ps. It only reads the
// transaction, so the item walk runs it on every core (a read-only bbolt
// transaction's buckets, cursors and pages keep no state shared between
// cursors but atomic counters): its problems are reported in order later.
func itemRecords(b bkts, id string, ps *[]Problem) itemFacts {
	var f itemFacts
	if b.itemEvents == nil || b.events == nil {
		return f
	}
	ie := b.itemEvents.Bucket([]byte(id))
	if ie == nil {
		return f
	}
	var events getter
	c := ie.Cursor()
	for k, val := c.First(); k != nil; k, val = c.Next() {
		if len(k) != 8 {
			addProblem(ps, 0, id, "the custody index of item %s has a malformed key %x", id, k)
			continue
		}
		seq := binary.BigEndian.Uint64(k)
		if len(val) != 0 {
			addProblem(ps, seq, id, "the custody index of item %s holds data for record %d (entries are empty)", id, seq)
		}
		raw := events.get(b.events, k)
		if raw == nil {
			addProblem(ps, seq, id, "the custody index of item %s lists record %d, which does not exist", id, seq)
			continue
		}
		// Fully decoded and reported by the chain walk already: read only
		// what the item checks need.
		ev, err := parseFacts(raw)
		if err != nil {
			continue
		}
		if ev.Item != id {
			addProblem(ps, seq, id, "the custody index of item %s lists record %d, which names item %q", id, seq, ev.Item)
			continue
		}
		if ev.ItemHash != "" {
			if f.firstWrite == 0 {
				f.firstWrite, f.firstWriteType = seq, ev.Type
			}
			f.lastWrite, f.lastWriteHash = seq, ev.ItemHash
		}
		switch ev.Type {
		case Vaulted:
			if f.firstVaulted == 0 {
				f.firstVaulted, f.vaultedSHA, f.vaultedHost = seq, ev.SHA256, ev.Host
			}
		case Uploaded:
			f.hasUploaded = true
		case Verified:
			f.hasVerified = true
		}
		if hashBearing(ev.Type) && ev.SHA256 != "" {
			f.shaClaims = append(f.shaClaims, shaClaim{seq, ev.Type, ev.SHA256})
		}
	}
	return f
}

func (v *verifier) items(ctx context.Context) error {
	var after []byte
	for {
		done := true
		err := v.view(ctx, func(b bkts) error {
			if b.items == nil {
				return nil
			}
			c := b.items.Cursor()
			v.ix = indexLookup{} // its buckets and cursors are this transaction's
			its := v.its[:0]     // reused: a chunk's worth is large
			for k, val := walk(c, after); k != nil; k, val = c.Next() {
				if len(its) == v.l.chunk {
					done = false
					break
				}
				its = append(its, itemKV{id: string(k), raw: val})
			}
			if len(its) > 0 {
				after = []byte(its[len(its)-1].id)
			}
			pipeline(len(its), func(i int) { its[i].decode(b) }, func(i int) { v.item(b, &its[i]) })
			clear(its) // nothing of this transaction's pages outlives it
			v.its = its
			return nil
		})
		if err != nil || done {
			return err
		}
	}
}

// itemKV is one v1/items entry of a chunk and what decode works out of it.
// raw and the strings of facts point into the transaction's pages.
type itemKV struct {
	id   string
	raw  []byte
	it   Item
	err  error
	hash string
	// what the item's records say (itemRecords), for an item that decodes
	facts    itemFacts
	problems []Problem
}

func (x *itemKV) decode(b bkts) {
	if x.raw != nil {
		x.it, x.err = decodeItem(x.raw)
		x.hash = digest.Bytes(x.raw).Hex()
		if x.err == nil {
			x.facts = itemRecords(b, x.id, &x.problems)
		}
	}
}

func (v *verifier) item(b bkts, x *itemKV) {
	id, raw := x.id, x.raw
	if raw == nil {
		v.report(0, id, "v1/items key %q is a bucket, not an item", id)
		return
	}
	v.stats.Items++
	it, err := x.it, x.err
	if err != nil {
		v.report(0, id, "item %s does not decode: %v", id, err)
		return
	}
	if it.ID != id {
		v.report(0, id, "item stored under %q has id %q", id, it.ID)
	}
	f := x.facts
	v.found = append(v.found, x.problems...)

	switch h := x.hash; {
	case f.lastWrite == 0:
		v.report(0, id, "no record wrote item %s (none carries an item_hash for it)", id)
	case h != f.lastWriteHash:
		v.report(f.lastWrite, id, "item %s does not hash to the item_hash of record %d, the last record that wrote it: the item was altered", id, f.lastWrite)
	}
	if f.firstWrite != 0 && f.firstWriteType != Vaulted {
		v.report(f.firstWrite, id, "item %s was first written by a %s record (%d), not VAULTED", id, f.firstWriteType, f.firstWrite)
	}
	if f.firstVaulted == 0 {
		v.report(0, id, "no VAULTED record names item %s", id)
	} else {
		if it.SHA256 != f.vaultedSHA {
			v.report(f.firstVaulted, id, "item %s has sha256 %s but its VAULTED record %d has %s", id, it.SHA256, f.firstVaulted, f.vaultedSHA)
		}
		if it.Host != f.vaultedHost {
			v.report(f.firstVaulted, id, "item %s has host %q but its VAULTED record %d was made by %q", id, it.Host, f.firstVaulted, f.vaultedHost)
		}
		for _, c := range f.shaClaims {
			if c.seq > f.firstVaulted && c.sha != it.SHA256 {
				v.report(c.seq, id, "%s record %d carries sha256 %s but item %s has %s", c.typ, c.seq, c.sha, id, it.SHA256)
			}
		}
	}
	switch {
	case !it.State.valid():
		v.report(0, id, "item %s has unknown state %q", id, it.State)
	case it.State == StateUploaded && !f.hasUploaded:
		v.report(0, id, "item %s is uploaded but no UPLOADED record names it", id)
	case it.State == StateVerified && !f.hasVerified:
		v.report(0, id, "item %s is verified but no VERIFIED record names it", id)
	}
	if it.DockSeq != 0 && b.events != nil {
		raw := v.gEvents.get(b.events, seqKey(it.DockSeq))
		if raw == nil {
			v.report(it.DockSeq, id, "item %s names dock record %d, which does not exist", id, it.DockSeq)
		} else if dock, err := parseFacts(raw); err == nil { // checked in full by the chain walk
			switch {
			case dock.Type != Docked:
				v.report(it.DockSeq, id, "item %s names dock record %d, which is %s, not DOCKED", id, it.DockSeq, dock.Type)
			case dock.Camera != "" && it.Camera != "" && dock.Camera != it.Camera:
				v.report(it.DockSeq, id, "item %s is from camera %q but its dock record %d docked %q", id, it.Camera, it.DockSeq, dock.Camera)
			case f.firstVaulted != 0 && it.DockSeq > f.firstVaulted:
				v.report(it.DockSeq, id, "item %s names dock record %d, which is after its VAULTED record %d", id, it.DockSeq, f.firstVaulted)
			}
		}
	}
	for _, e := range indexEntries(it) {
		v.indexWant[e.index]++
		if !v.ix.has(b, e) {
			v.indexMissing = true
			if e.sub == "" {
				v.report(0, id, "item %s is missing from index %s", id, e.index)
			} else {
				v.report(0, id, "item %s is missing from index %s/%s", id, e.index, e.sub)
			}
		}
	}
}

// indexLookup finds index entries within one read transaction through a
// getter per index bucket, each nested bucket opened once: bbolt's Get and
// Bucket make a cursor (and Bucket a bucket) on every call, and the item
// walk asks three of them per item.
type indexLookup struct {
	byTime getter
	subs   map[[2]string]*subGetter // by index name and sub-bucket name
}

type subGetter struct {
	b *bolt.Bucket // nil when the sub-bucket is missing
	g getter
}

// has reports whether entry e is in its index (a nested bucket's key does
// not count).
func (x *indexLookup) has(b bkts, e indexEntry) bool {
	if e.index == "by_time" {
		return x.byTime.get(b.byTime, e.key) != nil
	}
	k := [2]string{e.index, e.sub}
	s, ok := x.subs[k]
	if !ok {
		if x.subs == nil {
			x.subs = map[[2]string]*subGetter{}
		}
		s = &subGetter{b: b.lenientIndex(e)}
		x.subs[k] = s
	}
	return s.g.get(s.b, e.key) != nil
}

func (b bkts) lenientIndex(e indexEntry) *bolt.Bucket {
	switch e.index {
	case "by_time":
		return b.byTime
	case "by_camera":
		if b.byCamera != nil {
			return b.byCamera.Bucket([]byte(e.sub))
		}
	case "by_assignee":
		if b.byAssignee != nil {
			return b.byAssignee.Bucket([]byte(e.sub))
		}
	}
	return nil
}

// orphans checks the v1/item_events buckets of ids that have no item (steps
// of footage never vaulted, such as a failed copy). Those of items were
// checked with the item.
func (v *verifier) orphans(ctx context.Context) error {
	var after []byte
	for {
		done := true
		err := v.view(ctx, func(b bkts) error {
			if b.itemEvents == nil || b.items == nil || b.events == nil {
				return nil
			}
			c := b.itemEvents.Cursor()
			n := 0
			for k, val := walk(c, after); k != nil; k, val = c.Next() {
				if n >= v.l.chunk {
					done = false
					return nil
				}
				after = slices.Clone(k)
				id := string(k)
				if val != nil {
					v.report(0, id, "v1/item_events key %q is not a bucket", id)
					continue
				}
				if b.items.Get(k) != nil {
					continue
				}
				ie := b.itemEvents.Bucket(k)
				ic := ie.Cursor()
				for ek, ev := ic.First(); ek != nil; ek, ev = ic.Next() {
					n++
					if len(ek) != 8 {
						v.report(0, id, "the custody index of item %s has a malformed key %x", id, ek)
						continue
					}
					seq := binary.BigEndian.Uint64(ek)
					if len(ev) != 0 {
						v.report(seq, id, "the custody index of item %s holds data for record %d (entries are empty)", id, seq)
					}
					raw := b.events.Get(ek)
					if raw == nil {
						v.report(seq, id, "the custody index of item %s lists record %d, which does not exist", id, seq)
						continue
					}
					if ev, err := decodeCanonical(raw); err == nil && ev.Item != id {
						v.report(seq, id, "the custody index of item %s lists record %d, which names item %q", id, seq, ev.Item)
					}
				}
				n++
			}
			return nil
		})
		if err != nil || done {
			return err
		}
	}
}

// indexes checks that every index entry points at an item that belongs
// there (the reverse direction was checked per item). The detailed walk
// reads the item behind every entry; it is skipped for an index whose entry
// count equals the number of entries the item walk found present (and found
// none missing), because then there is no other entry: each item has one
// entry per index, an item's entry is only ever replaced, never removed, and
// an item or entry added since the item walk makes the count larger.
func (v *verifier) indexes(ctx context.Context) error {
	for _, ix := range [...]struct {
		name   string
		get    func(bkts) *bolt.Bucket
		nested bool
	}{
		{"by_time", func(b bkts) *bolt.Bucket { return b.byTime }, false},
		{"by_camera", func(b bkts) *bolt.Bucket { return b.byCamera }, true},
		{"by_assignee", func(b bkts) *bolt.Bucket { return b.byAssignee }, true},
	} {
		// Entries are keys only; data in one is damage (or a hiding place).
		checkValue := func(sub, k, val []byte) {
			if (sub != nil || !ix.nested) && len(val) != 0 {
				where := "v1/" + ix.name
				if sub != nil {
					where += "/" + string(sub)
				}
				v.report(0, "", "index %s entry %x holds data (entries are empty)", where, k)
			}
		}
		if !v.indexMissing {
			var n uint64
			err := v.index(ctx, ix.name, ix.get, ix.nested, func(_ bkts, sub, k, val []byte) {
				n++
				checkValue(sub, k, val)
			})
			if err != nil {
				return err
			}
			if n == v.indexWant[ix.name] {
				continue
			}
		}
		err := v.index(ctx, ix.name, ix.get, ix.nested, func(b bkts, sub, k, val []byte) {
			if v.indexMissing { // the counting pass did not run
				checkValue(sub, k, val)
			}
			if sub == nil && ix.nested {
				v.report(0, "", "v1/%s key %q is not a bucket", ix.name, k)
				return
			}
			v.indexEntry(b, ix.name, string(sub), k)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// index walks one index, flat or nested one level (by_camera/<serial>/...),
// calling visit for every entry (and, with a nil sub, for every key of a
// nested index that is not a bucket), resuming at (sub, after) between
// chunks.
func (v *verifier) index(ctx context.Context, name string, get func(bkts) *bolt.Bucket, nested bool,
	visit func(b bkts, sub, k, val []byte)) error {
	var sub, after []byte
	for {
		done := true
		err := v.view(ctx, func(b bkts) error {
			top := get(b)
			if top == nil || b.items == nil {
				return nil
			}
			n := 0
			// entries walks one flat bucket from after; false means the
			// chunk is full and the walk resumes at after.
			entries := func(bk *bolt.Bucket, sub []byte) bool {
				c := bk.Cursor()
				for k, val := walk(c, after); k != nil; k, val = c.Next() {
					if n == v.l.chunk {
						return false
					}
					n++
					after = slices.Clone(k)
					visit(b, sub, k, val)
				}
				after = nil
				return true
			}
			if !nested {
				done = entries(top, nil)
				return nil
			}
			c := top.Cursor()
			var k, val []byte
			if sub == nil {
				k, val = c.First()
			} else if k, val = c.Seek(sub); !bytes.Equal(k, sub) {
				after = nil // the sub bucket we were in is gone
			}
			for ; k != nil; k, val = c.Next() {
				sub = slices.Clone(k)
				if val != nil {
					visit(b, nil, k, val)
					continue
				}
				if !entries(top.Bucket(k), k) {
					done = false
					return nil
				}
			}
			return nil
		})
		if err != nil || done {
			return err
		}
	}
}

func (v *verifier) indexEntry(b bkts, name, sub string, k []byte) {
	where := "v1/" + name
	if sub != "" {
		where += "/" + sub
	}
	if len(k) < 9 {
		v.report(0, "", "index %s has a malformed key %x", where, k)
		return
	}
	id := string(k[8:])
	raw := b.items.Get(k[8:])
	if raw == nil {
		v.report(0, id, "index %s lists item %s, which does not exist", where, id)
		return
	}
	it, err := decodeItem(raw)
	if err != nil {
		return // reported by the item walk
	}
	if !bytes.Equal(timeKey(it.RecordedAt, it.ID), k) {
		v.report(0, id, "index %s lists item %s under a time that is not its recorded_at", where, id)
	}
	switch {
	case name == "by_camera" && it.Camera != sub:
		v.report(0, id, "index %s lists item %s, whose camera is %q", where, id, it.Camera)
	case name == "by_assignee" && it.AssignedTo != sub:
		v.report(0, id, "index %s lists item %s, which is assigned to %q", where, id, it.AssignedTo)
	}
}

// getter is Bucket.Get through one cursor kept while the bucket is the same
// (within one read transaction): bbolt's Get makes a new cursor and grows
// its page stack on every call, which was a sixth of Verify's CPU time
// in allocations and garbage collection. It returns what Get returns: nil
// for a missing key and for a nested bucket's key.
//
// Verify mostly asks for the key it asked for last (records naming the same
// item) or the one after it (signatures and an item's records, by seq), so
// the cursor's position is kept: the same key is answered from it, and a
// larger one first from the cursor's next key, which, being the first key
// after the last one, is also the first key at or after the one asked for
// when it is not smaller; only otherwise does get search the tree again.
type getter struct {
	b    *bolt.Bucket
	c    *bolt.Cursor
	k, v []byte // where the cursor is (k nil: unknown or at the end)
}

func (g *getter) get(b *bolt.Bucket, k []byte) []byte {
	if b == nil {
		return nil
	}
	if g.b != b {
		g.b, g.c, g.k, g.v = b, b.Cursor(), nil, nil
	}
	if g.k != nil {
		switch cmp := bytes.Compare(k, g.k); {
		case cmp == 0:
			return g.v
		case cmp > 0:
			nk, nv := g.c.Next()
			if nk == nil { // k lies beyond the last key
				g.k, g.v = nil, nil
				return nil
			}
			if bytes.Compare(nk, k) >= 0 {
				g.k, g.v = nk, nv
				if bytes.Equal(nk, k) {
					return nv
				}
				return nil
			}
		}
	}
	g.k, g.v = g.c.Seek(k)
	if !bytes.Equal(g.k, k) {
		return nil
	}
	return g.v
}

// get returns the value of k in item id's v1/item_events bucket, kept while
// consecutive records name the same item (an item's steps are mostly
// appended together), so its bucket is opened once for them.
func (g *itemEventsGetter) get(parent *bolt.Bucket, id string, k []byte) []byte {
	if parent == nil {
		return nil
	}
	if g.parent != parent || g.id != id {
		g.parent, g.id, g.b = parent, id, parent.Bucket([]byte(id))
	}
	return g.g.get(g.b, k)
}

// itemEventsGetter is getter for one item's v1/item_events bucket.
type itemEventsGetter struct {
	parent, b *bolt.Bucket
	id        string
	g         getter
}
