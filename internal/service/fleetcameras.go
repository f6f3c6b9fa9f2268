package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/config"
)

// The console's fleet shows every camera of its published inventory, not
// only those the dock hosts' records name: an officer's camera that never
// came back to any dock is exactly the one a custodian must see, and the
// records of the docks cannot show it.

// listedCamera is a camera of the console's published inventory and since
// when the inventory has listed it without a break.
type listedCamera struct {
	config.InventoryCamera
	Since time.Time
}

// fleetInventory is the console's published inventory as the fleet reads
// it: the newest version in the store, checked with the console's own key.
type fleetInventory struct {
	// Version is the version in the store (0: none published).
	Version uint64
	// Problem, when set, is why the document the store holds as the
	// newest was not taken (it does not open with the console's key, or
	// it is an older version put back): the cameras are those of the
	// highest version that opens.
	Problem string
	Cameras []listedCamera
	// Bytes is the size of the document of Version, as listed (0: none).
	Bytes int64
}

// inventoryVersions caches the console's inventory documents by version id
// (a stored version never changes), so reading the fleet lists the
// document's versions but reads only the new ones.
type inventoryVersions struct {
	mu   sync.Mutex
	docs map[string]inventoryDoc
	bad  map[string]string
}

// readFleetInventory reads the console's own published inventory from the
// store: every version of it (new ones opened and checked with the
// console's key), the newest one's cameras, and for each the oldest
// version of the unbroken run of versions, ending at the newest, that
// lists it. The result is also kept for the metrics (fleetInventoryNow),
// and the read counted as a dock host's are (s.invReads): confirmed when
// the store's newest document is the highest signed version, else a
// failure by reason.
func (s *Service) readFleetInventory(ctx context.Context) (fleetInventory, error) {
	inv, reason, err := s.readFleetInventoryOnce(ctx)
	switch {
	case err != nil && errors.Is(err, context.Canceled):
	case err != nil:
		s.invReads.fail(invReadStore)
	case reason >= 0:
		s.invReads.fail(reason)
	default:
		s.invReads.confirm()
	}
	return inv, err
}

// readFleetInventoryOnce is readFleetInventory's read: the inventory, and
// why the store's newest document is not the one taken (-1: it is).
func (s *Service) readFleetInventoryOnce(ctx context.Context) (fleetInventory, int, error) {
	key := InventoryKey(s.config.HostID)
	vs, err := s.anchorStore.ListVersions(ctx, key)
	if err != nil {
		return fleetInventory{}, 0, fmt.Errorf("list the versions of the console's inventory %s: %w", key, err)
	}
	c := &s.invVersions
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.docs == nil {
		c.docs, c.bad = map[string]inventoryDoc{}, map[string]string{}
	}
	var latest string
	var docs []inventoryDoc
	size := map[uint64]int64{} // by document version
	for _, v := range vs {
		if v.Key != key {
			continue
		}
		if v.IsLatest {
			latest = v.VersionID
		}
		if _, ok := c.docs[v.VersionID]; !ok && c.bad[v.VersionID] == "" {
			data, err := s.readInventoryVersion(ctx, key, v.VersionID)
			if err != nil && !errors.Is(err, errInventoryTooLarge) {
				return fleetInventory{}, 0, fmt.Errorf("read the console's inventory %s version %s: %w", key, v.VersionID, err)
			}
			var doc inventoryDoc
			if err == nil {
				doc, err = openInventory(data, s.hostKey().NoteVerifier(), s.config.HostID)
			}
			if err != nil {
				c.bad[v.VersionID] = err.Error()
				s.log.Error("a version of the console's inventory in the store does not open with the console's key", "object", key, "version_id", v.VersionID, "err", err)
			} else {
				c.docs[v.VersionID] = doc
			}
		}
		if doc, ok := c.docs[v.VersionID]; ok {
			docs = append(docs, doc)
			size[doc.Version] = v.Size
		}
	}
	// The newest is the highest signed version number, whatever the
	// store holds as its latest: a document that does not open, or an
	// older one put back, does not hide the cameras of the last good one.
	var inv fleetInventory
	var newest inventoryDoc
	for _, d := range docs {
		if d.Version > newest.Version {
			newest = d
		}
	}
	if newest.Version > 0 {
		inv = fleetInventory{Version: newest.Version, Cameras: listedSince(newest, docs), Bytes: size[newest.Version]}
	}
	reason := -1
	if d, ok := c.docs[latest]; !ok && latest != "" {
		inv.Problem = fmt.Sprintf("the newest document in the store (%s, version id %s) is not this console's: %s; cameras as of version %d", key, latest, c.bad[latest], newest.Version)
		reason = invReadRefused
	} else if ok && d.Version < newest.Version {
		inv.Problem = fmt.Sprintf("the newest document in the store (%s, version id %s) is version %d put back over version %d; cameras as of version %d", key, latest, d.Version, newest.Version, newest.Version)
		reason = invReadRefused
	} else if latest == "" && newest.Version > 0 {
		inv.Problem = fmt.Sprintf("the newest document in the store (%s) is deleted: the dock hosts keep the version they have in force; cameras as of version %d", key, newest.Version)
		reason = invReadMissing
	}
	s.fleetInv.Store(&inv)
	return inv, reason, nil
}

