package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/export"
	"github.com/evidenced/evidenced/internal/facts"
	"github.com/evidenced/evidenced/internal/sidecar"
	"github.com/evidenced/evidenced/internal/signing"
)

// ExportOptions describe one court export package.
type ExportOptions struct {
	IDs     []string
	Reason  string
	Out     string // where the caller places the package (recorded)
	Footage bool   // include the recordings
	// InDaemon: the accesses are anchored through the daemon's anchor loop.
	InDaemon bool
}

// ExportSummary counts what went into a package.
type ExportSummary = export.Summary

// ExportCheck is what the standalone verifier found in a package.
type ExportCheck = export.Result

// Export records one ACCESSED event per item, anchors them off the host,
// then streams the package as a tar archive to w, which the caller extracts
// (ExtractExport) where it wants the package. The daemon so never writes outside its state directory, and
// the package's files belong to whoever asked for it.
func (s *Service) Export(ctx context.Context, c Caller, o ExportOptions, w io.Writer) (ExportSummary, error) {
	if err := needReason(o.Reason); err != nil {
		return ExportSummary{}, err
	}
	var ids []string
	for _, id := range o.IDs {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if s.catalog != nil {
		return s.fleetExport(ctx, c, o, ids, w)
	}
	items := make([]custody.Item, 0, len(ids))
	for _, id := range ids {
		it, err := s.item(ctx, id)
		if err != nil {
			return ExportSummary{}, err
		}
		items = append(items, it)
	}
	// The plate reads and GPS fixes linked to the recordings come along,
	// with the files they were read from: their export is an access too.
	plan, err := s.exportFacts(ctx, items)
	if err != nil {
		return ExportSummary{}, err
	}
	if plan != nil {
		for _, id := range plan.Items {
			if slices.Contains(ids, id) {
				continue
			}
			it, err := s.item(ctx, id)
			if err != nil {
				return ExportSummary{}, err
			}
			items = append(items, it)
		}
	}
	// Every item's export is custody, recorded before anything leaves, so
	// the package carries the record of its own making.
	details := map[string]string{"out": o.Out, "footage": strconv.FormatBool(o.Footage), "items": strconv.Itoa(len(items))}
	if plan != nil {
		details["facts"] = strconv.Itoa(len(plan.Facts))
	}
	for i := range items {
		if err := s.RecordAccess(ctx, c, "export", o.Reason, &items[i], details); err != nil {
			return ExportSummary{}, err
		}
	}
	// The records of the export are off the host before anything leaves;
	// if they cannot be, nothing is released.
	var sum ExportSummary
	err = s.anchorBeforeRelease(ctx, o.InDaemon)
	if err != nil {
		err = fmt.Errorf("the export is recorded but could not be anchored off the host, so nothing is released: %w", s.storeErr(err))
	} else {
		sum, err = s.buildExport(ctx, c, o, ids, plan, w)
	}
	if err != nil {
		// The package did not leave: each item's record says so.
		for i := range items {
			err = s.RecordFailedAccess(ctx, c, "export", o.Reason, &items[i], details, err)
		}
	}
	return sum, err
}

// buildExport writes the package of ids to w.
func (s *Service) buildExport(ctx context.Context, c Caller, o ExportOptions, ids []string, plan *export.FactPlan, w io.Writer) (ExportSummary, error) {
	opts := export.Options{
		IDs: ids, Footage: o.Footage, ExportedBy: c.Actor, Reason: o.Reason, Tool: "evidenced " + Version, Facts: plan,
	}
	// The checkpoints anchored off the host go into the package, with the
	// TSA's CA the host trusts to check their time-stamps.
	if s.anchorStore != nil {
		opts.Anchors = anchoredFrom{store: s.anchorStore, host: s.config.HostID}
		if p := s.config.Custody.TSACA; p != "" {
			b, err := os.ReadFile(p)
			if err != nil {
				return ExportSummary{}, fmt.Errorf("custody.tsa_ca: %w", err)
			}
			opts.TSACA = b
		}
	}
	ts := export.NewTarSink(w, time.Now())
	sum, err := export.Build(ctx, s.ledger, footageFrom{s}, ts, opts)
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

// exportFacts is what an export carries of the facts index: for each
// recording the index holds a span for, the plate reads and GPS fixes of
// the same camera's sidecar files within that span (the link find uses),
// re-derived from the held copies, and the crop images the reads name.
// Always, not behind a flag: the package of a recording found by plate
// must show the read that found it, and without facts nothing changes. nil
// when there are none (or no facts index). On a dock host the items are
// its ledger's and the held copies the vault's (or the store's); at a
// console the catalog's, and the objects the dock hosts uploaded, each
// fact naming the host that ingested its file.
func (s *Service) exportFacts(ctx context.Context, items []custody.Item) (*export.FactPlan, error) {
	if s.facts == nil {
		return nil, nil
	}
	var (
		l   itemSource     = s.ledger
		src export.Footage = footageFrom{s}
	)
	if s.catalog != nil {
		l, src = consoleLedger{s}, storedFrom{s}
	}
	var sources []export.FactSource
	for _, it := range items {
		link, ok, err := s.facts.Linked(ctx, it.ID)
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		if !ok {
			continue
		}
		for _, fs := range link.Sources {
			kind, ok := sidecar.KindOf(fs.Parser)
			if !ok {
				continue
			}
			if skip, err := outsideSpan(ctx, l, fs, link); err != nil {
				return nil, err
			} else if skip {
				continue
			}
			sources = append(sources, export.FactSource{Recording: it.ID, Item: fs.Item, Kind: kind, From: link.Start, To: link.End})
		}
	}
	if len(sources) == 0 {
		return nil, nil
	}
	plan, err := export.GatherFacts(ctx, l, src, sources, s.cropItem(l), s.catalog != nil)
	if errors.Is(err, export.ErrIntegrity) {
		return nil, &kindError{kind: ErrIntegrity, err: err}
	}
	if err != nil {
		return nil, s.storeErr(err)
	}
	if len(plan.Facts) == 0 {
		return nil, nil
	}
	return plan, nil
}

// outsideSpan reports a sidecar file the export need not read: the facts
// index says none of its facts lies in the recording's span, and the file
// it parsed is the one custody records (the same SHA-256). A camera's
// years of daily logs so cost an index look-up each, not a parse; the
// files that may hold facts in the span are re-derived from their bytes
// as before, and the package (and verify-export) never holds a fact that
// did not come from its file.
func outsideSpan(ctx context.Context, l itemSource, fs facts.Source, link facts.Link) (bool, error) {
	if fs.MayHold(link.Start, link.End) {
		return false, nil
	}
	it, err := l.Item(ctx, fs.Item)
	if err != nil {
		return false, fmt.Errorf("export: facts: sidecar %s: %w", fs.Item, err)
	}
	return it.SHA256 == fs.SHA256, nil
}

// itemSource is where an export reads items: a dock host's ledger, or at a
// console consoleLedger (the catalog of the trusted hosts' records).
type itemSource interface {
	export.Items
	Items(ctx context.Context, f custody.Filter, fn func(custody.Item) error) error
}

// cropItem resolves the item of a plate-crop image a read names: docked
// by the same host in the same dock from the same camera as the log, at
// the name's path relative to the log's folder (docs/ANPR-FORMAT.md).
func (s *Service) cropItem(l itemSource) export.CropResolver {
	return func(ctx context.Context, src custody.Item, name string) (string, error) {
		want := path.Join(path.Dir(src.SourcePath), name)
		var id string
		err := l.Items(ctx, custody.Filter{Camera: src.Camera}, func(it custody.Item) error {
			if id == "" && it.Host == src.Host && it.DockSeq == src.DockSeq && it.SourcePath == want {
				id = it.ID
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("find the crop %s of %s: %w", want, src.ID, err)
		}
		return id, nil
	}
}

// ExtractExport unpacks the tar stream Export writes into dir.
func ExtractExport(r io.Reader, dir string) error { return export.Extract(r, dir) }

// ExportTrust is what a package is checked against, all of it from outside
// the package: a package carries its own keys, so checking it against them
// proves nothing about who made it.
type ExportTrust struct {
	// KeyFile is a PEM file of host public keys obtained out of band
	// (`evidenced key --public`; several hosts' keys may be in one file).
	KeyFile string
	// Fingerprints are "SHA256:…" fingerprints of trusted host keys (the
	// custodian's signed certificate, `evidenced key --fingerprint`).
	Fingerprints []string
	// KeyIDs are trusted key ids as the ledger holds them: what export
	// checks the package it just built against (the daemon's ledger's
	// keys, whose identity the control socket checked).
	KeyIDs []string
	// PackageKey trusts the package's own first key, and the result says
	// so: it shows the package is consistent, not who made it.
	PackageKey bool
	// TSACAFile is the PEM of the time-stamping authority's CA, obtained
	// from the TSA (the package's own copy is informational).
	TSACAFile string
	// AllowUnsigned accepts an unsigned checkpoint and records no trusted
	// signature covers.
	AllowUnsigned bool
}

// exportTrust reads t's files and fingerprints; a file that cannot be read
// or a malformed fingerprint is an ErrInvalid.
func (t ExportTrust) exportTrust() (export.Trust, error) {
	trust := export.Trust{KeyIDs: slices.Clone(t.KeyIDs), PackageKey: t.PackageKey, AllowUnsigned: t.AllowUnsigned}
	for _, f := range t.Fingerprints {
		id, err := signing.ParseFingerprint(f)
		if err != nil {
			return trust, invalidf("--key-fingerprint: %v", err)
		}
		trust.KeyIDs = append(trust.KeyIDs, id)
	}
	if t.KeyFile != "" {
		b, err := os.ReadFile(t.KeyFile)
		if err != nil {
			return trust, invalidf("--key: %v", err)
		}
		if trust.Keys, err = signing.ParsePublicPEMs(b); err != nil {
			return trust, invalidf("--key %s: %v", t.KeyFile, err)
		}
	}
	if t.TSACAFile != "" {
		b, err := os.ReadFile(t.TSACAFile)
		if err != nil {
			return trust, invalidf("--tsa-ca: %v", err)
		}
		trust.TSACA = b
	}
	return trust, nil
}

// ErrNoTrust: VerifyExport was given no key to trust (an ErrInvalid too).
var ErrNoTrust = export.ErrNoTrust

// VerifyExport checks a package using only its own content and the trust
// given from outside it (no config, ledger or network), as anyone who
// receives it can. A directory without MANIFEST.sha256 is not a package at
// all: that is an ErrInvalid (the wrong directory was named), not a
// package that fails; so is a check with nothing to trust (ErrNoTrust).
func VerifyExport(ctx context.Context, dir string, t ExportTrust) (*ExportCheck, error) {
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return nil, invalidf("%s is not a directory", dir)
	}
	if _, err := os.Lstat(filepath.Join(dir, "MANIFEST.sha256")); err != nil {
		return nil, invalidf("%s is not an export package (no MANIFEST.sha256)", dir)
	}
	trust, err := t.exportTrust()
	if err != nil {
		return nil, err
	}
	res, err := export.Verify(ctx, dir, trust)
	if errors.Is(err, export.ErrNoTrust) {
		return nil, &kindError{kind: ErrInvalid, err: err}
	}
	return res, err
}

// KeyFingerprint is one host key of the ledger and the record it signs
// from (0: the host key of a ledger that has recorded none yet).
type KeyFingerprint struct {
	Fingerprint string `json:"fingerprint"`
	FromSeq     uint64 `json:"from_seq"`
}

// KeyFingerprints lists the fingerprint of every host key of the ledger,
// oldest first: what the custodian writes on a certificate and
// verify-export --key-fingerprint takes.
func (s *Service) KeyFingerprints(ctx context.Context) ([]KeyFingerprint, error) {
	periods, err := s.ledger.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list host keys: %w", err)
	}
	if len(periods) == 0 {
		return []KeyFingerprint{{Fingerprint: signing.Fingerprint(s.hostKey().Public())}}, nil
	}
	out := make([]KeyFingerprint, len(periods))
	for i, p := range periods {
		out[i] = KeyFingerprint{Fingerprint: signing.FingerprintPrefix + p.KeyID, FromSeq: p.FromSeq}
	}
	return out, nil
}

// HostKeyIDs are the key ids of every host key of the ledger (at a
// console, and of every key it followed for a trusted dock host): export
// sends them to the client, which checks the package it receives against them,
// never against the keys the package carries.
func (s *Service) HostKeyIDs(ctx context.Context) ([]string, error) {
	periods, err := s.ledger.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list host keys: %w", err)
	}
	ids := make([]string, len(periods))
	for i, p := range periods {
		ids[i] = p.KeyID
	}
	if s.catalog != nil {
		// A console's package holds the trusted dock hosts' records too:
		// the keys the console followed for each.
		keys, err := s.catalog.Keys(ctx)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			ids = append(ids, signing.KeyID(k))
		}
	}
	return ids, nil
}

