package service

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/custody"
)

// Scrub records, in the console's ledger: SCRUBBED for an object re-read
// that held the recorded bytes; SCRUB_FAILED (an alert naming the object)
// for one that did not, or is gone.
const (
	Scrubbed    custody.EventType = "SCRUBBED"
	ScrubFailed custody.EventType = "SCRUB_FAILED"
)

// scrubEvery is how often a console daemon re-reads one slice.
const scrubEvery = 24 * time.Hour

// ScrubOptions tune one scrub.
type ScrubOptions struct {
	// All re-reads every stored object now instead of one day's slice.
	All bool
}

// ScrubFailure is one object that did not hold what its host recorded.
type ScrubFailure struct {
	Host      string `json:"host"`
	Item      string `json:"item"`
	Object    string `json:"object"`
	VersionID string `json:"version_id"`
	What      string `json:"what"`
}

// ScrubReport is what one scrub did.
type ScrubReport struct {
	// Total is how many stored objects the fleet's records name; Checked
	// how many this scrub re-read.
	Total, Checked int
	Failures       []ScrubFailure
	// Withheld are the hosts this scrub's audit of the anchored histories
	// found a problem in (each also an alert record): nothing of them is
	// served any more.
	Withheld []WithheldHost `json:"withheld,omitempty"`
}

// WithheldHost is a host the audit withheld, and the first problem.
type WithheldHost struct {
	Host    string `json:"host"`
	Problem string `json:"problem"`
}

// OK reports whether every object re-read held its recorded bytes and the
// audit found nothing.
func (r ScrubReport) OK() bool { return len(r.Failures) == 0 && len(r.Withheld) == 0 }

// Scrub is the console's daily pass over what it serves. First it audits
// every trusted host's anchored history against itself (catalog.Audit:
// what the incremental reading cannot see behind it); a host with a
// problem is withheld and recorded as an alert. Then it re-reads one
// day's slice of the stored objects the trusted hosts recorded (all of
// them once per console.scrub.cycle), in index order after the last one
// its ledger records scrubbing, and records each result. A store that
// cannot be read stops the scrub with an error; what was re-read by then
// is recorded.
func (s *Service) Scrub(ctx context.Context, c Caller, o ScrubOptions) (ScrubReport, error) {
	var rep ScrubReport
	if err := s.freshCatalog(ctx); err != nil {
		return rep, err
	}
	breaks, err := s.catalog.Audit(ctx)
	s.recordBreaks(ctx, catalog.Progress{NewlyBroken: breaks})
	for _, b := range breaks {
		rep.Withheld = append(rep.Withheld, WithheldHost{Host: b.Host, Problem: b.Problems[0].String()})
	}
	if err != nil {
		return rep, s.storeErr(err)
	}
	cur, _, err := s.lastScrub(ctx)
	if err != nil {
		return rep, err
	}
	_, total, err := s.catalog.ScrubSlice(ctx, cur, 0)
	if err != nil {
		return rep, err
	}
	n := catalog.SliceSize(total, s.config.Console.Scrub.Cycle.Duration)
	if o.All {
		n = total
	}
	items, total, err := s.catalog.ScrubSlice(ctx, cur, n)
	if err != nil {
		return rep, err
	}
	rep.Total = total
	for _, it := range items {
		r, err := catalog.RehashItem(ctx, s.store, it)
		if err != nil {
			return rep, s.storeErr(err)
		}
		d := map[string]string{"host": it.Host, "key": it.ObjectKey, "version_id": it.VersionID,
			"size": strconv.FormatInt(r.Size, 10), "read_sha256": r.SHA256}
		ev := custody.Event{Type: Scrubbed, Actor: c.Actor, Item: it.ID, Camera: it.Camera, SHA256: it.SHA256, Details: d}
		if !r.OK {
			f := ScrubFailure{Host: it.Host, Item: it.ID, Object: it.ObjectKey, VersionID: it.VersionID}
			if r.Missing {
				f.What = "the recorded version is not in the store"
			} else {
				f.What = fmt.Sprintf("holds %d bytes with SHA-256 %s; %s recorded %d bytes with %s", r.Size, r.SHA256, it.Host, it.Size, it.SHA256)
			}
			rep.Failures = append(rep.Failures, f)
			ev.Type, d["problem"] = ScrubFailed, f.What
			s.log.Error("scrub: a stored object does not hold what its host recorded", "host", it.Host, "item", it.ID,
				"object", it.ObjectKey, "version_id", it.VersionID, "problem", f.What)
		}
		if _, err := s.ledger.Append(context.WithoutCancel(ctx), ev, nil); err != nil {
			return rep, fmt.Errorf("record the scrub of %s: %w", it.ID, err)
		}
		rep.Checked++
	}
	return rep, nil
}

// lastScrub finds, in the console's ledger, the last object scrubbed and
// when: the ledger, not the index, keeps the scrub's place, so a rebuilt
// index does not restart the cycle.
func (s *Service) lastScrub(ctx context.Context) (catalog.Cursor, time.Time, error) {
	var cur catalog.Cursor
	var at time.Time
	err := s.ledger.Events(ctx, 1, func(ev custody.Event) error {
		if ev.Type == Scrubbed || ev.Type == ScrubFailed {
			cur, at = catalog.Cursor{Host: ev.Details["host"], ID: ev.Item}, ev.At
		}
		return nil
	})
	if err != nil {
		return cur, at, fmt.Errorf("find the last scrub in the ledger: %w", err)
	}
	return cur, at, nil
}

// runScrub re-reads one slice a day inside the console daemon: due a day
// after the last scrub the ledger records (at once when there is none),
// looked at every hour.
func (s *Service) runScrub(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-s.synced:
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if _, at, err := s.lastScrub(ctx); err == nil && time.Since(at) >= scrubEvery {
			rep, err := s.Scrub(ctx, Caller{Actor: s.DaemonActor()}, ScrubOptions{})
			if err != nil && ctx.Err() == nil {
				s.log.Warn("scrub stopped; it resumes at the next", "err", err)
			} else if rep.Checked > 0 {
				s.log.Info("scrubbed", "objects", rep.Checked, "of", rep.Total, "failures", len(rep.Failures))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
