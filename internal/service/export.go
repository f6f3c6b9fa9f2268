package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/export"
)

// ExportOptions describe one court export package.
type ExportOptions struct {
	IDs     []string
	Reason  string
	Out     string // where the caller places the package (recorded)
	Footage bool   // include the recordings
}

// ExportSummary counts what went into a package.
type ExportSummary = export.Summary

// ExportCheck is what the standalone verifier found in a package.
type ExportCheck = export.Result

// Export records one ACCESSED event per item, then streams the package as a
// tar archive to w, which the caller extracts (ExtractExport) where it wants
// the package. The daemon so never writes outside its state directory, and
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
	items := make([]custody.Item, 0, len(ids))
	for _, id := range ids {
		it, err := s.item(ctx, id)
		if err != nil {
			return ExportSummary{}, err
		}
		items = append(items, it)
	}
	// Every item's export is custody, recorded before anything leaves, so
	// the package carries the record of its own making.
	details := map[string]string{"out": o.Out, "footage": strconv.FormatBool(o.Footage), "items": strconv.Itoa(len(items))}
	for i := range items {
		if err := s.RecordAccess(ctx, c, "export", o.Reason, &items[i], details); err != nil {
			return ExportSummary{}, err
		}
	}
	sum, err := s.buildExport(ctx, c, o, ids, w)
	if err != nil {
		// The package did not leave: each item's record says so.
		for i := range items {
			err = s.RecordFailedAccess(ctx, c, "export", o.Reason, &items[i], details, err)
		}
	}
	return sum, err
}

// buildExport writes the package of ids to w.
func (s *Service) buildExport(ctx context.Context, c Caller, o ExportOptions, ids []string, w io.Writer) (ExportSummary, error) {
	opts := export.Options{
		IDs: ids, Footage: o.Footage, ExportedBy: c.Actor, Reason: o.Reason, Tool: "evidenced " + Version,
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

// ExtractExport unpacks the tar stream Export writes into dir.
func ExtractExport(r io.Reader, dir string) error { return export.Extract(r, dir) }

// VerifyExport checks a package using only its own content (no config,
// ledger or network), as anyone who receives it can.
// A directory without MANIFEST.sha256 is not a package at all: that is an
// ErrInvalid (the wrong directory was named), not a package that fails.
func VerifyExport(ctx context.Context, dir string) (*ExportCheck, error) {
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return nil, invalidf("%s is not a directory", dir)
	}
	if _, err := os.Lstat(filepath.Join(dir, "MANIFEST.sha256")); err != nil {
		return nil, invalidf("%s is not an export package (no MANIFEST.sha256)", dir)
	}
	return export.Verify(ctx, dir)
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
