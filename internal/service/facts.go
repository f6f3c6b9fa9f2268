package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/facts"
	"github.com/evidenced/evidenced/internal/sidecar"
)

// Hit is a sidecar fact that answers a search (a plate read, a GPS fix),
// with the file it came from and the recording it is linked to.
type Hit = facts.Hit

// ReindexReport is what a rebuild of the facts index did.
type ReindexReport = facts.RebuildReport

// Found is one search result: a recording (or, when no recording covers a
// fact, the sidecar file itself) and, for a search by plate or place, the
// fact that matched. Its JSON is the item's fields plus "match".
type Found struct {
	custody.Item
	Match *Hit `json:"match,omitempty"`
}

// NearOptions are a search by place: Lat, Lon in decimal degrees and Radius
// in metres; the window is FindOptions.Filter's Since and Until.
type NearOptions struct {
	Lat, Lon, Radius float64
}

// openFacts opens the facts index and its parse step on a dock host. A
// command that must create nothing opens an index only if there is one.
func (s *Service) openFacts(mustExist bool) error {
	if s.config.IsConsole() {
		return nil
	}
	path := s.config.FactsPath()
	if mustExist {
		if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
			return nil
		}
	}
	x, err := facts.Open(path)
	if err != nil {
		return err
	}
	s.facts = x
	s.parser = &facts.Step{
		Index: x, Ledger: s.ledger, Actor: s.DaemonActor(), Log: s.log,
		Profile: func(kind string) sidecar.Profile { return s.config.SidecarProfile(kind) },
		Open:    func(_ context.Context, it custody.Item) (io.ReadCloser, error) { return s.vault.Open(it.ID) },
	}
	if s.store != nil {
		s.parser.Remote = func(ctx context.Context, it custody.Item) (io.ReadCloser, error) {
			rc, _, err := s.OpenFootage(ctx, it)
			return rc, err
		}
	}
	return nil
}

// parseDocked parses a dock's sidecars now (a one-shot ingest); the daemon
// queues them for its parse loop instead. A failure to parse is on record
// (PARSE_FAILED) and never fails the ingest; only a ledger that cannot
// record is reported, as a warning.
func (s *Service) parseDocked(ctx context.Context, ids []string) (parsed, failed int, warn error) {
	if s.parser == nil || len(ids) == 0 {
		return 0, 0, nil
	}
	outs, err := s.parser.Items(ctx, ids)
	for _, o := range outs {
		switch {
		case o.Skipped:
		case o.Failed != "":
			failed++
		default:
			parsed++
		}
	}
	return parsed, failed, err
}

// Reindex rebuilds the facts index from the held copies of every item (the
// vault's, or the object store's once released) and records REINDEXED.
func (s *Service) Reindex(ctx context.Context, c Caller) (ReindexReport, error) {
	if s.catalog != nil {
		return ReindexReport{}, invalidf("reindex: a console keeps no sidecar index yet; run it on a dock host")
	}
	if s.facts == nil {
		if err := s.openFacts(false); err != nil {
			return ReindexReport{}, err
		}
	}
	rep, err := s.parser.Rebuild(ctx, c.Actor, c.details(map[string]string{}))
	if err != nil {
		return rep, fmt.Errorf("reindex: %w", err)
	}
	return rep, nil
}

// findFacts is Find by plate or by place.
func (s *Service) findFacts(ctx context.Context, c Caller, o FindOptions) ([]Found, error) {
	if s.catalog != nil {
		return nil, invalidf("find --plate/--near: not available at a console yet; search on the dock host that ingested the sidecars")
	}
	var hits []Hit
	var err error
	switch {
	case o.Plate != "" && o.Near != nil:
		return nil, invalidf("find: --plate and --near are two searches; give one")
	case o.Plate != "":
		p, perr := sidecar.NormalizePlate(o.Plate)
		if perr != nil {
			return nil, invalidf("--plate %q: not a plate (%s): letters and digits, with spaces, dashes or dots between", o.Plate, perr.(*sidecar.PlateError).Reason)
		}
		if s.facts != nil {
			hits, err = s.facts.FindPlate(ctx, facts.PlateQuery{Plate: p, Fuzzy: o.Fuzzy, Since: o.Filter.Since, Until: o.Filter.Until})
		}
	default:
		n := sidecar.Near{Lat: o.Near.Lat, Lon: o.Near.Lon, Radius: o.Near.Radius, Since: o.Filter.Since, Until: o.Filter.Until}
		if n.Since.IsZero() {
			n.Since = time.Unix(0, math.MinInt64)
		}
		if n.Until.IsZero() {
			n.Until = time.Unix(0, math.MaxInt64)
		}
		if verr := n.Validate(); verr != nil {
			return nil, invalidf("find --near: %v", verr)
		}
		if s.facts != nil {
			hits, err = s.facts.FindNear(ctx, n, 0)
			if err != nil && ctx.Err() == nil {
				return nil, invalidf("find --near: %v", err)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("find: %w", err)
	}
	// The item filters (camera, assignee) apply to the recording found;
	// the time window was the facts'.
	f := o.Filter
	f.Since, f.Until = time.Time{}, time.Time{}
	out := []Found{}
	for i := range hits {
		h := hits[i]
		id := h.Recording
		if id == "" {
			id = h.Source.Item
		}
		it, err := s.ledger.Item(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("find: item %s of a fact: %w", id, err)
		}
		if f.Matches(it) {
			out = append(out, Found{Item: it, Match: &h})
		}
	}
	d := map[string]string{"results": strconv.Itoa(len(out))}
	for k, v := range o.Asked {
		d[k] = v
	}
	if err := s.RecordAccess(ctx, c, "find", o.Reason, nil, d); err != nil {
		return nil, err
	}
	return out, nil
}

// Hit kinds, for printing.
const (
	HitPlateRead = facts.HitPlateRead
	HitGPSFix    = facts.HitGPSFix
)
