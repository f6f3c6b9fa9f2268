// Package catalog is a fleet console's index of every dock host's custody,
// read from the object store those hosts anchor in (package anchor) and
// checked as it is read.
//
// Why: investigators and custodians work at headquarters, not at a dock
// host's shell. The store is the one thing every host already trusts and
// writes its signed history to under COMPLIANCE lock, so the console needs
// no database server and no dock host needs to trust the console.
//
// Rules the catalog keeps:
//   - Only hosts the configuration lists are served, and each only with
//     the key the configuration pins (anchor.Follow): a key the store
//     offers is never trusted on its own word, a rotation only when the
//     key before it signed it.
//   - A record is served only once the checkpoint that covers it has been
//     read and verified: records hashed into that checkpoint's root, chained,
//     each signature checked with the key in force.
//   - A host whose anchored history forks, skips or fails a signature is
//     flagged, by name, with the object at fault; nothing after the break
//     is served.
//   - A host that anchors in the bucket but is not listed is shown as
//     untrusted and never served.
//   - The bbolt file is only a cache of the store: delete it and the next
//     Sync rebuilds the same index (Dump compares two).
package catalog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/signing"
)

// Trusted is one dock host the configuration lists, with its pinned key.
type Trusted struct {
	ID  string
	Key ed25519.PublicKey
}

// Options tune Open.
type Options struct {
	// Self is the console's own host id: its anchored ledger is neither a
	// trusted dock host nor an untrusted stranger.
	Self   string
	Logger *slog.Logger
	// Timeout is how long to wait for the index's file lock.
	Timeout time.Duration
	// AllSignatures verifies every record's own signature, not only the
	// key records' and the checkpoints' (anchor.FollowOptions).
	AllSignatures bool
}

// Catalog is an open index.
type Catalog struct {
	db      *bolt.DB
	store   anchor.Store
	trusted []Trusted
	self    string
	log     *slog.Logger
	syncMu  sync.Mutex // one Sync at a time
	allSigs bool
}

var (
	bHosts     = []byte("hosts")          // host id → HostState (JSON)
	bRecords   = []byte("records")        // host 0 seq → key id \n record bytes
	bItems     = []byte("items")          // host 0 item id → custody.Item (encodeItem)
	bByItem    = []byte("by_item")        // item id 0 host 0 seq → ""
	bUntrusted = []byte("untrusted")      // host id → ""
	bCameras   = []byte("camera_docks")   // serial 0 host → CameraHealth (JSON) as of its last DOCKED there
	bByAssign  = []byte("by_assigned_to") // assigned_to 0 recorded_at 0 host 0 id → ""
	bByCamera  = []byte("by_camera")      // camera 0 recorded_at 0 host 0 id → ""
	// bUnverified holds the items not yet VERIFIED in the store, by host
	// and time vaulted: host 0 ingested_at 0 id → "". It is what the
	// fleet's not-verified counts read, so they cost the few items still
	// on their way, not every item indexed.
	bUnverified = []byte("unverified")
	// bByObject names every stored version an item names, in the order
	// the store lists its keys: object key 0 version id 0 host 0 item id
	// → "". What it is for: the orphans are the store's listing minus
	// these, a merge of two sorted streams, not a set of every item held
	// in memory.
	bByObject  = []byte("by_object")
	allBuckets = [][]byte{bHosts, bRecords, bItems, bByItem, bUntrusted, bCameras, bByAssign, bByCamera, bUnverified, bByObject}
	// bAudited holds, per trusted host, what the last clean audit verified
	// of its checkpoints/ prefix (AuditMemory, JSON): the next audit reads
	// only the versions after it. It is not in allBuckets: it is not
	// what the store says but what was checked when (Dump leaves it out,
	// so a rebuilt index still dumps the same), and it goes whenever the
	// index is rebuilt.
	bAudited = []byte("audited")
	// bOldCameras (serial → the last dock anywhere) is what an index
	// from before camera_docks kept; Open replaces it.
	bOldCameras = []byte("cameras")
)

// HostState is what the index knows of one trusted host.
type HostState struct {
	ID string `json:"id"`
	// Pinned is the id of the configured key the history was followed
	// from; a different pin starts the host again.
	Pinned string `json:"pinned_key_id"`
	// Tail is how far its anchored history has been followed and checked.
	Tail anchor.Tail `json:"tail"`
	// Records is how many of its records are indexed (= Tail.Size);
	// Items how many recordings.
	Records uint64 `json:"records"`
	Items   int    `json:"items"`
	// LastRecordAt is the time of the last record the last checkpoint
	// covers: the checkpoint was written at or after it.
	LastRecordAt time.Time `json:"last_record_at,omitzero"`
	// Broken, when set, is why nothing after Tail is served.
	Broken []anchor.Problem `json:"broken,omitempty"`
	// Keys are the host keys followed so far (base64 raw Ed25519), the
	// pinned one first: what the audit verifies checkpoints with.
	Keys []string `json:"keys,omitempty"`
	// Withheld: the audit found a problem in what was already followed
	// (Broken says which), so nothing of the host is served.
	Withheld bool `json:"withheld,omitempty"`
}

