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
	"fmt"
	"strconv"
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
// console's configuration would list them.
func Generate(ctx context.Context, s anchor.Store, o Options) ([]catalog.Trusted, error) {
	if o.CamerasPerHost < 1 {
		o.CamerasPerHost = 1
	}
	if o.ItemsPerAnchor < 1 {
		o.ItemsPerAnchor = o.ItemsPerHost
	}
	var out []catalog.Trusted
	for h := 1; h <= o.Hosts; h++ {
		id := fmt.Sprintf("dock-%02d", h)
		key, err := signing.Generate(id)
		if err != nil {
			return nil, err
		}
		g := &host{id: id, key: key, s: s, prev: custody.GenesisHash}
		if err := g.run(ctx, o, h); err != nil {
			return nil, fmt.Errorf("fleetgen %s: %w", id, err)
		}
		out = append(out, catalog.Trusted{ID: id, Key: key.Public()})
	}
	return out, nil
}

// host is one generated host's ledger, kept in memory.
type host struct {
	id     string
	key    *signing.Key
	s      anchor.Store
	leaves []tlog.Hash
	prev   string
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
		docked := uint64(len(g.leaves)) + 1
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
	ev.Seq, ev.Host, ev.PrevHash = uint64(len(g.leaves))+1, g.id, g.prev
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
	g.leaves = append(g.leaves, tlog.LeafHash(rec))
	g.prev = custody.RecordHash(rec)
	return nil
}

// anchor writes what was added since the last anchor, the checkpoint last.
func (g *host) anchor(ctx context.Context) error {
	size := uint64(len(g.leaves))
	root := tlog.RootOf(g.leaves)
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
		hashes, err := tlog.ConsistencyProof(g.leaves, g.anchored)
		if err != nil {
			return err
		}
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
