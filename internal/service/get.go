package service

import (
	"context"
	"fmt"
	"io"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
)

// GetOptions name one retrieval.
type GetOptions struct {
	ID     string
	Reason string
	Out    string // where the caller writes it (recorded)
	// InDaemon: the access is anchored through the daemon's anchor loop.
	InDaemon bool
}

// Get records the access, anchors it off the host, then streams the item to w from the vault (or the
// object store when the vault no longer holds it), hashing as it goes.
// started is called with the item once the access is on record, before the
// first byte is written. A mismatch at the end is an ErrIntegrity: a caller
// that writes a file then throws the file away.
func (s *Service) Get(ctx context.Context, c Caller, o GetOptions, w io.Writer, started func(custody.Item)) error {
	if err := needReason(o.Reason); err != nil {
		return err
	}
	it, err := s.retrievable(ctx, o.ID)
	if err != nil {
		return err
	}
	details := map[string]string{"out": o.Out}
	if s.catalog != nil {
		details["host"] = it.Host
	}
	src, from, err := s.OpenFootage(ctx, it)
	if err != nil {
		return s.RecordFailedAccess(ctx, c, "retrieve", o.Reason, &it, details, s.storeErr(err))
	}
	defer src.Close()
	details["from"] = from
	if err := s.RecordAccess(ctx, c, "retrieve", o.Reason, &it, details); err != nil {
		return err
	}
	// The record of the retrieval is off the host before the first byte
	// leaves; if it cannot be, nothing is released (and the record after
	// it says the access failed).
	if err := s.anchorBeforeRelease(ctx, o.InDaemon); err != nil {
		return s.RecordFailedAccess(ctx, c, "retrieve", o.Reason, &it, details,
			fmt.Errorf("the retrieval of %s is recorded but could not be anchored off the host, so nothing is released: %w", it.ID, s.storeErr(err)))
	}
	if started != nil {
		started(it)
	}
	h := digest.New()
	n, err := io.CopyBuffer(io.MultiWriter(w, h), src, make([]byte, 1<<20))
	if err != nil {
		return s.RecordFailedAccess(ctx, c, "retrieve", o.Reason, &it, details, fmt.Errorf("read %s from the %s: %w", it.ID, from, s.storeErr(err)))
	}
	if got := digest.FromHash(h).Hex(); got != it.SHA256 || n != it.Size {
		return s.RecordFailedAccess(ctx, c, "retrieve", o.Reason, &it, details,
			integrityf("item %s from the %s hashes %s (%d bytes), recorded %s (%d bytes)", it.ID, from, got, n, it.SHA256, it.Size))
	}
	return nil
}
