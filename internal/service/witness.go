package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/witness"
)

// openWitness is where the ledger's signed heads are witnessed:
// custody.witness_file when set, else the systemd journal when journald
// runs, else nowhere (nil).
func openWitness(cfg *config.Config) witness.Witness {
	switch {
	case cfg.Custody.WitnessFile != "":
		return witness.File{Path: cfg.Custody.WitnessFile}
	case witness.JournalAvailable():
		return &witness.Journal{}
	}
	return nil
}

// witnessFunc adapts w to custody.Options.Witness (nil without one).
func witnessFunc(w witness.Witness, host string) func(custody.WitnessedHead) error {
	if w == nil {
		return nil
	}
	return func(h custody.WitnessedHead) error {
		return w.Write(witness.Head{Host: host, Size: h.Size, Root: h.Root.Base64(), Key: h.Key,
			Note: string(h.Note), At: time.Now().UTC()})
	}
}

// checkWitness compares the ledger with the newest head its witness holds
// whose signature verifies under the pinned host key. problem says how the
// ledger falls short of it (behind it, or not reproducing its root); err
// says the comparison could not be made (the witness unreadable), which is
// no finding about the ledger. size is the newest trusted witnessed head's
// (0: none yet); skipped counts witnessed heads that did not verify
// (planted, or signed by an earlier key) and were not trusted.
func (s *Service) checkWitness(ctx context.Context) (size uint64, problem string, skipped int, err error) {
	if s.witness == nil {
		return 0, "", 0, nil
	}
	v := s.hostKey().NoteVerifier()
	h, c, found, skipped, err := witness.Latest(ctx, s.witness, s.config.HostID, custody.CheckpointOrigin(s.config.HostID), v)
	if err != nil || !found {
		return 0, "", skipped, err
	}
	if _, err := s.ledger.VerifyAgainst(ctx, []byte(h.Note), v); err != nil {
		if errors.Is(err, custody.ErrCheckpoint) {
			return c.Size, fmt.Sprintf("%s holds the signed head of size %d (root %s, key %s, witnessed %s): %v",
				s.witness, c.Size, c.Root, h.Key, h.At.Format(time.RFC3339), err), skipped, nil
		}
		return c.Size, "", skipped, fmt.Errorf("compare the ledger with %s: %w", s.witness, err)
	}
	return c.Size, "", skipped, nil
}
