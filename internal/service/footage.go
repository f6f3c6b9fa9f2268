package service

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore"
)

// ItemView is one item as a viewer sees it: the item as each host that
// ingested it recorded it (one on a dock host; at a console, one per
// trusted host that names it) and its custody, merged across hosts.
type ItemView struct {
	Items  []custody.Item
	Events []custody.Event
	// Holds are the cases whose legal hold is on the item after Events.
	Holds []string
}

// View is Custody plus the item itself. The viewing is recorded first (by
// Custody) and so is the last record of what is returned.
func (s *Service) View(ctx context.Context, c Caller, id, reason string) (ItemView, error) {
	evs, err := s.Custody(ctx, c, id, reason)
	if err != nil {
		return ItemView{}, err
	}
	if s.catalog == nil {
		it, err := s.item(ctx, id)
		if err != nil {
			return ItemView{}, err
		}
		return ItemView{Items: []custody.Item{it}, Events: evs, Holds: holdingCases(evs)}, nil
	}
	items, err := s.catalog.Item(ctx, id)
	if err != nil {
		return ItemView{}, fmt.Errorf("read item %s from the fleet index: %w", id, err)
	}
	return ItemView{Items: items, Events: evs, Holds: holdingCases(evs)}, nil
}

// Footage is one recording a caller may read in parts (a browser's video
// player asks for byte ranges as it plays and seeks). Only Play makes one,
// after the access is on record and anchored off the host: holding a
// Footage is the proof that the viewing was recorded.
type Footage struct {
	s       *Service
	c       Caller
	reason  string
	it      custody.Item
	details map[string]string
}

// Item is the recording's item.
func (f *Footage) Item() custody.Item { return f.it }

// Play records that c views the item, and why, anchors that record off the
// host (as Get does, before the first byte leaves), and returns the
// recording to read in ranges. A viewer that cannot be served is recorded
// as a failed access.
func (s *Service) Play(ctx context.Context, c Caller, id, reason string) (*Footage, error) {
	if err := needReason(reason); err != nil {
		return nil, err
	}
	it, err := s.retrievable(ctx, id)
	if err != nil {
		return nil, err
	}
	f := &Footage{s: s, c: c, reason: reason, it: it, details: map[string]string{}}
	if s.catalog != nil {
		f.details["host"] = it.Host
	}
	if err := s.RecordAccess(ctx, c, "play", reason, &it, f.details); err != nil {
		return nil, err
	}
	if err := s.anchorBeforeRelease(ctx, true); err != nil {
		return nil, s.RecordFailedAccess(ctx, c, "play", reason, &it, f.details,
			fmt.Errorf("the viewing of %s is recorded but could not be anchored off the host, so nothing is shown: %w", it.ID, s.storeErr(err)))
	}
	return f, nil
}

// OpenRange reads n bytes of the recording from off (fewer at its end):
// from the vault while it holds the item, else from the object store by
// the recorded version id. A read that cannot start is recorded as a
// failed access of the viewing.
func (f *Footage) OpenRange(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	if off < 0 || n < 0 || off > f.it.Size {
		return nil, invalidf("item %s: range %d+%d is outside its %d bytes", f.it.ID, off, n, f.it.Size)
	}
	rc, err := f.open(ctx, off, n)
	if err != nil {
		return nil, f.s.RecordFailedAccess(ctx, f.c, "play", f.reason, &f.it, f.details, err)
	}
	return rc, nil
}

func (f *Footage) open(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	s, it := f.s, f.it
	if s.catalog == nil {
		if v, err := s.vault.Open(it.ID); err == nil {
			if _, err := v.Seek(off, io.SeekStart); err != nil {
				v.Close()
				return nil, fmt.Errorf("seek %s in the vault: %w", it.ID, err)
			}
			return struct {
				io.Reader
				io.Closer
			}{io.LimitReader(v, n), v}, nil
		}
	}
	r, ok := s.store.(objstore.Ranger)
	if s.store == nil || !ok || it.ObjectKey == "" {
		return nil, errors.New("item " + it.ID + ": not in the vault and not readable in parts from an object store")
	}
	rc, err := r.OpenRange(ctx, it.ObjectKey, it.VersionID, off, n)
	if err != nil {
		return nil, fmt.Errorf("read %s (version %s) bytes %d+%d from the object store: %w", it.ObjectKey, it.VersionID, off, n, s.storeErr(err))
	}
	return rc, nil
}
