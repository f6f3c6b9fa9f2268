package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/signing"
)

// The camera inventory flows from the console to the dock hosts through
// the store, as custody does the other way. The console signs the
// document as a C2SP signed note (the document's JSON is the note's text,
// the signature is over exactly those bytes, one object, so a reader never
// pairs a document with another version's signature); a dock host checks it
// with the console's key from its own configuration (inventory:), never
// with a key the store offers, and takes only a version newer than the one
// in force.
const (
	// InventoryPublished: the console published an inventory (Details:
	// console, version, sha256, object, version_id, cameras).
	InventoryPublished custody.EventType = "INVENTORY_PUBLISHED"
	// InventoryAccepted: a dock host took a console's inventory (Details:
	// console, version, sha256, object, version_id, published_at, cameras).
	InventoryAccepted custody.EventType = "INVENTORY_ACCEPTED"
	// InventoryRefused is an alert: a dock host refused the document the
	// store holds (Details: console, object, version_id, sha256, problem,
	// in_force), and the inventory in force stayed.
	InventoryRefused custody.EventType = "INVENTORY_REFUSED"
)

// inventoryFormat names the document's layout: v2 adds each camera's
// retirement and assignment history. A dock host still takes a v1
// document (one without them).
const (
	inventoryFormat   = "evidenced-inventory/v2"
	inventoryFormatV1 = "evidenced-inventory/v1"
)

// maxInventory bounds the document read: 450 cameras are ~50 KiB.
const maxInventory = 4 << 20

// inventoryWarnAt is the signed document's size past which a publication
// warns (three quarters of maxInventory): the history grows with every
// hand-over and nothing in it is dropped, and a console refuses to
// publish past maxInventory, so the operator needs to hear of it weeks
// before (at 450 hand-overs a day the last quarter lasts about 45 days).
const inventoryWarnAt = maxInventory / 4 * 3

// InventoryKey is the object of console's published inventory.
func InventoryKey(console string) string { return "_inventory/" + console + "/inventory.note" }

// inventoryDoc is the published document (the signed note's text, as
// JSON on one line).
type inventoryDoc struct {
	Format      string                   `json:"format"`
	Console     string                   `json:"console"`
	Version     uint64                   `json:"version"`
	PublishedAt time.Time                `json:"published_at"`
	Cameras     []config.InventoryCamera `json:"cameras"`
}

// openInventory checks the signed note against v (the console's pinned
// key) and decodes and validates the document it carries, which must be
// console's.
func openInventory(data []byte, v note.Verifier, console string) (inventoryDoc, error) {
	var doc inventoryDoc
	n, err := note.Open(data, note.VerifierList(v))
	if err != nil {
		return doc, fmt.Errorf("signature: %w", err)
	}
	text := n.Text
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return doc, fmt.Errorf("decode the document: %w", err)
	}
	switch {
	case doc.Format == inventoryFormatV1:
		for _, c := range doc.Cameras {
			if c.Retired != nil || len(c.Assignments) > 0 {
				return doc, fmt.Errorf("camera %s: a %s document carries no retired or assignments", c.Serial, inventoryFormatV1)
			}
		}
	case doc.Format != inventoryFormat:
		return doc, fmt.Errorf("format %q, want %q (or %q)", doc.Format, inventoryFormat, inventoryFormatV1)
	}
	switch {
	case doc.Console != console:
		return doc, fmt.Errorf("the document is console %q's, not %q's", doc.Console, console)
	case doc.Version == 0:
		return doc, errors.New("version 0")
	case len(doc.Cameras) == 0:
		return doc, errors.New("no cameras")
	}
	if err := config.CheckInventory(doc.Cameras, InventoryKey(console)); err != nil {
		return doc, err
	}
	return doc, nil
}

// readSmallFile reads a file a command names, refusing one over max bytes.
func readSmallFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return data, nil
}

// inventoryFollower is a dock host's reading of its console's inventory.
// Only the daemon's loop touches it.
type inventoryFollower struct {
	console  string
	key      string
	verifier note.Verifier
	// floor is the version in force (0: none since start): only a newer
	// one is taken.
	floor uint64
	// seen is the SHA-256 of the last document decided on, accepted or
	// refused: the same bytes are not decided (or alerted on) again.
	seen string
	// inForce is the SHA-256 of the document in force ("": cameras:).
	inForce string
}

