package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/export"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tlog"
)

// fleetExport is Export at a console: a package (export.FleetFormat) of
// items several dock hosts ingested. Each host's records of the items are
// proven against the checkpoint the console followed, as that host signed
// and anchored it; the console's own records of the items (its accesses,
// holds and class changes, and this export's access records, anchored
// before anything leaves) are proven against the console's own anchored
// checkpoint. The footage is not carried: `get` at the console retrieves
// it and checks the SHA-256 the package proves. The facts linked to the
// recordings are (exportFacts, as on a dock host): the plate reads and
// GPS fixes, and the sidecar files and crop images they come from, read
// from the store by the version their host recorded, each an item of the
// package with its own proven custody.
func (s *Service) fleetExport(ctx context.Context, c Caller, o ExportOptions, ids []string, w io.Writer) (ExportSummary, error) {
	if o.Footage {
		return ExportSummary{}, invalidf("--footage: a console's package carries no footage; retrieve each recording with `evidenced get`, which checks the SHA-256 the package proves")
	}
	if err := s.freshCatalog(ctx); err != nil {
		return ExportSummary{}, err
	}
	items := make([]custody.Item, 0, len(ids))
	for _, id := range ids {
		got, err := s.catalog.Item(ctx, id)
		if err != nil {
			return ExportSummary{}, err
		}
		if len(got) == 0 {
			return ExportSummary{}, &kindError{kind: ErrNotFound, err: fmt.Errorf("item %q: no trusted host's anchored records name it", id)}
		}
		items = append(items, got[0])
	}
	// The console's facts index up to what the catalog serves, then the
	// facts of the recordings, as a dock host's export gathers them.
	if s.facts != nil {
		if err := s.consoleFacts(ctx); err != nil {
			return ExportSummary{}, err
		}
	}
	plan, err := s.exportFacts(ctx, items)
	if err != nil {
		return ExportSummary{}, err
	}
	var carried []custody.Item
	if plan != nil {
		for _, id := range plan.Items {
			it, err := consoleLedger{s}.Item(ctx, id)
			if err != nil {
				return ExportSummary{}, err
			}
			carried = append(carried, it)
			if !slices.ContainsFunc(items, func(x custody.Item) bool { return x.ID == id }) {
				items = append(items, it)
			}
		}
	}
	details := map[string]string{"out": o.Out, "footage": "false", "items": strconv.Itoa(len(items))}
	if plan != nil {
		details["facts"] = strconv.Itoa(len(plan.Facts))
	}
	for i := range items {
		d := map[string]string{"host": items[i].Host}
		for k, v := range details {
			d[k] = v
		}
		if err := s.RecordAccess(ctx, c, "export", o.Reason, &items[i], d); err != nil {
			return ExportSummary{}, err
		}
	}
	sum, err := s.buildFleetExport(ctx, c, o, items, plan, carried, w)
	if err != nil {
		for i := range items {
			err = s.RecordFailedAccess(ctx, c, "export", o.Reason, &items[i], map[string]string{"host": items[i].Host, "out": o.Out}, err)
		}
	}
	return sum, err
}