// Open opens (creating) the index at path. hosts are the trusted dock
// hosts; the index keeps nothing of a host no longer listed.
func Open(path string, s anchor.Store, hosts []Trusted, o Options) (*Catalog, error) {
	if s == nil {
		return nil, anchor.ErrNoStore
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.Timeout})
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	c := &Catalog{db: db, store: s, trusted: slices.Clone(hosts), self: o.Self, log: o.Logger, allSigs: o.AllSignatures}
	if err := db.Update(func(tx *bolt.Tx) error {
		// An index written before by_camera existed gets it from its
		// items, once, rather than a rebuild from the store.
		fillCameras := tx.Bucket(bByCamera) == nil && tx.Bucket(bItems) != nil
		fillUnverified := tx.Bucket(bUnverified) == nil && tx.Bucket(bItems) != nil
		fillByObject := tx.Bucket(bByObject) == nil && tx.Bucket(bItems) != nil
		fillDocks := tx.Bucket(bCameras) == nil && tx.Bucket(bRecords) != nil
		if tx.Bucket(bOldCameras) != nil {
			if err := tx.DeleteBucket(bOldCameras); err != nil {
				return err
			}
		}
		for _, b := range append(slices.Clone(allBuckets), bAudited) {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if fillCameras {
			if err := indexCameras(tx); err != nil {
				return err
			}
		}
		if fillUnverified {
			if err := indexUnverified(tx); err != nil {
				return err
			}
		}
		if fillByObject {
			if err := indexByObject(tx); err != nil {
				return err
			}
		}
		if fillDocks {
			if err := indexDocks(tx); err != nil {
				return err
			}
		}
		// A host dropped from the configuration, or whose pinned key
		// changed, is read again from the start: what was indexed under
		// the old trust is not kept.
		hb := tx.Bucket(bHosts)
		var drop []string
		if err := hb.ForEach(func(k, v []byte) error {
			var hs HostState
			if err := json.Unmarshal(v, &hs); err != nil {
				drop = append(drop, string(k))
				return nil
			}
			t, ok := c.trustedHost(string(k))
			if !ok || !pinnedMatches(hs, t) {
				drop = append(drop, string(k))
			}
			return nil
		}); err != nil {
			return err
		}
		if len(drop) == 0 {
			return nil
		}
		// What other hosts' records say (a camera's last dock) may have
		// been overtaken by the dropped host's: start every host again,
		// as a deleted index would.
		c.log.Info("catalog: the trusted hosts or their keys changed; rebuilding the index from the store", "hosts", drop)
		for _, b := range append(slices.Clone(allBuckets), bAudited) {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	return c, nil
}

// pinnedMatches: the index was built under this pinned key. The HOST_KEY
// record is checked against the pin, so an index that followed a host past
// its HOST_KEY carries a key reached from the pin; a new pin starts again.
func pinnedMatches(hs HostState, t Trusted) bool {
	return hs.Tail.Size == 0 || hs.Pinned == signing.KeyID(t.Key)
}

// Close closes the index.
func (c *Catalog) Close() error { return c.db.Close() }

func (c *Catalog) trustedHost(id string) (Trusted, bool) {
	for _, t := range c.trusted {
		if t.ID == id {
			return t, true
		}
	}
	return Trusted{}, false
}

func hostPrefix(host string) []byte { return append([]byte(host), 0) }

func recordKey(host string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(hostPrefix(host), seq)
}

func itemKey(host, id string) []byte { return append(hostPrefix(host), id...) }

func byItemKey(id, host string, seq uint64) []byte {
	k := append(append([]byte(id), 0), host...)
	return binary.BigEndian.AppendUint64(append(k, 0), seq)
}

func splitByItem(k []byte) (id, host string, seq uint64, ok bool) {
	i := bytes.IndexByte(k, 0)
	if i < 0 || len(k) < i+1+9 {
		return "", "", 0, false
	}
	rest := k[i+1:]
	j := len(rest) - 9
	if rest[j] != 0 {
		return "", "", 0, false
	}
	return string(k[:i]), string(rest[:j]), binary.BigEndian.Uint64(rest[j+1:]), true
}

// Break is a host whose anchored history stopped checking out after
// checkpoint After, and why.
type Break struct {
	Host     string
	After    uint64
	Problems []anchor.Problem
	// ByAudit: found by Audit (the host is withheld whole), not by
	// following it.
	ByAudit bool
}

// Progress is what one Sync did.
type Progress struct {
	// New is how many records each host added to the index.
	New map[string]uint64
	// Broken names the trusted hosts whose history is broken.
	Broken []string
	// NewlyBroken are the hosts found broken by this Sync (not broken, or
	// broken otherwise, before): each is worth an alert once.
	NewlyBroken []Break
	// Untrusted are hosts anchoring in the store that are not listed.
	Untrusted []string
	// Took is how long the pass took (reading, checking and indexing).
	Took time.Duration
	// Uploads is how many UPLOADED records this Sync indexed: objects in
	// the store known from now on. The console's facts step reads which
	// ones from the catalog's records after its position (Changed); a
	// list of their ids here grew with the fleet in a rebuild (~50 MiB of
	// heap per million items) and was read by nothing.
	Uploads int
}

// Sync reads, for every trusted host, every anchor after the last one
// indexed, checks it and indexes it; then notes the hosts anchoring in the
// store that are not listed. An error is operational (the store could not
// be read); a broken history is not an error but a flag on the host.
func (c *Catalog) Sync(ctx context.Context) (Progress, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	start := time.Now()
	p := Progress{New: map[string]uint64{}}
	// Hosts are followed in parallel, one per core: reading and checking a
	// host's anchors (decoding, hashing, verifying) is independent of the
	// others; only the index's write transactions take turns.
	type result struct {
		n      uint64
		broken bool
		err    error
		p      Progress
	}
	results := make([]result, len(c.trusted))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	for i, t := range c.trusted {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r := &results[i]
			r.n, r.broken, r.err = c.syncHost(ctx, t, &r.p)
		}()
	}
	wg.Wait()
	var errs []error
	for i, t := range c.trusted { // configuration order, whatever finished first
		r := results[i]
		if r.n > 0 {
			p.New[t.ID] = r.n
		}
		if r.broken {
			p.Broken = append(p.Broken, t.ID)
		}
		if r.err != nil {
			errs = append(errs, r.err)
		}
		p.NewlyBroken = append(p.NewlyBroken, r.p.NewlyBroken...)
		p.Uploads += r.p.Uploads
	}
	hosts, err := anchor.Hosts(ctx, c.store)
	if err != nil {
		errs = append(errs, err)
	} else {
		for _, h := range hosts {
			if _, ok := c.trustedHost(h); !ok && h != c.self {
				p.Untrusted = append(p.Untrusted, h)
			}
		}
		sort.Strings(p.Untrusted)
		if err := c.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bUntrusted)
			for _, h := range p.Untrusted {
				if err := b.Put([]byte(h), nil); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			errs = append(errs, fmt.Errorf("catalog: record untrusted hosts: %w", err))
		}
	}
	p.Took = time.Since(start)
	return p, errors.Join(errs...)
}

// syncHost follows one host until nothing new is anchored or its history
// breaks. Batches are indexed in groups of up to maxGroup records per
// transaction: one commit (one fsync) per group, not per anchor, which is
// what a rebuild of years of dock sessions needs.
func (c *Catalog) syncHost(ctx context.Context, t Trusted, p *Progress) (uint64, bool, error) {
	hs, err := c.hostState(t.ID)
	if err != nil {
		return 0, false, err
	}
	if hs.Withheld {
		return 0, true, nil
	}
	var added uint64
	var group []followed
	var inGroup int
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		hs.Pinned = signing.KeyID(t.Key)
		if err := c.index(&hs, group); err != nil {
			return fmt.Errorf("catalog %s: index records %d..%d: %w", t.ID, group[0].b.From, group[len(group)-1].b.To, err)
		}
		for _, g := range group {
			added += g.b.To - g.b.From + 1
			for _, r := range g.b.Records {
				if r.Event.Type == custody.Uploaded && r.Event.Item != "" {
					p.Uploads++
				}
			}
		}
		group, inGroup = nil, 0
		return nil
	}
	tail := hs.Tail
	for {
		if err := ctx.Err(); err != nil {
			return added, false, errors.Join(err, flush())
		}
		b, next, ok, err := anchor.Follow(ctx, c.store, t.ID, t.Key, tail, anchor.FollowOptions{AllSignatures: c.allSigs})
		var be *anchor.BrokenError
		if errors.As(err, &be) {
			if err := flush(); err != nil {
				return added, true, err
			}
			if !slices.Equal(hs.Broken, be.Problems) {
				c.log.Error("a dock host's anchored history is broken; nothing after it is served", "host", t.ID,
					"after_checkpoint", hs.Tail.Size, "problem", be.Problems[0].String())
				hs.Broken = be.Problems
				if err := c.putHost(hs); err != nil {
					return added, true, err
				}
				p.NewlyBroken = append(p.NewlyBroken, Break{Host: t.ID, After: hs.Tail.Size, Problems: be.Problems})
			}
			return added, true, nil
		}
		if err != nil {
			return added, len(hs.Broken) > 0, errors.Join(fmt.Errorf("catalog %s: %w", t.ID, err), flush())
		}
		if !ok {
			if err := flush(); err != nil {
				return added, false, err
			}
			// A break whose objects are no longer there to read (cannot
			// happen under COMPLIANCE; a store without it) keeps its flag
			// until a custodian clears the index.
			return added, len(hs.Broken) > 0, nil
		}
		group, tail = append(group, followed{b: b, next: next}), next
		if inGroup += len(b.Records); inGroup >= maxGroup {
			if err := flush(); err != nil {
				return added, false, err
			}
		}
	}
}