// Why a read of the console's inventory left the version in force
// without confirming it is the newest: the labels of
// evidenced_inventory_refresh_failures_total.
const (
	// invReadStore: the store did not answer, or the read failed.
	invReadStore = iota
	// invReadRefused: the newest document in the store is one this host
	// refused (signature, decoding, an older version).
	invReadRefused
	// invReadMissing: no document in the store, though one is in force
	// (deleted, or a delete marker put over it).
	invReadMissing
	invReadReasons
)

var invReadLabels = [invReadReasons]string{"store", "refused", "missing"}

// inventoryReads is how a dock host's reads of its console's inventory
// went, for the metrics: a refused document is also an INVENTORY_REFUSED
// record, but a store that does not answer, or a refused document still
// in the store at every later poll, leaves nothing in the ledger, and the
// host goes on docking with an assignment the console may have changed.
type inventoryReads struct {
	// confirmed is the UnixNano of the last read that found the store's
	// newest document in force (or none published and none in force).
	confirmed atomic.Int64
	// failures counts the other reads since the daemon started, by reason.
	failures [invReadReasons]atomic.Uint64
}

func (r *inventoryReads) confirm()        { r.confirmed.Store(time.Now().UnixNano()) }
func (r *inventoryReads) fail(reason int) { r.failures[reason].Add(1) }

// newInventoryFollower loads the console's key the configuration pins.
func (s *Service) newInventoryFollower() (*inventoryFollower, error) {
	in := s.config.Inventory
	pem, err := os.ReadFile(in.PublicKeyFile)
	if err != nil {
		return nil, fmt.Errorf("inventory.public_key_file: %w", err)
	}
	pub, err := signing.ParsePublicPEM(pem)
	if err != nil {
		return nil, fmt.Errorf("inventory.public_key_file %s: %w", in.PublicKeyFile, err)
	}
	v, err := signing.NoteVerifier(in.FromConsole, pub)
	if err != nil {
		return nil, fmt.Errorf("inventory.public_key_file %s: %w", in.PublicKeyFile, err)
	}
	f := &inventoryFollower{console: in.FromConsole, key: InventoryKey(in.FromConsole), verifier: v}
	s.loadInventoryCache(f)
	return f, nil
}

// inventoryCachePath keeps the last document this host accepted, so a
// restart starts from it: the console's assignments stay in force with the
// store away, and its version stays the floor.
func (s *Service) inventoryCachePath() string {
	return filepath.Join(s.config.StateDir, "inventory.note")
}

// loadInventoryCache puts the last accepted document back in force, if it
// still opens with the pinned key (a file that does not is logged and
// ignored: the store's document decides, from cameras:).
func (s *Service) loadInventoryCache(f *inventoryFollower) {
	data, err := readSmallFile(s.inventoryCachePath(), maxInventory)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var doc inventoryDoc
	if err == nil {
		doc, err = openInventory(data, f.verifier, f.console)
	}
	if err != nil {
		s.log.Error("the last accepted inventory does not open; cameras: is in force until the console's is read", "path", s.inventoryCachePath(), "err", err)
		return
	}
	sum := digest.Bytes(data).Hex()
	s.config.SetPublished(&config.Published{Console: f.console, Version: doc.Version, SHA256: sum, PublishedAt: doc.PublishedAt, Source: s.inventoryCachePath(), Cameras: doc.Cameras})
	f.floor, f.seen, f.inForce = doc.Version, sum, sum
	s.log.Info("inventory in force from the last accepted document", "path", s.inventoryCachePath(), "version", doc.Version, "sha256", sum)
}

// saveInventoryCache writes the accepted document beside the ledger
// (temporary file, fsync, rename). A failure is logged: the document is
// in force and on record all the same.
func (s *Service) saveInventoryCache(data []byte) {
	p := s.inventoryCachePath()
	err := func() error {
		tmp, err := os.CreateTemp(filepath.Dir(p), ".inventory-*.tmp")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		if _, err := tmp.Write(data); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), p)
	}()
	if err != nil {
		s.log.Warn("keep the accepted inventory for the next start", "path", p, "err", err)
	}
}

// runInventory polls the console's inventory every inventory.poll until
// ctx ends (the first poll is made by Run before docks are taken).
func (s *Service) runInventory(ctx context.Context, f *inventoryFollower) error {
	t := time.NewTicker(s.config.Inventory.Poll.Duration)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.pollInventory(ctx, f)
		}
	}
}

