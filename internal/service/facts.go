package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/evidenced/evidenced/internal/config"
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

// openFacts opens the facts index and its parse step. On a dock host the
// held copies are the vault's (the store's once released, for a rebuild),
// and a command that must create nothing opens an index only if there is
// one. At a console (after openConsole) the held copies are the objects in
// the store and the items the catalog's; its index is built like its
// catalog, by whatever command needs it.
func (s *Service) openFacts(mustExist bool) error {
	path := s.config.FactsPath()
	if s.catalog != nil {
		x, err := facts.Open(path)
		if err != nil {
			return err
		}
		s.facts = x
		s.parser = &facts.Step{
			Index: x, Ledger: consoleLedger{s}, Actor: s.DaemonActor(), Log: s.log, Open: s.openStored,
			Profile:  func(kind string) sidecar.Profile { return s.config.SidecarProfile(kind) },
			RulesKey: s.sidecarRulesKey,
		}
		return nil
	}
	if s.config.IsConsole() {
		return nil
	}
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

// sidecarRulesKey names the sidecar rules in force for every camera kind,
// so that the console's catch-up looks at every item again after a config
// that changed them (facts.Step.RulesKey).
func (s *Service) sidecarRulesKey() string {
	return fmt.Sprintf("%v|%v", s.config.SidecarProfile(config.KindBody), s.config.SidecarProfile(config.KindVehicle))
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
		// At a console: from the objects in the store of every item the
		// catalog serves, the catalog brought up to date first.
		if err := s.freshCatalog(ctx); err != nil {
			return ReindexReport{}, err
		}
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

// CheckPlate says whether p can be searched for as a plate (Find's
// Plate), and why not: front ends check what was typed before they ask, so
// a bad plate is refused as a bad parameter, with the same words the
// command line uses.
func CheckPlate(p string) error {
	_, err := normalizePlate(p)
	return err
}

func normalizePlate(p string) (sidecar.Plate, error) {
	n, err := sidecar.NormalizePlate(p)
	if err != nil {
		return "", fmt.Errorf("plate %q: not a plate (%s): letters and digits, with spaces, dashes or dots between", p, err.(*sidecar.PlateError).Reason)
	}
	return n, nil
}

// findFacts is Find by plate or by place. At a console the facts are the
// console's own index of the sidecars the trusted dock hosts uploaded
// (brought up to date first when no console daemon keeps it so), and a
// hit is served only when a trusted host serves both the file it came
// from and the recording it names.
func (s *Service) findFacts(ctx context.Context, c Caller, o FindOptions) (FoundPage, error) {
	var search func() ([]Hit, error)
	switch {
	case o.Plate != "" && o.Near != nil:
		return FoundPage{}, invalidf("find: --plate and --near are two searches; give one")
	case o.Plate != "":
		p, perr := normalizePlate(o.Plate)
		if perr != nil {
			return FoundPage{}, invalidf("--%v", perr)
		}
		search = func() ([]Hit, error) {
			return s.facts.FindPlate(ctx, facts.PlateQuery{Plate: p, Fuzzy: o.Fuzzy, Since: o.Filter.Since, Until: o.Filter.Until})
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
			return FoundPage{}, invalidf("find --near: %v", verr)
		}
		search = func() ([]Hit, error) {
			hits, err := s.facts.FindNear(ctx, n, 0)
			if err != nil && ctx.Err() == nil {
				return nil, invalidf("find --near: %v", err)
			}
			return hits, err
		}
	}
	if s.catalog != nil {
		if err := s.consoleFacts(ctx); err != nil {
			return FoundPage{}, err
		}
	}
	var hits []Hit
	if s.facts != nil {
		var err error
		if hits, err = search(); err != nil {
			var ke *kindError
			if errors.As(err, &ke) {
				return FoundPage{}, err
			}
			return FoundPage{}, fmt.Errorf("find: %w", err)
		}
	}
	// The item filters (camera, assignee; at a console the host) apply to
	// the recording found; the time window was the facts'.
	f := o.Filter
	f.Since, f.Until = time.Time{}, time.Time{}
	out := []Found{}
	for i := range hits {
		h := hits[i]
		id := h.Recording
		if id == "" {
			id = h.Source.Item
		}
		it, ok, err := s.servedItem(ctx, id)
		if err != nil {
			return FoundPage{}, fmt.Errorf("find: item %s of a fact: %w", id, err)
		}
		if ok && id != h.Source.Item {
			_, ok, err = s.servedItem(ctx, h.Source.Item)
			if err != nil {
				return FoundPage{}, fmt.Errorf("find: the file %s of a fact: %w", h.Source.Item, err)
			}
		}
		if ok && f.Matches(it) && (o.Host == "" || s.catalog == nil || it.Host == o.Host) {
			out = append(out, Found{Item: it, Match: &h})
		}
	}
	if err := s.RecordAccess(ctx, c, "find", o.Reason, nil, o.accessDetails(len(out), s.catalog != nil)); err != nil {
		return FoundPage{}, err
	}
	return FoundPage{Items: cut(out, o.Offset, o.Limit), Total: len(out)}, nil
}

// Hit kinds, for printing.
const (
	HitPlateRead = facts.HitPlateRead
	HitGPSFix    = facts.HitGPSFix
)