// anchoredFrom reads the checkpoints anchored in the object store.
type anchoredFrom struct {
	store anchor.Store
	host  string
}

var _ export.Anchors = anchoredFrom{}

func (a anchoredFrom) Latest(ctx context.Context, maxSize uint64) (export.Anchored, bool, error) {
	got, found, err := anchor.Latest(ctx, a.store, a.host, maxSize)
	if err != nil || !found {
		return export.Anchored{}, found, err
	}
	return export.Anchored{Object: got.Object, Size: got.Size, Note: got.Note, Timestamp: got.Timestamp}, true, nil
}

// storedFrom is a console export's view of the files it carries: the
// object each dock host uploaded, by the version it recorded.
type storedFrom struct{ s *Service }

var _ export.Footage = storedFrom{}

func (f storedFrom) Open(ctx context.Context, it custody.Item) (io.ReadCloser, string, error) {
	rc, err := f.s.openStored(ctx, it)
	return rc, "object store", err
}

// footageFrom is the export's view of OpenFootage.
type footageFrom struct{ s *Service }

var _ export.Footage = footageFrom{}

func (f footageFrom) Open(ctx context.Context, it custody.Item) (io.ReadCloser, string, error) {
	return f.s.OpenFootage(ctx, it)
}

// OpenFootage opens an item's recording from the vault, or from the object
// store (its recorded version) when the vault no longer holds it, and says
// which ("vault" or "object store"). The bytes are not checked here: the
// caller hashes them against it.SHA256 as it reads.
func (s *Service) OpenFootage(ctx context.Context, it custody.Item) (io.ReadCloser, string, error) {
	v, verr := s.vault.Open(it.ID)
	if verr == nil {
		return v, "vault", nil
	}
	if s.store == nil || it.ObjectKey == "" {
		return nil, "", fmt.Errorf("item %s: not in the vault (%v) and not in an object store", it.ID, verr)
	}
	rc, err := s.store.Open(ctx, it.ObjectKey, it.VersionID)
	if err != nil {
		return nil, "", fmt.Errorf("open %s (version %s) in the object store: %w", it.ObjectKey, it.VersionID, err)
	}
	return rc, "object store", nil
}
