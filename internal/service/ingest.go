package service

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/ingest"
)

// Progress is told how a dock's copy advances (a terminal line, the bays).
type Progress = ingest.Progress

// IngestResult is what one dock's copy pass did.
type IngestResult = ingest.Result

// IngestOptions name one camera's files to ingest now.
type IngestOptions struct {
	Camera string
	From   string // the camera's root folder or mount point
	// Progress, when set, is told how the copy advances; inside the daemon
	// the bays are told otherwise, so `status` shows the dock.
	Progress Progress
	InDaemon bool
}

// IngestReport is what an ingest did, through upload and verification.
type IngestReport struct {
	IngestResult
	Upload   []string       `json:"upload_errors,omitempty"`
	Recorded []custody.Item `json:"items_detail"`
	OK       bool           `json:"ok"`
	// AnchorWarning says why the dock's records are not anchored off-host
	// yet (they are signed locally; the next anchor covers them).
	AnchorWarning string `json:"anchor_warning,omitempty"`
	// Parsed and ParseFailed count the dock's sidecar files parsed (PARSED)
	// and not (PARSE_FAILED); ParseWarning says why parsing stopped short
	// (the rest is parsed by the daemon or the next reindex).
	Parsed       int    `json:"sidecars_parsed"`
	ParseFailed  int    `json:"sidecars_parse_failed"`
	ParseWarning string `json:"parse_warning,omitempty"`
	// Ran: the dock's copy pass ran (the report says what it did); false
	// when the request was refused before it.
	Ran bool `json:"-"`
}

// Ingest ingests one camera's files now, exactly as the daemon does when it
// docks, then uploads and verifies them. The report says what was done
// whenever Ran is set, also alongside an error.
func (s *Service) Ingest(ctx context.Context, c Caller, o IngestOptions) (IngestReport, error) {
	// A path that is not a camera folder is a mistake in the request: it is
	// refused before anything is recorded.
	st, err := os.Stat(o.From)
	switch {
	case err != nil:
		return IngestReport{}, invalidf("--from %s: %v", o.From, errors.Unwrap(err))
	case !st.IsDir():
		return IngestReport{}, invalidf("--from %s: not a directory", o.From)
	}
	if o.InDaemon {
		// The daemon reads with its own rights (the host key, the vault):
		// a client may point it only at configured sources, resolved to
		// the real path that is then read.
		real, err := s.config.ResolveIngestSource(o.From)
		if err != nil {
			s.bays.Problem(o.Camera, "REFUSED: "+err.Error())
			return IngestReport{}, invalidf("ingest --from: %v", err)
		}
		o.From = real
	}
	p := o.Progress
	if p == nil && o.InDaemon {
		p = s.bays
	}
	res, err := s.ingester.Dock(ctx, ingest.Request{Serial: o.Camera, Root: o.From, Actor: c.Actor, Via: "cli", Identity: c.details(map[string]string{})}, p)
	if errors.Is(err, ingest.ErrNotAdmitted) {
		// Refused before anything was copied: the refusal is on record.
		if o.InDaemon {
			s.bays.Problem(o.Camera, err.Error())
		}
		return IngestReport{}, err
	}
	out := IngestReport{IngestResult: res, Ran: true}
	var upErr error
	if s.uploader != nil && len(res.Items) > 0 {
		upErr = s.uploader.Sync(ctx, res.Items, 5)
		if upErr != nil {
			for _, u := range unwrapJoined(upErr) {
				out.Upload = append(out.Upload, u.Error())
			}
		}
	}
	// Sidecars are parsed once the copies are uploaded, so a parse never
	// holds up an upload; their records are anchored with the dock's.
	var perr error
	out.Parsed, out.ParseFailed, perr = s.parseDocked(ctx, res.Items)
	if perr != nil {
		out.ParseWarning = perr.Error()
	}
	// The dock session ended: its records are anchored off-host now (in the
	// daemon, by its anchor loop; here, directly). A failed anchor is a
	// warning, not a failed ingest: the records are signed locally and the
	// next anchor covers them.
	if res.DockSeq != 0 {
		if aerr := s.AnchorNow(ctx, o.InDaemon); aerr != nil {
			out.AnchorWarning = aerr.Error()
		}
	}
	for _, id := range res.Items {
		if it, err := s.ledger.Item(ctx, id); err == nil {
			out.Recorded = append(out.Recorded, it)
		}
	}
	out.OK = err == nil && upErr == nil
	if err != nil {
		if errors.Is(err, ingest.ErrUnknownDevice) {
			return out, fmt.Errorf("camera %q is not in the inventory: not ingested (recorded as UNKNOWN_DEVICE)", o.Camera)
		}
		return out, err
	}
	if upErr != nil {
		return out, fmt.Errorf("vaulted, but not every item is verified in the object store: %w", upErr)
	}
	return out, nil
}

func unwrapJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