// pollInventory reads the console's document once and decides on it if it
// is new: checked (signature with the pinned key, the console's, valid
// cameras, a version newer than the one in force), it is recorded as
// INVENTORY_ACCEPTED and then put in force for the docks that start next;
// otherwise it is refused with an ERROR log line and an INVENTORY_REFUSED
// record, and the inventory in force stays. Every read that does not find
// the newest document in force is counted by reason (s.invReads).
func (s *Service) pollInventory(ctx context.Context, f *inventoryFollower) {
	data, versionID, err := s.readInventory(ctx, f.key)
	if errors.Is(err, objstore.ErrNotFound) {
		if f.floor == 0 {
			s.log.Debug("no inventory published yet", "object", f.key)
			s.invReads.confirm()
			return
		}
		s.log.Warn("inventory: the store holds no document, though the version in force came from it; the inventory in force stays", "object", f.key, "in_force", f.floor)
		s.invReads.fail(invReadMissing)
		return
	}
	// A document over maxInventory is read no further: it is refused
	// below like one that does not open, known by its version id.
	tooLarge := errors.Is(err, errInventoryTooLarge)
	if err != nil && !tooLarge {
		if !errors.Is(err, context.Canceled) { // not the daemon stopping
			s.invReads.fail(invReadStore)
		}
		s.log.Warn("inventory: the store did not answer; the inventory in force stays", "object", f.key, "err", err)
		return
	}
	sum := digest.Bytes(data).Hex()
	if tooLarge {
		sum = "version " + versionID // no bytes read: the version id tells it from the next document
	}
	if sum == f.inForce {
		// The document in force (or its very bytes put again): nothing
		// to decide, and the version in force is the newest.
		f.seen = sum
		s.invReads.confirm()
		return
	}
	if sum == f.seen {
		s.invReads.fail(invReadRefused) // the document refused before is still the newest
		return
	}
	var doc inventoryDoc
	if !tooLarge {
		doc, err = openInventory(data, f.verifier, f.console)
	}
	if err == nil && doc.Version <= f.floor {
		err = fmt.Errorf("version %d is not newer than version %d in force (a rollback)", doc.Version, f.floor)
	}
	ev := custody.Event{Actor: s.DaemonActor(), Details: map[string]string{
		"console": f.console, "object": f.key, "version_id": versionID, "sha256": sum,
	}}
	if tooLarge {
		delete(ev.Details, "sha256")
	}
	if err != nil {
		s.log.Error("inventory document refused; the inventory in force stays", "object", f.key,
			"version_id", versionID, "sha256", sum, "in_force", f.floor, "err", err)
		ev.Type = InventoryRefused
		ev.Details["problem"] = err.Error()
		ev.Details["in_force"] = strconv.FormatUint(f.floor, 10)
		s.invReads.fail(invReadRefused)
		if _, err := s.ledger.Append(context.WithoutCancel(ctx), ev, nil); err != nil {
			s.log.Error("record a refused inventory", "object", f.key, "err", err)
			return // decided again at the next poll, and recorded then
		}
		f.seen = sum
		return
	}
	ev.Type = InventoryAccepted
	ev.Details["version"] = strconv.FormatUint(doc.Version, 10)
	ev.Details["published_at"] = doc.PublishedAt.Format(time.RFC3339Nano)
	ev.Details["cameras"] = strconv.Itoa(len(doc.Cameras))
	// On record before in force: a DOCKED that names the new assignment
	// always follows the record of where it came from.
	if _, err := s.ledger.Append(context.WithoutCancel(ctx), ev, nil); err != nil {
		s.log.Error("record an accepted inventory; not put in force", "object", f.key, "version", doc.Version, "err", err)
		return
	}
	s.config.SetPublished(&config.Published{Console: f.console, Version: doc.Version, SHA256: sum, PublishedAt: doc.PublishedAt,
		Source: f.key + "@" + versionID, Cameras: doc.Cameras})
	f.floor, f.seen, f.inForce = doc.Version, sum, sum
	s.invReads.confirm()
	s.saveInventoryCache(data)
	s.log.Info("inventory accepted", "object", f.key, "version", doc.Version, "sha256", sum, "cameras", len(doc.Cameras))
}
