package service

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/signing"
)

// Caller is who asks for an operation: the actor, the OS identity the
// kernel reports (the control socket peer's user, or the local process's),
// whom they say they act for, and, when the request came over the control
// socket, the connecting process. All go into the custody records the
// operation writes; a claimed name is recorded as on_behalf_of, never as
// the actor.
type Caller struct {
	Actor      string
	OnBehalfOf string // what --actor claimed; "" when nobody was named
	Peer       string // "uid=…,pid=…" when run inside the daemon for a client
}

// details adds on_behalf_of to a record's details when the caller named
// someone: beside the actor, never instead.
func (c Caller) details(d map[string]string) map[string]string {
	if c.OnBehalfOf != "" {
		d["on_behalf_of"] = c.OnBehalfOf
	}
	return d
}

// Config is the configuration the service was opened with.
func (s *Service) Config() *config.Config { return s.config }

// HostKey is the key that signs this host's custody records.
func (s *Service) HostKey() *signing.Key { return s.hostKey() }

// HostKeyFingerprint is the host key's fingerprint (SHA256:…), as
// verify-export --key-fingerprint takes it.
func (s *Service) HostKeyFingerprint() string { return signing.Fingerprint(s.hostKey().Public()) }

// Bays is the docked cameras' status (the daemon's; empty in a CLI process).
func (s *Service) Bays() *Bays { return s.bays }

// RecordAccess writes who looked at what, and why, into the custody chain
// before anything is shown: investigators' searches and custodians' checks
// are part of an item's custody as much as a retrieval is. it may be nil (a
// search or a whole-ledger check names no single item).
func (s *Service) RecordAccess(ctx context.Context, c Caller, action, reason string, it *custody.Item, details map[string]string) error {
	d := map[string]string{"action": action}
	for k, v := range details {
		if v != "" {
			d[k] = v
		}
	}
	if reason != "" {
		d["reason"] = reason
	}
	if c.Peer != "" {
		d["peer"] = c.Peer
	}
	ev := custody.Event{Type: custody.Accessed, Actor: c.Actor, Details: c.details(d)}
	if it != nil {
		ev.Item, ev.Camera, ev.SHA256 = it.ID, it.Camera, it.SHA256
	}
	// Grouped: the searches and views of many people at a console share
	// one commit (one fsync) instead of queueing for one each; it still
	// returns only once this record is committed, so nothing is shown or
	// released before its access is on disk.
	if _, err := s.ledger.AppendGrouped(ctx, ev); err != nil {
		return fmt.Errorf("record %s access in the custody ledger: %w", action, err)
	}
	return nil
}

// RecordFailedAccess records an access that did not complete: its
// outcome ("failed") and the error, so the ledger tells an attempted
// retrieval or export from a completed one. An access recorded before it
// ran (as every retrieval and export is) is followed by this record when
// it then fails. It returns the operation's error, joined with the
// recording's own failure if the ledger refused it.
func (s *Service) RecordFailedAccess(ctx context.Context, c Caller, action, reason string, it *custody.Item, details map[string]string, failure error) error {
	d := map[string]string{"outcome": "failed", "error": failure.Error()}
	for k, v := range details {
		d[k] = v
	}
	// The caller may have gone away (the reason it failed): the record is
	// written all the same.
	if err := s.RecordAccess(context.WithoutCancel(ctx), c, action, reason, it, d); err != nil {
		return errors.Join(failure, err)
	}
	return failure
}

// item loads one item, saying plainly when the ledger does not know it.
func (s *Service) item(ctx context.Context, id string) (custody.Item, error) {
	if s.catalog != nil {
		return custody.Item{}, notAtConsole(id)
	}
	it, err := s.ledger.Item(ctx, id)
	if errors.Is(err, custody.ErrNotFound) {
		return it, &kindError{kind: ErrNotFound, err: fmt.Errorf("item %q: not in the ledger", id)}
	}
	if err != nil {
		return it, fmt.Errorf("read item %s: %w", id, err)
	}
	return it, nil
}

