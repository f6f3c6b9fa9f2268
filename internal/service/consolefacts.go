package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/facts"
	"github.com/evidenced/evidenced/internal/objstore"
)

// consoleLedger is what the parse step needs of custody at a console. The
// items are the catalog's, as the trusted dock hosts' signed records
// describe them (so the SHA-256 a held copy is checked against is the one
// the dock host recorded while copying, never the store's word); the parse
// records are the console's own, appended without an item like its holds,
// and anchored with its other records.
type consoleLedger struct{ s *Service }

func (c consoleLedger) Append(ctx context.Context, ev custody.Event, _ *custody.Item) (custody.Event, error) {
	return c.s.ledger.Append(ctx, ev, nil)
}

func (c consoleLedger) Custody(ctx context.Context, id string) ([]custody.Event, error) {
	return c.s.ledger.Custody(ctx, id)
}

// Items walks every served item once (an item two hosts ingested, as the
// host that uploaded it).
func (c consoleLedger) Items(ctx context.Context, f custody.Filter, fn func(custody.Item) error) error {
	all, err := c.s.catalog.Find(ctx, catalog.Filter{Filter: f})
	if err != nil {
		return err
	}
	byID := map[string]custody.Item{}
	var order []string
	for _, it := range all {
		prev, seen := byID[it.ID]
		if !seen {
			order = append(order, it.ID)
		}
		if !seen || (prev.ObjectKey == "" && it.ObjectKey != "") {
			byID[it.ID] = it
		}
	}
	for _, id := range order {
		if err := fn(byID[id]); err != nil {
			return err
		}
	}
	return nil
}

// EachItem walks every served item once, as Items does, a batch of the
// catalog at a time (facts.Streamer): a new facts index's first catch-up
// walks the whole fleet, and Items holds every item of it at once.
func (c consoleLedger) EachItem(ctx context.Context, fn func(custody.Item) error) error {
	return c.s.catalog.EachItem(ctx, fn)
}

// Position and Changed make the catalog the parse step's journal: a
// catch-up reads only the records indexed since the last one (a restart
// with nothing new reads none), not every item.
func (c consoleLedger) Position(ctx context.Context) ([]byte, error) {
	end, err := c.s.catalog.End(ctx)
	if err != nil {
		return nil, err
	}
	return json.Marshal(end)
}

func (c consoleLedger) Changed(ctx context.Context, from []byte) ([]string, []byte, error) {
	var pos catalog.Position
	if len(from) > 0 {
		if err := json.Unmarshal(from, &pos); err != nil {
			return nil, nil, fmt.Errorf("catch-up position %q: %w", from, err)
		}
	}
	ids, next, err := c.s.catalog.Changed(ctx, pos)
	if err != nil {
		return nil, nil, err
	}
	b, err := json.Marshal(next)
	return ids, b, err
}

func (c consoleLedger) Item(ctx context.Context, id string) (custody.Item, error) {
	items, err := c.s.catalog.Item(ctx, id)
	if err != nil {
		return custody.Item{}, err
	}
	if len(items) == 0 {
		return custody.Item{}, fmt.Errorf("item %s: no trusted host's anchored records name it: %w", id, custody.ErrNotFound)
	}
	for _, it := range items {
		if it.ObjectKey != "" {
			return it, nil
		}
	}
	return items[0], nil
}

// openStored is a console's held copy of an item: the object the dock host
// uploaded, by the version it recorded. An item not uploaded yet, or a
// store that did not answer or stopped answering mid-object, is
// facts.ErrUnavailable (parsed later); a recorded version the store does
// not have is a failed parse on record.
func (s *Service) openStored(ctx context.Context, it custody.Item) (io.ReadCloser, error) {
	if it.ObjectKey == "" || it.VersionID == "" {
		return nil, fmt.Errorf("item %s: %s has not recorded it uploaded yet: %w", it.ID, it.Host, facts.ErrUnavailable)
	}
	rc, err := s.store.Open(ctx, it.ObjectKey, it.VersionID)
	switch {
	case err == nil:
		return storeReader{rc: rc, what: it.ObjectKey}, nil
	case errors.Is(err, objstore.ErrNotFound):
		return nil, fmt.Errorf("%s (version %s), which %s recorded, is not in the object store: %w", it.ObjectKey, it.VersionID, it.Host, err)
	default:
		return nil, fmt.Errorf("open %s (version %s) in the object store: %v: %w", it.ObjectKey, it.VersionID, err, facts.ErrUnavailable)
	}
}

// consoleFacts brings a console's facts index up to what the catalog
// knows when no console daemon keeps it so: the catalog is synced and
// every sidecar it serves that the index does not hold yet is parsed from
// the store. The daemon parses each upload as a sync learns of it.
func (s *Service) consoleFacts(ctx context.Context) error {
	if err := s.freshCatalog(ctx); err != nil {
		return err
	}
	if s.catalogLive.Load() {
		return nil
	}
	if _, err := s.parser.CatchUp(ctx); err != nil {
		return fmt.Errorf("parse the fleet's sidecars from the store: %w", err)
	}
	return nil
}

// servedItem is the item a fact's hit names, as this host serves it: on a
// dock host from its ledger; at a console from the catalog (false when no
// trusted host serves it, e.g. a host withheld since the file was parsed).
func (s *Service) servedItem(ctx context.Context, id string) (custody.Item, bool, error) {
	if s.catalog == nil {
		it, err := s.ledger.Item(ctx, id)
		return it, err == nil, err
	}
	it, err := consoleLedger{s}.Item(ctx, id)
	if errors.Is(err, custody.ErrNotFound) {
		return it, false, nil
	}
	return it, err == nil, err
}

// storeReader is a stored object being read: an error part-way is the
// store's, not the file's (facts.ErrUnavailable).
type storeReader struct {
	rc   io.ReadCloser
	what string
}

func (r storeReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("read %s from the object store: %v: %w", r.what, err, facts.ErrUnavailable)
	}
	return n, err
}

func (r storeReader) Close() error { return r.rc.Close() }

var (
	_ facts.Journal  = consoleLedger{}
	_ facts.Streamer = consoleLedger{}
)