func (s *Service) buildFleetExport(ctx context.Context, c Caller, o ExportOptions, items []custody.Item, plan *export.FactPlan, carried []custody.Item, w io.Writer) (ExportSummary, error) {
	// The records of the export are off the console before anything
	// leaves; the package proves them against that anchor.
	if err := s.anchorBeforeRelease(ctx, o.InDaemon); err != nil {
		return ExportSummary{}, fmt.Errorf("the export is recorded but could not be anchored off the console, so nothing is released: %w", s.storeErr(err))
	}
	self := s.config.HostID
	want := map[string][]uint64{} // host → seqs
	fitems := make([]export.FleetItem, 0, len(items))
	for _, it := range items {
		evs, err := s.mergedCustody(ctx, it.ID)
		if err != nil {
			return ExportSummary{}, err
		}
		fi := export.FleetItem{ID: it.ID, Host: it.Host, SHA256: it.SHA256, Size: it.Size, ObjectKey: it.ObjectKey, VersionID: it.VersionID}
		for _, ev := range evs {
			fi.Records = append(fi.Records, export.RecordRef{Host: ev.Host, Seq: ev.Seq})
			if !slices.Contains(want[ev.Host], ev.Seq) {
				want[ev.Host] = append(want[ev.Host], ev.Seq)
			}
		}
		fitems = append(fitems, fi)
	}
	hosts := make([]string, 0, len(want))
	for h := range want {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	fo := export.FleetOptions{Console: self, ExportedBy: c.Actor, Reason: o.Reason, Tool: "evidenced " + Version, Now: time.Now(), Items: fitems,
		Facts: plan, Carried: carried, Files: storedFrom{s}}
	for _, h := range hosts {
		var fh export.FleetHost
		var err error
		if h == self {
			fh, err = s.ownProven(ctx, want[h])
		} else {
			fh, err = s.dockProven(ctx, h, want[h])
		}
		if err != nil {
			return ExportSummary{}, err
		}
		fo.Hosts = append(fo.Hosts, fh)
	}
	ts := export.NewTarSink(w, fo.Now)
	sum, err := export.BuildFleet(ctx, ts, fo)
	if errors.Is(err, export.ErrIntegrity) {
		return sum, &kindError{kind: ErrIntegrity, err: err}
	}
	if err != nil {
		return sum, s.storeErr(err)
	}
	if err := ts.Close(); err != nil {
		return sum, fmt.Errorf("export: %w", err)
	}
	return sum, nil
}

// dockProven is a dock host's part of a console's package: the records,
// proven in the checkpoint the console followed, and that checkpoint as
// the host anchored it.
func (s *Service) dockProven(ctx context.Context, host string, seqs []uint64) (export.FleetHost, error) {
	p, err := s.catalog.Prove(ctx, host, seqs)
	if err != nil {
		return export.FleetHost{}, err
	}
	a, err := latestAnchored(ctx, s.anchorStore, host, p.Size)
	if err != nil {
		return export.FleetHost{}, s.storeErr(err)
	}
	return export.FleetHost{ID: host, Note: a.Note, Object: a.Object, Keys: p.Keys, Records: p.Records, Proofs: p.Proofs}, nil
}

// ownProven is the console's own part: its records about the items,
// proven in its newest anchored checkpoint (which anchorBeforeRelease
// made cover them).
func (s *Service) ownProven(ctx context.Context, seqs []uint64) (export.FleetHost, error) {
	self := s.config.HostID
	slices.Sort(seqs)
	a, err := latestAnchored(ctx, s.anchorStore, self, ^uint64(0))
	if err != nil {
		return export.FleetHost{}, s.storeErr(err)
	}
	if last := seqs[len(seqs)-1]; a.Size < last {
		return export.FleetHost{}, fmt.Errorf("the console's newest anchored checkpoint (size %d) does not cover its record %d yet", a.Size, last)
	}
	fh := export.FleetHost{ID: self, Note: a.Note, Object: a.Object, Records: map[uint64][]byte{}, Proofs: map[uint64][]tlog.Hash{}}
	periods, err := s.ledger.Keys(ctx)
	if err != nil {
		return fh, fmt.Errorf("the console's keys: %w", err)
	}
	for _, k := range periods {
		pub, err := signing.ParsePublicPEM([]byte(k.PublicPEM))
		if err != nil {
			return fh, fmt.Errorf("the console's key %s: %w", k.KeyID, err)
		}
		fh.Keys = append(fh.Keys, pub)
	}
	want := map[uint64]bool{}
	for _, q := range seqs {
		want[q] = true
	}
	errDone := errors.New("done")
	err = s.ledger.Records(ctx, seqs[0], func(seq uint64, rec []byte) error {
		if seq > seqs[len(seqs)-1] {
			return errDone
		}
		if want[seq] {
			fh.Records[seq] = rec
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDone) {
		return fh, fmt.Errorf("the console's records: %w", err)
	}
	for _, q := range seqs {
		p, err := s.ledger.InclusionProof(ctx, q, a.Size)
		if err != nil {
			return fh, fmt.Errorf("proof of the console's record %d: %w", q, err)
		}
		fh.Proofs[q] = p.Hashes
	}
	return fh, nil
}

// latestAnchored is host's newest anchored checkpoint of at most size
// maxSize, which must exist.
func latestAnchored(ctx context.Context, st anchor.Store, host string, maxSize uint64) (anchor.Anchored, error) {
	a, found, err := anchor.Latest(ctx, st, host, maxSize)
	if err != nil {
		return a, err
	}
	if !found || (maxSize != ^uint64(0) && a.Size != maxSize) {
		return a, fmt.Errorf("no checkpoint of %s of size %d is anchored in the store", host, maxSize)
	}
	return a, nil
}
