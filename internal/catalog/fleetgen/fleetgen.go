// Package fleetgen writes synthetic anchored custody of many dock hosts to
// a store, in exactly the layout package anchor writes (records, signature
// files, consistency proofs, signed checkpoints under _custody/<host>/), so
// that the console's indexing can be measured at fleet scale without
// running a fleet. Every record is signed and every checkpoint verifies:
// the console checks generated histories as it checks real ones.
package fleetgen

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tlog"
)

// Options size a generated fleet.
type Options struct {
	// Hosts are named dock-01, dock-02, …; each ingests ItemsPerHost
	// recordings (five records each: DOCKED, COPIED, VAULTED, UPLOADED,
	// VERIFIED), anchored every ItemsPerAnchor recordings.
	Hosts, ItemsPerHost, ItemsPerAnchor int
	// CamerasPerHost cameras, each issued to its own officer, take turns.
	CamerasPerHost int
	// Start is the time of the first recording; one a minute follows.
	Start time.Time
}

// Generate writes the fleet and returns its hosts with their keys, as a
// console's configuration would list them. Hosts are generated in
// parallel, one per core: each is its own ledger (signing every record is
// most of the work).
func Generate(ctx context.Context, s anchor.Store, o Options) ([]catalog.Trusted, error) {
	if o.CamerasPerHost < 1 {
		o.CamerasPerHost = 1
	}
	if o.ItemsPerAnchor < 1 {
		o.ItemsPerAnchor = o.ItemsPerHost
	}
	out := make([]catalog.Trusted, o.Hosts)
	errs := make([]error, o.Hosts)
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	for h := 1; h <= o.Hosts; h++ {
		id := fmt.Sprintf("dock-%02d", h)
		key, err := signing.Generate(id)
		if err != nil {
			return nil, err
		}
		out[h-1] = catalog.Trusted{ID: id, Key: key.Public()}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			g := &host{id: id, key: key, s: s, prev: custody.GenesisHash}
			if err := g.run(ctx, o, h); err != nil {
				errs[h-1] = fmt.Errorf("fleetgen %s: %w", id, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// host is one generated host's ledger, kept in memory.
type host struct {
	id   string
	key  *signing.Key
	s    anchor.Store
	tree tree
	prev string
	// pending: the records not yet anchored, and their signatures.
	recs, sigs bytes.Buffer
	from       uint64
	anchored   uint64
}

func (g *host) run(ctx context.Context, o Options, h int) error {
	pub := g.key.Public()
	der, err := signing.PublicDER(pub)
	if err != nil {
		return err
	}
	at := o.Start
	if err := g.add(custody.Event{Type: custody.HostKey, Actor: "evidenced", At: at, Details: map[string]string{
		"algorithm": "ed25519", "key_id": g.key.KeyID(), "public_key": base64.StdEncoding.EncodeToString(der),
	}}); err != nil {
		return err
	}
	for i := range o.ItemsPerHost {
		at = o.Start.Add(time.Duration(i) * time.Minute)
		cam := i % o.CamerasPerHost
		serial := fmt.Sprintf("BWC-%02d%03d", h, cam)
		officer := fmt.Sprintf("officer-%02d%03d", h, cam)
		id := fmt.Sprintf("%s-%08d", g.id, i)
		sha := digest.Bytes([]byte(id)).Hex()
		docked := g.tree.size() + 1
		evs := []custody.Event{
			{Type: custody.Docked, Camera: serial, Details: map[string]string{"kind": "body", "assigned_to": officer}},
			{Type: custody.Copied, Camera: serial, Item: id, SHA256: sha, Details: map[string]string{
				"source_path": "DCIM/" + id + ".MP4", "size": "1048576",
				"recorded_at": at.Add(-time.Hour).Format(time.RFC3339Nano), "dock_seq": strconv.FormatUint(docked, 10)}},
			{Type: custody.Vaulted, Camera: serial, Item: id, SHA256: sha, Details: map[string]string{
				"copied_seq": strconv.FormatUint(docked+1, 10)}},
			{Type: custody.Uploaded, Camera: serial, Item: id, SHA256: sha, Details: map[string]string{
				"key": serial + "/" + id + ".mp4", "version_id": "v1", "retention_class": "uncategorized",
				"retain_until": at.Add(90 * 24 * time.Hour).Format(time.RFC3339)}},
			{Type: custody.Verified, Camera: serial, Item: id, SHA256: sha, Details: map[string]string{
				"key": serial + "/" + id + ".mp4", "version_id": "v1"}},
		}
		for _, ev := range evs {
			ev.Actor, ev.At = "evidenced@"+g.id, at
			if err := g.add(ev); err != nil {
				return err
			}
		}
		if (i+1)%o.ItemsPerAnchor == 0 || i == o.ItemsPerHost-1 {
			if err := g.anchor(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// add appends one record, chained and signed.
func (g *host) add(ev custody.Event) error {
	ev.Seq, ev.Host, ev.PrevHash = g.tree.size()+1, g.id, g.prev
	rec, err := custody.EncodeRecord(ev)
	if err != nil {
		return err
	}
	sig, err := g.key.Sign(rec)
	if err != nil {
		return err
	}
	if g.from == 0 {
		g.from = ev.Seq
	}
	g.recs.Write(rec)
	g.recs.WriteByte('\n')
	fmt.Fprintf(&g.sigs, "%d %s\n", ev.Seq, base64.StdEncoding.EncodeToString(sig))
	g.tree.append(tlog.LeafHash(rec))
	g.prev = custody.RecordHash(rec)
	return nil
}

// anchor writes what was added since the last anchor, the checkpoint last.
func (g *host) anchor(ctx context.Context) error {
	size := g.tree.size()
	root := g.tree.f.Root()
	note, err := tlog.SignCheckpoint(tlog.Checkpoint{Origin: custody.CheckpointOrigin(g.id), Size: size, Root: root}, g.key.NoteSigner())
	if err != nil {
		return err
	}
	if err := g.put(ctx, anchor.RecordsKey(g.id, g.from, size), g.recs.Bytes()); err != nil {
		return err
	}
	if err := g.put(ctx, anchor.SigsKey(g.id, g.from, size), g.sigs.Bytes()); err != nil {
		return err
	}
	if g.anchored > 0 {
		hashes := g.tree.consistency(g.anchored)
		p, err := tlog.Proof{Kind: tlog.Consistency, A: g.anchored, B: size, Hashes: hashes}.Marshal()
		if err != nil {
			return err
		}
		key := fmt.Sprintf("%scheckpoints/%d.proof", anchor.Prefix(g.id), size)
		if err := g.put(ctx, key, p); err != nil {
			return err
		}
	}
	if err := g.put(ctx, anchor.CheckpointKey(g.id, size), note); err != nil {
		return err
	}
	g.recs.Reset()
	g.sigs.Reset()
	g.from, g.anchored = 0, size
	return nil
}

func (g *host) put(ctx context.Context, key string, b []byte) error {
	sum := digest.Bytes(b)
	_, err := g.s.Put(ctx, objstore.PutRequest{Key: key, Body: bytes.NewReader(b), Size: int64(len(b)), SHA256: sum,
		Metadata: map[string]string{"sha256": sum.Hex()}})
	return err
}

// tree is a host's Merkle tree kept incrementally: the frontier gives the
// root, and every perfect subtree's hash is kept (levels[l][i] covers
// leaves i·2^l .. (i+1)·2^l-1) so that a consistency proof costs
// O(log² n) hashes, not a pass over every leaf at every anchor (which made
// generating a million items take minutes).
type tree struct {
	f      tlog.Frontier
	levels [][]tlog.Hash
}

func (t *tree) size() uint64 { return t.f.Size }

func (t *tree) append(leaf tlog.Hash) {
	t.put(0, t.f.Size, leaf)
	t.f.AppendFunc(leaf, t.put)
}

func (t *tree) put(level int, index uint64, h tlog.Hash) {
	for len(t.levels) <= level {
		t.levels = append(t.levels, nil)
	}
	if uint64(len(t.levels[level])) != index {
		panic(fmt.Sprintf("fleetgen: subtree %d of level %d out of order", index, level))
	}
	t.levels[level] = append(t.levels[level], h)
}

// hash is the root of leaves [lo, lo+n): RFC 9162's MTH, every perfect
// subtree read from levels (lo is a multiple of each split, as in MTH).
func (t *tree) hash(lo, n uint64) tlog.Hash {
	if n&(n-1) == 0 {
		l := bits.TrailingZeros64(n)
		return t.levels[l][lo>>l]
	}
	k := split(n)
	return tlog.NodeHash(t.hash(lo, k), t.hash(lo+k, n-k))
}

// consistency is tlog.ConsistencyProof(leaves, m) over the whole tree.
func (t *tree) consistency(m uint64) []tlog.Hash {
	n := t.size()
	if m == 0 || m == n {
		return nil
	}
	return t.subproof(0, n, m, true)
}

func (t *tree) subproof(lo, n, m uint64, whole bool) []tlog.Hash {
	if m == n {
		if whole {
			return nil
		}
		return []tlog.Hash{t.hash(lo, n)}
	}
	k := split(n)
	if m <= k {
		return append(t.subproof(lo, k, m, whole), t.hash(lo+k, n-k))
	}
	return append(t.subproof(lo+k, n-k, m-k, false), t.hash(lo, k))
}

// split is the largest power of two smaller than n (n >= 2).
func split(n uint64) uint64 { return 1 << (bits.Len64(n-1) - 1) }