// maxGroup bounds the records indexed in one transaction (memory held by
// the group, and the work a crash loses). At 8,192 a rebuild's heap stays
// under ~100 MiB with two hosts followed at once; more records per commit
// saved no CPU measurably (docs/BENCHMARKS.md, "Fleet console").
const maxGroup = 8192

// followed is one checked anchor and the tail after it.
type followed struct {
	b    anchor.Batch
	next anchor.Tail
}

func (c *Catalog) hostState(id string) (HostState, error) {
	hs := HostState{ID: id}
	err := c.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bHosts).Get([]byte(id))
		if v == nil {
			return nil
		}
		return json.Unmarshal(v, &hs)
	})
	if err != nil {
		return hs, fmt.Errorf("catalog: read host %s: %w", id, err)
	}
	return hs, nil
}

func (c *Catalog) putHost(hs HostState) error {
	return c.db.Update(func(tx *bolt.Tx) error { return putHost(tx, hs) })
}

func putHost(tx *bolt.Tx, hs HostState) error {
	v, err := json.Marshal(hs)
	if err != nil {
		return err
	}
	return tx.Bucket(bHosts).Put([]byte(hs.ID), v)
}

// docked records a camera's dock at host, unless a later one at that host
// is already recorded. Each host keeps its own, not only the camera's last
// dock anywhere: a camera whose last dock is at a host the audit withholds
// is still shown docked there (flagged), with its last dock at a served
// host beside it, and which host that is depends on the flags when Fleet
// asks.
func docked(b *bolt.Bucket, host string, ev custody.Event) error {
	if ev.Camera == "" {
		return nil
	}
	k := dockKey(ev.Camera, host)
	if v := b.Get(k); v != nil {
		var old CameraHealth
		if err := json.Unmarshal(v, &old); err == nil && old.LastDockedAt.After(ev.At) {
			return nil
		}
	}
	v, err := json.Marshal(CameraHealth{Serial: ev.Camera, Host: host, Kind: ev.Details["kind"],
		AssignedTo: ev.Details["assigned_to"], LastDockedAt: ev.At})
	if err != nil {
		return err
	}
	return b.Put(k, v)
}

// indexDocks writes camera_docks from the indexed DOCKED records (an
// index from before it kept only each camera's last dock anywhere).
func indexDocks(tx *bolt.Tx) error {
	b := tx.Bucket(bCameras)
	return tx.Bucket(bRecords).ForEach(func(k, v []byte) error {
		_, rec, _ := bytes.Cut(v, []byte("\n"))
		if !bytes.Contains(rec, []byte(custody.Docked)) {
			return nil
		}
		ev, err := custody.DecodeRecord(rec)
		if err != nil {
			return fmt.Errorf("index camera docks: record %q: %w", k, err)
		}
		if ev.Type != custody.Docked {
			return nil
		}
		host, _, _ := bytes.Cut(k, []byte{0})
		return docked(b, string(host), ev)
	})
}

// dockKey is a camera's key in camera_docks: serial 0 host.
func dockKey(serial, host string) []byte {
	return append(append([]byte(serial), 0), host...)
}

// fillFromItems puts into bucket the key each indexed item gives (none
// when key returns nil): an index from before that bucket gets it from its
// items rather than a rebuild from the store.
func fillFromItems(tx *bolt.Tx, bucket []byte, key func(host string, it custody.Item) []byte) error {
	b := tx.Bucket(bucket)
	return tx.Bucket(bItems).ForEach(func(k, v []byte) error {
		var it custody.Item
		if err := decodeItem(v, &it); err != nil {
			return fmt.Errorf("index %s: item %q: %w", bucket, k, err)
		}
		host, _, _ := bytes.Cut(k, []byte{0})
		if k := key(string(host), it); k != nil {
			return b.Put(k, nil)
		}
		return nil
	})
}

// indexCameras writes by_camera from the items (an index from before it).
func indexCameras(tx *bolt.Tx) error {
	return fillFromItems(tx, bByCamera, func(host string, it custody.Item) []byte {
		return assignKey(it.Camera, it.RecordedAt, host, it.ID)
	})
}

// indexUnverified writes unverified from the items (an index from before
// it).
func indexUnverified(tx *bolt.Tx) error {
	return fillFromItems(tx, bUnverified, func(host string, it custody.Item) []byte {
		if it.State == custody.StateVerified {
			return nil
		}
		return unverifiedKey(host, it.IngestedAt, it.ID)
	})
}

// indexByObject fills by_object from the items (an index written before
// it existed).
func indexByObject(tx *bolt.Tx) error {
	return fillFromItems(tx, bByObject, func(host string, it custody.Item) []byte {
		if it.ObjectKey == "" {
			return nil
		}
		return byObjectKey(it.ObjectKey, it.VersionID, host, it.ID)
	})
}

// byObjectKey is an item's key in by_object. Object keys and version ids
// hold no 0 byte, so the keys sort as the store lists (key, version).
func byObjectKey(key, version, host, id string) []byte {
	k := make([]byte, 0, len(key)+len(version)+len(host)+len(id)+3)
	k = append(append(k, key...), 0)
	k = append(append(k, version...), 0)
	k = append(append(k, host...), 0)
	return append(k, id...)
}

// unverifiedKey orders a host's items not yet verified by when they were
// vaulted: the first is the oldest.
func unverifiedKey(host string, at time.Time, id string) []byte {
	k := binary.BigEndian.AppendUint64(hostPrefix(host), clampNanos(at))
	return append(append(k, 0), id...)
}

