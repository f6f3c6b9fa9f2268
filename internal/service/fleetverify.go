package service

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/custody"
)

// verifyFleet is verify at a console: the console's own ledger first (its
// chain, its anchors with remote, its witness), then the fleet it serves.
// Every trusted host whose anchored history broke or was withheld is a
// problem naming the host (what comes after the break is not served, so it
// cannot be vouched for); a host anchoring without being listed is a
// notice. With remote the audit re-checks every cleanly followed host's
// anchored history against itself (a host it withholds is recorded as an
// alert, as by the scrub), and every stored recording the console serves
// is re-read by its recorded version and hashed, and its key's current
// version must be that version, as a dock host's verify --remote checks.
// Retention is not re-checked here: what a dock host set and what the
// console extended are checked by the dock host's verify --remote and
// shown by custody.
func (s *Service) verifyFleet(ctx context.Context, remote bool) (rep VerifyReport) {
	rep = s.verify(ctx, remote)
	add := func(p VerifyProblem) { rep.Problems = append(rep.Problems, p) }
	defer func() { rep.OK = len(rep.Problems) == 0 }()
	storeDown := s.storeDownFor(&rep)
	if err := s.freshCatalog(ctx); err != nil && !storeDown(err) {
		add(VerifyProblem{Kind: "catalog", What: err.Error()})
	}
	if remote && rep.StoreUnchecked == "" {
		// Every checkpoint read again (the daily audit reads only what
		// is new): a custodian's verify is the whole check.
		breaks, err := s.catalog.AuditAll(ctx)
		s.recordBreaks(ctx, catalog.Progress{NewlyBroken: breaks})
		if err != nil && !storeDown(err) {
			// An audit that could not be made (a read that may pass):
			// what it found is in the hosts' flags (below); the rest is
			// not checked, which exit 3 must not say was found wrong.
			why := "the dock hosts' (audit): " + err.Error()
			if rep.AnchorsUnchecked != "" {
				why = rep.AnchorsUnchecked + "; " + why
			}
			rep.AnchorsUnchecked = why
		}
	}
	f, err := s.catalog.Fleet(ctx, time.Now(), catalog.FleetOptions{})
	if err != nil {
		add(VerifyProblem{Kind: "catalog", What: err.Error()})
		return rep
	}
	for _, h := range f.Hosts {
		switch {
		case !h.Trusted:
			rep.Notices = append(rep.Notices, custody.Notice{What: fmt.Sprintf("host %s anchors in the store but is not listed in console.hosts: nothing of it was checked or is served", h.ID)})
		case h.Broken || h.Withheld:
			add(VerifyProblem{Kind: "host", Host: h.ID, What: strings.Join(h.Flags, "; ")})
		}
	}
	items, err := s.catalog.Find(ctx, catalog.Filter{})
	if err != nil {
		add(VerifyProblem{Kind: "catalog", What: err.Error()})
		return rep
	}
	rep.Items += len(items)
	if !remote {
		return rep
	}
	for _, it := range items {
		if ctx.Err() != nil {
			add(VerifyProblem{Kind: "catalog", What: "verification interrupted: " + ctx.Err().Error()})
			break
		}
		if it.ObjectKey == "" || it.VersionID == "" {
			rep.Pending++ // not uploaded yet, as far as its host's anchored records say
			continue
		}
		if rep.StoreUnchecked != "" {
			rep.ObjectsUnchecked++
			continue
		}
		obj := it.ObjectKey + "@" + it.VersionID
		r, err := catalog.RehashItem(ctx, s.store, it)
		if storeDown(err) {
			rep.ObjectsUnchecked++
			continue
		}
		failed := true
		switch {
		case err != nil:
			add(VerifyProblem{Kind: "object", Host: it.Host, Item: it.ID, Object: obj, What: err.Error()})
		case r.Missing:
			add(VerifyProblem{Kind: "object", Host: it.Host, Item: it.ID, Object: obj, What: "the recorded version " + it.VersionID + " is gone from the store"})
		case !r.OK:
			add(VerifyProblem{Kind: "object", Host: it.Host, Item: it.ID, Object: obj,
				What: fmt.Sprintf("holds %d bytes with SHA-256 %s; %s recorded %d bytes with %s", r.Size, r.SHA256, it.Host, it.Size, it.SHA256)})
		default:
			failed = false
		}
		cur, cerr := s.currentVersionProblem(ctx, it)
		if storeDown(cerr) {
			if !failed {
				rep.ObjectsUnchecked++
				continue
			}
			cur = "" // already found wrong, whatever this would have said
		}
		if cur != "" {
			add(VerifyProblem{Kind: "object", Host: it.Host, Item: it.ID, Object: it.ObjectKey, What: cur})
			failed = true
		}
		rep.Objects++
		if failed {
			rep.ObjectsFailed++
		}
	}
	return rep
}