// FindOptions select recordings.
type FindOptions struct {
	Filter custody.Filter
	Reason string
	// Asked is the search as the caller typed it, recorded with the access.
	Asked map[string]string
	// Host, at a console, keeps the items of that dock host only.
	Host string
	// Plate searches the sidecar plate reads (normalised: "CA 123-456" is
	// "CA123456"); Fuzzy also finds plates one edit or a few OCR
	// confusions away. Near searches the GPS tracks. With either, Since
	// and Until bound the facts' times, and the results are the
	// recordings linked to the facts found.
	Plate string
	Fuzzy bool
	Near  *NearOptions
	// Offset and Limit ask for one page of the results: the first Offset
	// are skipped, at most Limit returned (0: all the rest). At a console
	// only the page is read from the index; the total is counted all the
	// same (FoundPage.Total).
	Offset, Limit int
	// After, instead of Offset, asks for the page after the one whose
	// FoundPage.Next it is (an opaque cursor, checked: a damaged one or
	// another search's is refused). At a console the page is then read
	// from the last one's position, not counted again from the start.
	After string
	// MaxScan, when more than 0, bounds the items a search at a console
	// without an officer or camera may read (by a state including
	// verified, or by time alone): past it the search is refused
	// (ErrInvalid) with how to narrow it.
	MaxScan int
}

// FoundPage is one page of a search and how many recordings (or, by plate
// or place, facts) the search found in all.
type FoundPage struct {
	Items []Found `json:"items"`
	Total int     `json:"total"`
	// Offset is how many results come before the page.
	Offset int `json:"offset"`
	// Next asks for the page after this one (FindOptions.After); "" on
	// the last page, or when no Limit was asked.
	Next string `json:"next,omitempty"`
}

// Find lists the items the filter selects (the page Offset and Limit ask
// for); the search is recorded first. A search by plate or place returns
// each matching fact with the recording it is linked to (or its own file
// when none covers it).
func (s *Service) Find(ctx context.Context, c Caller, o FindOptions) ([]Found, error) {
	p, err := s.FindPage(ctx, c, o)
	return p.Items, err
}

// FindPage is Find with the total: the page of the results Offset and
// Limit ask for, in a stable order (at a console catalog.FindPage's; on a
// dock host by recording time), and how many there are in all. The access
// is recorded, with the total and the page, before anything is returned.
func (s *Service) FindPage(ctx context.Context, c Caller, o FindOptions) (FoundPage, error) {
	if o.Offset < 0 || o.Limit < 0 {
		return FoundPage{}, invalidf("find: offset %d, limit %d: want 0 or more", o.Offset, o.Limit)
	}
	if o.Fuzzy && o.Plate == "" {
		return FoundPage{}, invalidf("--fuzzy needs --plate")
	}
	var cur *findCursor
	if o.After != "" {
		if o.Offset > 0 {
			return FoundPage{}, invalidf("--after and --offset: a page is asked for by one of them")
		}
		if o.Plate != "" || o.Near != nil {
			return FoundPage{}, invalidf("--after: pages of a search by plate or place are asked for by --offset")
		}
		fc, err := decodeCursor(s.findCursorKey(), "the next page's cursor (--after)", o.After, o)
		if err != nil {
			return FoundPage{}, err
		}
		o.Offset, cur = fc.offset, &fc
	}
	if o.Plate != "" || o.Near != nil {
		return s.findFacts(ctx, c, o)
	}
	if s.catalog != nil {
		return s.fleetFind(ctx, c, o, cur)
	}
	if o.Host != "" && o.Host != s.config.HostID {
		return FoundPage{}, invalidf("--host %s: this host is %s; other hosts' items are found at a console", o.Host, s.config.HostID)
	}
	items := []custody.Item{}
	if err := s.ledger.Items(ctx, o.Filter, func(it custody.Item) error {
		items = append(items, it)
		return nil
	}); err != nil {
		return FoundPage{}, fmt.Errorf("find: %w", err)
	}
	if err := s.RecordAccess(ctx, c, "find", o.Reason, nil, o.accessDetails(len(items), false)); err != nil {
		return FoundPage{}, err
	}
	page := found(cut(items, o.Offset, o.Limit))
	p := FoundPage{Items: page, Total: len(items), Offset: min(o.Offset, len(items))}
	if o.Limit > 0 && p.Offset+len(page) < len(items) {
		// A dock host reads its ledger whole: the cursor says how many
		// come before the next page.
		p.Next = findCursor{offset: p.Offset + len(page), total: len(items)}.encode(s.findCursorKey(), o)
	}
	return p, nil
}