// withheld is the set of hosts the audit withholds (nothing served).
// Every search asks it: a host state without the "withheld" key (it is
// omitted when false) is not decoded, which was an eighth of a console's
// CPU under search load (docs/BENCHMARKS.md).
func withheld(tx *bolt.Tx) map[string]bool {
	out := map[string]bool{}
	_ = tx.Bucket(bHosts).ForEach(func(k, v []byte) error {
		if !bytes.Contains(v, []byte(`"withheld"`)) {
			return nil
		}
		var hs HostState
		if json.Unmarshal(v, &hs) == nil && hs.Withheld {
			out[string(k)] = true
		}
		return nil
	})
	return out
}

// assignKey orders an officer's (or vehicle's), or a camera's, recordings
// by time: find --assigned-to X (--camera X) --since A --until B is one
// range of by_assigned_to (by_camera).
func assignKey(who string, at time.Time, host, id string) []byte {
	k := append([]byte(who), 0)
	k = binary.BigEndian.AppendUint64(k, clampNanos(at))
	k = append(append(append(k, 0), host...), 0)
	return append(k, id...)
}

// clampNanos is t as Unix nanoseconds, 0 before 1970.
func clampNanos(t time.Time) uint64 {
	if t.Before(time.Unix(0, 0)) {
		return 0
	}
	return uint64(t.UnixNano())
}

// Filter selects items fleet-wide: the dock's filter and the host.
type Filter struct {
	custody.Filter
	// Host is "" for every trusted host.
	Host string
}

// Page bounds what FindPage returns: the first Offset matches are skipped
// and at most Limit are returned (0: all the rest).
type Page struct {
	Offset, Limit int
	// After, when set, starts the page just after this position (the
	// Found.Next of the page before it) instead of at Offset, and ends the
	// search at the page's end: Total then counts only the matches seen
	// from After on (the page, and one more when another follows). Page N
	// then costs one page, not the N-1 before it.
	After []byte
	// MaxScan, when more than 0, bounds the items a search without an
	// officer or camera may read to answer (ErrTooBroad beyond it): a
	// search by state or time alone otherwise reads every item in its
	// range, which at a million items is seconds of CPU per search.
	MaxScan int
}

// ErrTooBroad is a search that would read more than Page.MaxScan items.
var ErrTooBroad = errors.New("the search is too broad")

// Found is one page of a search and how many items the filter selects in
// all (Total), so that a screen can say "51–100 of 2,500".
type Found struct {
	Items []custody.Item
	Total int
	// Next is the position of the page's last item when further matches
	// follow it (Page.After asks for them); nil on the last page.
	Next []byte
}

// Find lists every indexed item the filter selects, in FindPage's order.
func (c *Catalog) Find(ctx context.Context, f Filter) ([]custody.Item, error) {
	r, err := c.FindPage(ctx, f, Page{})
	return r.Items, err
}

// FindPage lists one page of the indexed items the filter selects, and
// counts them all. The filter is applied before the page is cut.
//
// Order: by assigned_to (with AssignedTo), else by camera (with Camera),
// the matches are in (recording time, host, id) order, one range of that
// index; otherwise by host then id. The order is the index's key order, so
// a page asked for twice (nothing indexed between) is the same page.
//
// Why paging is done here and not by the caller: a search through an
// index whose filter is the indexed field, the host and a time range (the
// usual search) is answered from the index keys alone; only the items on
// the page are read and decoded. Decoding every match to show 50 of them
// was 84 % of a console's CPU at a million items (docs/BENCHMARKS.md).
//
// Without an officer or camera (findUnindexed), a search by states that
// leave out verified reads only the items not yet verified (the
// unverified index), and one bounded in time only the items recorded
// then (the camera index's ranges); only a search by state that includes
// verified and no time reads every item, which Page.MaxScan bounds.
func (c *Catalog) FindPage(ctx context.Context, f Filter, p Page) (Found, error) {
	if p.Offset < 0 || p.Limit < 0 || p.MaxScan < 0 {
		return Found{}, fmt.Errorf("catalog find: page offset %d, limit %d, scan bound %d: want 0 or more", p.Offset, p.Limit, p.MaxScan)
	}
	if p.After != nil {
		p.Offset = 0
	}
	pg := pager{Page: p, items: []custody.Item{}}
	err := c.db.View(func(tx *bolt.Tx) error {
		held := withheld(tx)
		switch {
		case f.AssignedTo != "":
			return findIndexed(ctx, tx, bByAssign, f.AssignedTo, f, held, &pg)
		case f.Camera != "":
			return findIndexed(ctx, tx, bByCamera, f.Camera, f, held, &pg)
		}
		return findUnindexed(ctx, tx, f, held, &pg)
	})
	if err != nil {
		return Found{}, fmt.Errorf("catalog find: %w", err)
	}
	out := Found{Items: pg.items, Total: pg.total}
	if pg.total > pg.Offset+len(pg.items) && len(pg.items) > 0 {
		out.Next = pg.last
	}
	return out, nil
}

// pager keeps the page's matches, in the order it is given them, and
// counts them all.
type pager struct {
	Page
	total int
	items []custody.Item
	// last is the position of the page's last item.
	last []byte
	// scanned counts the items read against MaxScan.
	scanned int
}

// onPage: the next match is on the page.
func (pg *pager) onPage() bool {
	return pg.total >= pg.Offset && (pg.Limit == 0 || pg.total < pg.Offset+pg.Limit)
}

// done: nothing more need be looked at (after a page asked for by
// position, once one more match than the page is known).
func (pg *pager) done() bool {
	return pg.After != nil && pg.Limit > 0 && pg.total > pg.Limit
}

// skip counts the next match without reading it when it is off the page
// (the caller knows from the key alone that it matches).
func (pg *pager) skip() bool {
	if pg.onPage() {
		return false
	}
	pg.total++
	return true
}

// add counts a match at position pos, keeping it when it is on the page.
func (pg *pager) add(it custody.Item, pos []byte) {
	if pg.onPage() {
		pg.items = append(pg.items, it)
		pg.last = bytes.Clone(pos)
	}
	pg.total++
}

// read counts one item read against MaxScan.
func (pg *pager) read(what string) error {
	pg.scanned++
	if pg.MaxScan > 0 && pg.scanned > pg.MaxScan {
		return fmt.Errorf("%w: it would read more than %d recordings (%s); narrow it by officer, camera or a shorter time range", ErrTooBroad, pg.MaxScan, what)
	}
	return nil
}

// seekAfter positions cur at start, or just after the page's position
// when one was asked for and it comes later.
func (pg *pager) seekAfter(cur *bolt.Cursor, start []byte) (k, v []byte) {
	if pg.After == nil || bytes.Compare(pg.After, start) < 0 {
		return cur.Seek(start)
	}
	k, v = cur.Seek(pg.After)
	if bytes.Equal(k, pg.After) {
		k, v = cur.Next()
	}
	return k, v
}