// listedSince is newest's cameras, each with the publication time of the
// oldest version in the unbroken run (consecutive version numbers, each
// listing the camera) that ends at newest. A version the store no longer
// holds, or one that does not open, ends the run: the time is then later
// than the truth, never earlier.
func listedSince(newest inventoryDoc, docs []inventoryDoc) []listedCamera {
	byVersion := map[uint64]inventoryDoc{}
	for _, d := range docs {
		byVersion[d.Version] = d
	}
	out := make([]listedCamera, 0, len(newest.Cameras))
	for _, cam := range newest.Cameras {
		since := newest.PublishedAt
		for v := newest.Version - 1; v > 0; v-- {
			d, ok := byVersion[v]
			if !ok || !lists(d, cam.Serial) {
				break
			}
			since = d.PublishedAt
		}
		out = append(out, listedCamera{InventoryCamera: cam, Since: since})
	}
	return out
}

func lists(d inventoryDoc, serial string) bool {
	for _, c := range d.Cameras {
		if c.Serial == serial {
			return true
		}
	}
	return false
}

// readInventoryVersion reads one version of the inventory document.
func (s *Service) readInventoryVersion(ctx context.Context, key, versionID string) ([]byte, error) {
	rc, err := s.store.Open(ctx, key, versionID)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxInventory+1))
	if err != nil {
		return nil, fmt.Errorf("read %s version %s: %w", key, versionID, err)
	}
	if len(data) > maxInventory {
		return nil, fmt.Errorf("read %s version %s: larger than %d bytes: %w", key, versionID, maxInventory, errInventoryTooLarge)
	}
	return data, nil
}

// errInventoryTooLarge: a version of an inventory document is over
// maxInventory. A console publishes none so large (publishNext refuses
// to), so one in the store is a finding about that version, as a
// signature that does not open is, never a read that could not be made.
var errInventoryTooLarge = errors.New("no console publishes an inventory so large")

// fleetInventoryNow is the inventory as last read (by runFleetInventory
// or a fleet command), nil before the first read: a scrape does not read the
// store.
func (s *Service) fleetInventoryNow() *fleetInventory { return s.fleetInv.Load() }

// withInventory adds to f's cameras (those the trusted hosts' records dock)
// every camera of inv that none docked, as CameraNeverDocked with the
// inventory's kind and assignment, and sorts the cameras by serial.
func withInventory(f *catalog.Fleet, inv fleetInventory) {
	f.InventoryVersion, f.InventoryProblem = inv.Version, inv.Problem
	docked := map[string]bool{}
	for _, c := range f.Cameras {
		docked[c.Serial] = true
	}
	for _, c := range inv.Cameras {
		if docked[c.Serial] {
			continue
		}
		f.Cameras = append(f.Cameras, catalog.CameraHealth{Serial: c.Serial, Kind: c.Kind, AssignedTo: c.AssignedTo,
			State: catalog.CameraNeverDocked, ListedSince: c.Since})
	}
	sort.SliceStable(f.Cameras, func(i, j int) bool { return f.Cameras[i].Serial < f.Cameras[j].Serial })
}

// runFleetInventory is the console's reading of its own published
// inventory inside Run: at start, then every console.poll, on its own
// timer. Not after each catalog pass: a pass lasts as long as the fleet's
// new records take to index (a first build of a large fleet's index takes
// hours), and evidenced_inventory_read_age_seconds would then grow with
// the indexing, not with the store's answers, and fire
// EvidencedInventoryNotConfirmed with nothing wrong.
func (s *Service) runFleetInventory(ctx context.Context) error {
	t := time.NewTicker(s.config.Console.Poll.Duration)
	defer t.Stop()
	for {
		s.refreshFleetInventory(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// refreshFleetInventory reads the inventory for the metrics; a store that
// does not answer keeps the last reading.
func (s *Service) refreshFleetInventory(ctx context.Context) {
	if _, err := s.readFleetInventory(ctx); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("read the console's published inventory for the fleet's cameras; the last reading stays", "err", err)
	}
}