// accessDetails are what a search's ACCESSED record says: what was asked,
// how many results there were in all and, when a page was asked for, which
// page was shown. host: at a console, the --host asked (also when empty).
func (o FindOptions) accessDetails(results int, host bool) map[string]string {
	d := map[string]string{"results": strconv.Itoa(results)}
	if host {
		d["host"] = o.Host
	}
	if o.Offset > 0 || o.Limit > 0 {
		d["offset"] = strconv.Itoa(o.Offset)
		d["limit"] = strconv.Itoa(o.Limit)
	}
	for k, v := range o.Asked {
		d[k] = v
	}
	return d
}

// cut is the page of all that offset and limit (0: no limit) ask for.
func cut[T any](all []T, offset, limit int) []T {
	lo := min(offset, len(all))
	hi := len(all)
	if limit > 0 {
		hi = min(lo+limit, hi)
	}
	return all[lo:hi]
}

func found(items []custody.Item) []Found {
	out := make([]Found, len(items))
	for i, it := range items {
		out[i] = Found{Item: it}
	}
	return out
}

// Custody returns the ordered custody events of one item. The viewing is
// itself custody, so it is recorded first and appears in what is returned.
func (s *Service) Custody(ctx context.Context, c Caller, id, reason string) ([]custody.Event, error) {
	if s.catalog != nil {
		return s.fleetCustody(ctx, c, id, reason)
	}
	it, err := s.item(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.RecordAccess(ctx, c, "custody", reason, &it, nil); err != nil {
		return nil, err
	}
	evs, err := s.ledger.Custody(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("custody of %s: %w", id, err)
	}
	return evs, nil
}

// needReason refuses an access or change without a reason: empty or only
// whitespace says nothing a court could read.
func needReason(reason string) error {
	if strings.TrimSpace(reason) == "" {
		return invalidf("--reason is required")
	}
	return nil
}

// custodyText refuses a value the ledger cannot hold as is (a case name that
// is also a list separator, a control character).
func custodyText(flag, v string) error {
	if len(v) > 256 || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ',' }) {
		return invalidf("%s %q: at most 256 characters, no control characters or commas", flag, v)
	}
	return nil
}

// AccessFilter selects access events.
type AccessFilter struct {
	// Actor selects the accesses of one person: the OS user who acted, or
	// the name they acted on behalf of (on_behalf_of). "" any.
	Actor        string
	Since, Until time.Time // zero: unbounded; Until is exclusive
	Reason       string
}

// Accesses lists the ACCESSED events the filter selects, in ledger order,
// also those that belong to no item (searches, verifies, listings like this
// one): "who searched for officer-4711 last week" is answerable. The
// listing is itself recorded before it is returned.
func (s *Service) Accesses(ctx context.Context, c Caller, f AccessFilter) ([]custody.Event, error) {
	evs := []custody.Event{}
	if err := s.ledger.Events(ctx, 1, func(ev custody.Event) error {
		switch {
		case ev.Type != custody.Accessed,
			f.Actor != "" && ev.Actor != f.Actor && ev.Details["on_behalf_of"] != f.Actor,
			!f.Since.IsZero() && ev.At.Before(f.Since),
			!f.Until.IsZero() && !ev.At.Before(f.Until):
			return nil
		}
		evs = append(evs, ev)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list accesses: %w", err)
	}
	d := map[string]string{"actor": f.Actor, "results": strconv.Itoa(len(evs))}
	if !f.Since.IsZero() {
		d["since"] = f.Since.UTC().Format(time.RFC3339)
	}
	if !f.Until.IsZero() {
		d["until"] = f.Until.UTC().Format(time.RFC3339)
	}
	if err := s.RecordAccess(ctx, c, "access", f.Reason, nil, d); err != nil {
		return nil, err
	}
	return evs, nil
}