// findIndexed is FindPage through the index by assigned_to or camera
// (index, holding value): one range from Since to Until, whatever the size
// of the fleet. Without them a search by camera read and decoded every
// item of the fleet (seconds at a million items).
//
// When the key says everything the filter asks (the indexed field, the
// time range, the host; no states, not both camera and assigned_to), a
// match off the page is counted from its key and never read.
func findIndexed(ctx context.Context, tx *bolt.Tx, index []byte, value string, f Filter, held map[string]bool, pg *pager) error {
	items := tx.Bucket(bItems)
	other := f.Camera // the field the index does not key
	if bytes.Equal(index, bByCamera) {
		other = f.AssignedTo
	}
	// A key's time is clamped at 1970 (clampNanos): every recording a
	// camera clock dates at or before it (a flat RTC battery: 1970, or the
	// zero time) has key time 0, so a Since or Until at or before 1970 is
	// checked on the item, and the walk never stops at a key of time 0.
	epoch := time.Unix(0, 0)
	keyOnly := len(f.States) == 0 && other == "" && (f.Since.IsZero() || f.Since.After(epoch)) && (f.Until.IsZero() || f.Until.After(epoch))
	p := append([]byte(value), 0)
	cur := tx.Bucket(index).Cursor()
	start := binary.BigEndian.AppendUint64(bytes.Clone(p), clampNanos(f.Since))
	first, _ := pg.seekAfter(cur, start)
	for rk := range inRange(cur, first, p, f, held) {
		if pg.done() {
			break
		}
		k, host, id := rk.key, rk.host, rk.id
		if keyOnly && pg.skip() {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		v := items.Get(itemKey(string(host), string(id)))
		if v == nil {
			return fmt.Errorf("item %s of %s is in the %s index but not indexed", id, host, index)
		}
		var it custody.Item
		if err := decodeItem(v, &it); err != nil {
			return fmt.Errorf("item %s of %s: %w", id, host, err)
		}
		if f.Filter.Matches(it) {
			pg.add(it, k)
		}
	}
	return ctx.Err()
}

// rangeKey is one key of an index by officer or camera, and the host and
// item id it names.
type rangeKey struct{ key, host, id []byte }

// inRange yields the keys of one officer's or camera's range of its index
// (prefix p), from the cursor's key k on, until f.Until; not those of
// withheld hosts nor, with f.Host, of other hosts. The cursor is left
// where the range ends.
func inRange(cur *bolt.Cursor, k, p []byte, f Filter, held map[string]bool) iter.Seq[rangeKey] {
	until := uint64(math.MaxUint64)
	if !f.Until.IsZero() {
		until = clampNanos(f.Until)
	}
	return func(yield func(rangeKey) bool) {
		for ; k != nil && bytes.HasPrefix(k, p); k, _ = cur.Next() {
			rest := k[len(p):]
			if len(rest) < 9 {
				continue
			}
			// The walk never stops at a key of time 0 (a recording dated
			// at or before 1970): an Until at or before 1970 is checked on
			// the item.
			if at := binary.BigEndian.Uint64(rest[:8]); at >= until && at > 0 {
				return
			}
			host, id, ok := bytes.Cut(rest[9:], []byte{0})
			if !ok || (len(held) > 0 && held[string(host)]) || (f.Host != "" && string(host) != f.Host) {
				continue
			}
			if !yield(rangeKey{k, host, id}) {
				return
			}
		}
	}
}

// findUnindexed is FindPage without an officer or camera, in item key
// (host, id) order; the position of an item is its item key.
//
//   - States that leave out verified: the candidates are the unverified
//     index's (the items not yet verified: a backlog, not the fleet).
//   - A time range, after 1970: the candidates are the camera index's
//     keys in that range, one range per camera.
//   - Otherwise every item (of the host, with Host), each read for a state
//     or a time before 1970; nothing but the host is read from the keys.
//
// Candidates from an index are put in item key order before the page is
// cut, so every way gives the same pages as reading every item did.
func findUnindexed(ctx context.Context, tx *bolt.Tx, f Filter, held map[string]bool, pg *pager) error {
	items := tx.Bucket(bItems)
	epoch := time.Unix(0, 0)
	inTime := (!f.Since.IsZero() || !f.Until.IsZero()) && (f.Since.IsZero() || f.Since.After(epoch)) && (f.Until.IsZero() || f.Until.After(epoch))
	switch {
	case len(f.States) > 0 && !slices.Contains(f.States, custody.StateVerified):
		return pageKeys(ctx, items, unverifiedKeys(tx, f.Host, held), f, pg, false, true)
	case inTime:
		keys, err := recordedKeys(ctx, tx, f, held, pg)
		if err != nil {
			return err
		}
		// The camera index's keys say the time and the host: with no
		// states, a candidate is a match.
		return pageKeys(ctx, items, keys, f, pg, len(f.States) == 0, false)
	default:
		return scanItems(ctx, items, f, held, pg)
	}
}

// pageKeys pages the candidates keys (item keys, sorted in place): each
// read and matched, or, when known to match (match), counted from its key
// and read only when on the page. bounded: each item read counts against
// MaxScan (the candidates were not counted as they were found).
func pageKeys(ctx context.Context, items *bolt.Bucket, keys [][]byte, f Filter, pg *pager, match, bounded bool) error {
	slices.SortFunc(keys, bytes.Compare)
	i := 0
	if pg.After != nil {
		i, _ = slices.BinarySearchFunc(keys, pg.After, bytes.Compare)
		if i < len(keys) && bytes.Equal(keys[i], pg.After) {
			i++
		}
	}
	for ; i < len(keys) && !pg.done(); i++ {
		k := keys[i]
		if match && pg.skip() {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if bounded {
			if err := pg.read("each one's state"); err != nil {
				return err
			}
		}
		v := items.Get(k)
		if v == nil {
			return fmt.Errorf("item %q is in an index but not indexed", k)
		}
		var it custody.Item
		if err := decodeItem(v, &it); err != nil {
			return fmt.Errorf("item %q: %w", k, err)
		}
		if match || f.Filter.Matches(it) {
			pg.add(it, k)
		}
	}
	return nil
}

// unverifiedKeys are the item keys of the items not yet verified, of host
// (every host when ""), but those of withheld hosts.
func unverifiedKeys(tx *bolt.Tx, host string, held map[string]bool) [][]byte {
	var keys [][]byte
	cur := tx.Bucket(bUnverified).Cursor()
	var k []byte
	if host != "" {
		k, _ = cur.Seek(hostPrefix(host))
	} else {
		k, _ = cur.First()
	}
	for ; k != nil; k, _ = cur.Next() {
		h, rest, ok := bytes.Cut(k, []byte{0})
		if host != "" && string(h) != host {
			break
		}
		if !ok || len(rest) < 9 || held[string(h)] {
			continue
		}
		keys = append(keys, itemKey(string(h), string(rest[9:])))
	}
	return keys
}

// recordedKeys are the item keys of the items recorded from f.Since to
// f.Until (after 1970), of f.Host (every host when ""), but those of
// withheld hosts: from the camera index, which holds every item once,
// one range per camera (a seek to each camera's next). Each key counts
// against MaxScan.
func recordedKeys(ctx context.Context, tx *bolt.Tx, f Filter, held map[string]bool, pg *pager) ([][]byte, error) {
	var keys [][]byte
	since := clampNanos(f.Since)
	cur := tx.Bucket(bByCamera).Cursor()
	for k, _ := cur.First(); k != nil; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		cam, _, ok := bytes.Cut(k, []byte{0})
		if !ok {
			return nil, fmt.Errorf("camera index key %q: no camera", k)
		}
		p := append(bytes.Clone(cam), 0)
		first, _ := cur.Seek(binary.BigEndian.AppendUint64(bytes.Clone(p), since))
		for rk := range inRange(cur, first, p, f, held) {
			if err := pg.read("every recording in the time range"); err != nil {
				return nil, err
			}
			keys = append(keys, itemKey(string(rk.host), string(rk.id)))
		}
		// The next camera: the first key past every key of this one.
		k, _ = cur.Seek(append(bytes.Clone(cam), 1))
	}
	return keys, nil
}

// scanItems is FindPage over every item (of f.Host): nothing but the host
// to select by is answered from the keys; anything else reads each item,
// counted against MaxScan.
func scanItems(ctx context.Context, items *bolt.Bucket, f Filter, held map[string]bool, pg *pager) error {
	keyOnly := len(f.States) == 0 && f.Since.IsZero() && f.Until.IsZero()
	cur := items.Cursor()
	start := []byte{}
	if f.Host != "" {
		start = hostPrefix(f.Host)
	}
	for k, v := pg.seekAfter(cur, start); k != nil && !pg.done(); k, v = cur.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if f.Host != "" && !bytes.HasPrefix(k, hostPrefix(f.Host)) {
			break
		}
		host, _, _ := bytes.Cut(k, []byte{0})
		if held[string(host)] {
			continue
		}
		if keyOnly && pg.skip() {
			continue
		}
		if !keyOnly {
			if err := pg.read("every item, for its state"); err != nil {
				return err
			}
		}
		var it custody.Item
		if err := decodeItem(v, &it); err != nil {
			return fmt.Errorf("item %q: %w", k, err)
		}
		if f.Filter.Matches(it) {
			pg.add(it, k)
		}
	}
	return nil
}

// Event is one dock host's record as served: Host is the host whose
// anchored, signed history it came from; KeyID the key that signed it.
type Event struct {
	custody.Event
	KeyID string `json:"key_id,omitempty"`
}

// Custody returns every indexed record naming item id, from every trusted
// host (a recording docked at two hosts has records at both), each with
// the host that signed it, in (time, host, seq) order. ok is false when no
// host has the item.
func (c *Catalog) Custody(ctx context.Context, id string) ([]Event, bool, error) {
	var out []Event
	items := 0
	err := c.db.View(func(tx *bolt.Tx) error {
		held := withheld(tx)
		recs := tx.Bucket(bRecords)
		p := append([]byte(id), 0)
		cur := tx.Bucket(bByItem).Cursor()
		for k, _ := cur.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = cur.Next() {
			_, host, seq, ok := splitByItem(k)
			if !ok || held[host] {
				continue
			}
			v := recs.Get(recordKey(host, seq))
			if v == nil {
				return fmt.Errorf("record %d of %s is in the item index but not indexed", seq, host)
			}
			ev, err := served(host, v)
			if err != nil {
				return fmt.Errorf("record %d of %s: %w", seq, host, err)
			}
			out = append(out, ev)
		}
		// The dock session that vaulted the item is part of its custody,
		// as on the dock host (custody.Ledger.Custody).
		ib := tx.Bucket(bItems)
		for _, t := range c.trusted {
			v := ib.Get(itemKey(t.ID, id))
			if v == nil || held[t.ID] {
				continue
			}
			items++
			var it custody.Item
			if err := decodeItem(v, &it); err != nil {
				return fmt.Errorf("item %s of %s: %w", id, t.ID, err)
			}
			if r := recs.Get(recordKey(t.ID, it.DockSeq)); it.DockSeq != 0 && r != nil {
				ev, err := served(t.ID, r)
				if err != nil {
					return fmt.Errorf("record %d of %s: %w", it.DockSeq, t.ID, err)
				}
				out = append(out, ev)
			}
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, false, fmt.Errorf("catalog custody %s: %w", id, err)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.At.Equal(b.At) {
			return a.At.Before(b.At)
		}
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		return a.Seq < b.Seq
	})
	return out, items > 0, nil
}

// served decodes an indexed record value (key id \n record bytes) as it
// is served: Host is the host whose signed history it came from.
func served(host string, v []byte) (Event, error) {
	keyID, rec, _ := bytes.Cut(v, []byte("\n"))
	ev, err := custody.DecodeRecord(rec)
	if err != nil {
		return Event{}, err
	}
	ev.Hash = custody.RecordHash(rec)
	ev.Host = host
	return Event{Event: ev, KeyID: string(keyID)}, nil
}

// Item returns the item id as each trusted host that has it indexed it.
func (c *Catalog) Item(ctx context.Context, id string) ([]custody.Item, error) {
	var out []custody.Item
	err := c.db.View(func(tx *bolt.Tx) error {
		b, held := tx.Bucket(bItems), withheld(tx)
		for _, t := range c.trusted {
			if v := b.Get(itemKey(t.ID, id)); v != nil && !held[t.ID] {
				var it custody.Item
				if err := decodeItem(v, &it); err != nil {
					return err
				}
				out = append(out, it)
			}
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("catalog item %s: %w", id, err)
	}
	return out, nil
}

// HostHealth is one host as `evidenced fleet` shows it.
type HostHealth struct {
	ID string `json:"id"`
	// Trusted is false for a host anchoring in the store that the
	// configuration does not list: nothing of it is served.
	Trusted bool `json:"trusted"`
	// Checkpoint is the last checkpoint followed (tree size), 0 for none.
	Checkpoint uint64 `json:"checkpoint"`
	// LastRecordAt is the time of the last record that checkpoint covers;
	// Age is now minus that (JSON: whole seconds, age_seconds).
	LastRecordAt time.Time     `json:"last_record_at,omitzero"`
	Age          time.Duration `json:"-"`
	AgeSeconds   int64         `json:"age_seconds,omitempty"`
	Records      uint64        `json:"records"`
	Items        int           `json:"items"`
	// Unverified is how many items were vaulted longer ago than
	// FleetOptions.UnverifiedAfter and are not yet verified in the store
	// (as far as the host's anchored records say).
	Unverified int `json:"unverified"`
	// NotVerified is how many of its indexed items are not yet verified in
	// the store, whatever their age, and OldestNotVerifiedAt when the
	// oldest of them was vaulted (zero: none): the host's upload queue as
	// its anchored records show it at HQ.
	NotVerified         int       `json:"not_verified"`
	OldestNotVerifiedAt time.Time `json:"oldest_not_verified_at,omitzero"`
	// Flags say what is wrong ("broken: <object>: <what>"); empty when
	// nothing is.
	Flags []string `json:"flags"`
	// Broken: the host's anchored history broke (Flags says where);
	// nothing after the break is served. Withheld: the audit found the
	// break behind what was followed, so nothing of the host is served.
	Broken   bool `json:"broken,omitempty"`
	Withheld bool `json:"withheld,omitempty"`
}

// CameraHealth is one camera as its last anchored DOCKED record says, or,
// for a camera of the console's published inventory that no trusted host
// recorded docking, as the inventory lists it (State CameraNeverDocked,
// no Host, LastDockedAt or DaysSinceDock).
//
// The last dock is the last any trusted host's checked records name, a
// broken or withheld host's too: the camera did come back there, and
// calling it "never docked" (or not docked) would send someone after an
// officer who returned it. HostFlag then says why that host's records are
// not served, and LastServedDock where the camera last docked at a host
// whose records are.
type CameraHealth struct {
	Serial string `json:"serial"`
	Host   string `json:"host,omitempty"` // where it was last docked
	// HostFlag is Host's flag when Host is broken ("broken: …": nothing
	// after the break is served, so a later dock there is not known) or
	// withheld ("withheld (audit): …": none of its records, this dock's
	// included, is served).
	HostFlag string `json:"host_flag,omitempty"`
	// LastServedDock, when Host is withheld, is the camera's last dock at
	// a host whose records are served (absent when there is none).
	LastServedDock *Dock     `json:"last_served_dock,omitempty"`
	Kind           string    `json:"kind,omitempty"`
	AssignedTo     string    `json:"assigned_to,omitempty"`
	LastDockedAt   time.Time `json:"last_docked_at,omitzero"`
	// DaysSinceDock is whole days from LastDockedAt to now ("not docked
	// for N days"); not stored, computed by Fleet. Absent for a camera
	// that never docked: 0 would say it docked today.
	DaysSinceDock *int `json:"days_since_dock,omitempty"`
	// State is CameraDocked, CameraNotDocked or CameraNeverDocked.
	State string `json:"state"`
	// ListedSince, for a camera that never docked, is when the console's
	// published inventory began listing it without a break (the oldest
	// version of that run the store holds): how long it has been out.
	ListedSince time.Time `json:"listed_since,omitzero"`
}

// Dock is where and when a camera docked.
type Dock struct {
	Host string    `json:"host"`
	At   time.Time `json:"at"`
}

// Camera states in CameraHealth.State.
const (
	CameraDocked = "docked"
	// CameraNotDocked: docked, but not for NotDockedAfter or longer (a
	// dock at a broken or withheld host counts: CameraHealth).
	CameraNotDocked = "not docked"
	// CameraNeverDocked: listed in the console's published inventory and
	// docked at no trusted host (as far as the records checked say; a host
	// withheld after its records were checked still counts).
	CameraNeverDocked = "never docked"
)

// NotDockedAfter is when a camera counts as not docked: a week, the
// threshold of the alerting rules' EvidencedCameraNotDocked (dock host)
// and EvidencedFleetCameraNotDocked (console), so that fleet and the
// alerts name the same cameras.
const NotDockedAfter = 7 * 24 * time.Hour

// Fleet is the fleet's health.
type Fleet struct {
	// Hosts: every trusted host (in configuration order), then the
	// untrusted hosts seen in the store.
	Hosts []HostHealth `json:"hosts"`
	// Cameras: every camera a trusted host recorded docking and, at a
	// console that published an inventory, every camera of it that none
	// did (CameraNeverDocked), by serial.
	Cameras []CameraHealth `json:"cameras"`
	// InventoryVersion is the version of the console's published
	// inventory the cameras were read from (0: none published);
	// InventoryProblem why the document the store holds as the newest
	// was not taken (it does not open with the console's key, or it is
	// an older version put back): the cameras are then the highest
	// signed version's.
	InventoryVersion uint64 `json:"inventory_version,omitempty"`
	InventoryProblem string `json:"inventory_problem,omitempty"`
	// Orphans, when asked for (it lists the whole store), are the stored
	// versions no trusted host's records name.
	Orphans []Orphan `json:"orphans,omitempty"`
}

// FleetOptions tune Fleet.
type FleetOptions struct {
	// UnverifiedAfter is how long an item may stay vaulted but not
	// verified before it counts as Unverified; 0 counts none.
	UnverifiedAfter time.Duration
}

// Fleet reports the fleet's health at now.
func (c *Catalog) Fleet(ctx context.Context, now time.Time, o FleetOptions) (Fleet, error) {
	f := Fleet{Hosts: []HostHealth{}, Cameras: []CameraHealth{}}
	err := c.db.View(func(tx *bolt.Tx) error {
		flagOf := map[string]string{} // broken or withheld host → its first flag
		for _, t := range c.trusted {
			hs := HostState{ID: t.ID}
			if v := tx.Bucket(bHosts).Get([]byte(t.ID)); v != nil {
				if err := json.Unmarshal(v, &hs); err != nil {
					return fmt.Errorf("host %s: %w", t.ID, err)
				}
			}
			h := HostHealth{ID: t.ID, Trusted: true, Checkpoint: hs.Tail.Size, LastRecordAt: hs.LastRecordAt,
				Records: hs.Records, Items: hs.Items, Flags: []string{}, Broken: len(hs.Broken) > 0, Withheld: hs.Withheld}
			if !hs.LastRecordAt.IsZero() {
				h.Age = now.Sub(hs.LastRecordAt).Round(time.Second)
				h.AgeSeconds = int64(h.Age / time.Second)
			}
			if hs.Tail.Size == 0 && len(hs.Broken) == 0 {
				h.Flags = append(h.Flags, "nothing anchored yet")
			}
			for _, p := range hs.Broken {
				if hs.Withheld {
					h.Flags = append(h.Flags, "withheld (audit): "+p.String())
				} else {
					h.Flags = append(h.Flags, "broken: "+p.String())
				}
			}
			if len(hs.Broken) > 0 {
				flagOf[t.ID] = h.Flags[len(h.Flags)-len(hs.Broken)]
			}
			cur := tx.Bucket(bUnverified).Cursor()
			p := hostPrefix(t.ID)
			for k, _ := cur.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = cur.Next() {
				if len(k) < len(p)+8 {
					return fmt.Errorf("unverified key %q", k)
				}
				at := time.Unix(0, int64(binary.BigEndian.Uint64(k[len(p):]))).UTC()
				if h.NotVerified == 0 {
					h.OldestNotVerifiedAt = at
				}
				h.NotVerified++
				if o.UnverifiedAfter > 0 && now.Sub(at) > o.UnverifiedAfter {
					h.Unverified++
				}
			}
			if h.Unverified > 0 {
				h.Flags = append(h.Flags, fmt.Sprintf("%d item(s) vaulted more than %s ago and not verified in the store", h.Unverified, o.UnverifiedAfter))
			}
			f.Hosts = append(f.Hosts, h)
		}
		if err := tx.Bucket(bUntrusted).ForEach(func(k, _ []byte) error {
			if _, ok := c.trustedHost(string(k)); !ok {
				f.Hosts = append(f.Hosts, HostHealth{ID: string(k), Flags: []string{"untrusted: not listed in console.hosts; its records are not served"}})
			}
			return nil
		}); err != nil {
			return err
		}
		held := withheld(tx)
		// camera_docks holds a camera's docks host by host, in key order
		// (serial, host); the last dock is the latest, at the same instant
		// the larger host id, so the answer does not depend on the order
		// the hosts were indexed in.
		var last, served *CameraHealth
		flush := func() {
			if last == nil {
				return
			}
			cam := *last
			cam.HostFlag = flagOf[cam.Host]
			if held[cam.Host] && served != nil {
				cam.LastServedDock = &Dock{Host: served.Host, At: served.LastDockedAt}
			}
			days := int(now.Sub(cam.LastDockedAt) / (24 * time.Hour))
			cam.DaysSinceDock, cam.State = &days, CameraDocked
			if now.Sub(cam.LastDockedAt) >= NotDockedAfter {
				cam.State = CameraNotDocked
			}
			f.Cameras = append(f.Cameras, cam)
			last, served = nil, nil
		}
		if err := tx.Bucket(bCameras).ForEach(func(_, v []byte) error {
			var cam CameraHealth
			if err := json.Unmarshal(v, &cam); err != nil {
				return err
			}
			if _, ok := c.trustedHost(cam.Host); !ok {
				return nil
			}
			if last != nil && last.Serial != cam.Serial {
				flush()
			}
			if last == nil || !cam.LastDockedAt.Before(last.LastDockedAt) {
				last = &cam
			}
			if !held[cam.Host] && (served == nil || !cam.LastDockedAt.Before(served.LastDockedAt)) {
				served = &cam
			}
			return nil
		}); err != nil {
			return err
		}
		flush()
		return nil
	})
	if err != nil {
		return Fleet{}, fmt.Errorf("catalog fleet: %w", err)
	}
	return f, ctx.Err()
}

// Run syncs every poll until ctx is done; each pass is reported to
// onSync (when set). A failed pass is logged and retried at the next.
func (c *Catalog) Run(ctx context.Context, poll time.Duration, onSync func(Progress, error)) error {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		p, err := c.Sync(ctx)
		if err != nil && ctx.Err() == nil {
			c.log.Warn("catalog sync failed; retrying at the next poll", "err", err)
		}
		for h, n := range p.New {
			c.log.Info("catalog indexed", "host", h, "records", n)
		}
		if onSync != nil {
			onSync(p, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Dump writes every bucket's keys and values in key order: two indexes
// built from the same store dump the same bytes.
func (c *Catalog) Dump(w io.Writer) error {
	return c.db.View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			fmt.Fprintf(w, "[%s]\n", name)
			if err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				_, err := fmt.Fprintf(w, "%q=%q\n", k, v)
				return err
			}); err != nil {
				return err
			}
		}
		return nil
	})
}

// Position is how far a reader of the catalog's records has got: per
// trusted host, the pinned key its history was followed from and the
// sequence number after the last record read. A position taken under
// another pin is no position at all (the host's history is read again
// from its start).
type Position map[string]Mark

// Mark is one host's part of a Position.
type Mark struct {
	Pinned string `json:"pinned_key_id"`
	Next   uint64 `json:"next"`
}

// Changed lists the items that records indexed after from name (each id
// once; as Item serves them, so an id no served host has is left for the
// caller to skip) and the position after them. A withheld host is passed
// over with its mark kept, so that what it indexed is read once it is
// cleared.
//
// Why: the console's facts step asks at every start which sidecars it has
// not parsed yet; listing every item (a JSON decode each) to learn that
// was ~52 s of CPU at a million items (docs/BENCHMARKS.md). This reads
// only the records after the position: nothing, when nothing is new.
func (c *Catalog) Changed(ctx context.Context, from Position) ([]string, Position, error) {
	next := Position{}
	var ids []string
	seen := map[string]bool{}
	err := c.db.View(func(tx *bolt.Tx) error {
		held := withheld(tx)
		recs := tx.Bucket(bRecords)
		for _, t := range c.trusted {
			m := from[t.ID]
			pinned := signing.KeyID(t.Key)
			if held[t.ID] { // its mark kept, its records not read
				if _, ok := from[t.ID]; ok {
					next[t.ID] = m
				}
				continue
			}
			if m.Pinned != pinned {
				m = Mark{Pinned: pinned}
			}
			prefix := hostPrefix(t.ID)
			cur := recs.Cursor()
			n := 0
			for k, v := cur.Seek(recordKey(t.ID, m.Next)); k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, v = cur.Next() {
				n++
				if n%4096 == 0 && ctx.Err() != nil {
					return ctx.Err()
				}
				m.Next = binary.BigEndian.Uint64(k[len(prefix):]) + 1
				_, rec, _ := bytes.Cut(v, []byte("\n"))
				ev, err := custody.DecodeRecord(rec)
				if err != nil {
					return fmt.Errorf("record %d of %s: %w", m.Next-1, t.ID, err)
				}
				if ev.Item != "" && !seen[ev.Item] {
					seen[ev.Item] = true
					ids = append(ids, ev.Item)
				}
			}
			next[t.ID] = m
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, nil, fmt.Errorf("catalog changes: %w", err)
	}
	return ids, next, nil
}

// End is the position after every record indexed now (withheld hosts
// left out: read from their start once cleared).
func (c *Catalog) End(ctx context.Context) (Position, error) {
	end := Position{}
	err := c.db.View(func(tx *bolt.Tx) error {
		held := withheld(tx)
		cur := tx.Bucket(bRecords).Cursor()
		for _, t := range c.trusted {
			if held[t.ID] {
				continue
			}
			m := Mark{Pinned: signing.KeyID(t.Key)}
			prefix := hostPrefix(t.ID)
			cur.Seek(recordKey(t.ID, math.MaxUint64))
			for k, _ := cur.Prev(); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Prev() {
				if len(k) == len(prefix)+8 {
					m.Next = binary.BigEndian.Uint64(k[len(prefix):]) + 1
					break
				}
			}
			end[t.ID] = m
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("catalog end: %w", err)
	}
	return end, nil
}
