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
// whose signature verifies under a host key the ledger vouches for, for
// the sizes that key signed (witnessKeys). problem says how the ledger
// falls short of it (behind it, or not reproducing its root); err says
// the comparison could not be made (the witness unreadable), which is no
// finding about the ledger. size is the newest trusted witnessed head's
// (0: none yet); skipped counts witnessed heads that did not verify
// (planted, or signed by a key outside its period) and were not trusted.
func (s *Service) checkWitness(ctx context.Context) (size uint64, problem string, skipped int, err error) {
	if s.witness == nil {
		return 0, "", 0, nil
	}
	keys, err := s.witnessKeys(ctx)
	if err != nil {
		return 0, "", 0, fmt.Errorf("compare the ledger with %s: %w", s.witness, err)
	}
	h, c, v, found, skipped, err := witness.Latest(ctx, s.witness, s.config.HostID, custody.CheckpointOrigin(s.config.HostID), keys)
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

// witnessKeys are the keys a witnessed head counts under: every host key
// of the ledger, each for the heads it signed (from its HOST_KEY or
// KEY_ROTATED record to the record that rotated it out, inclusive: the
// ledger signs the head of a KEY_ROTATED record with the key before).
// Without them, right after a rotation every witnessed head would be the
// old key's and skipped, and a ledger trimmed back before the rotation
// would be compared with nothing. The host key file's key, when the
// ledger does not name it (no record yet, or a key swapped in without a
// rotation), counts for every size, as it always has.
func (s *Service) witnessKeys(ctx context.Context) ([]witness.Key, error) {
	periods, vs, err := s.ledgerKeys(ctx)
	if err != nil {
		return nil, err
	}
	self := s.hostKey()
	var keys []witness.Key
	listed := false
	for i, p := range periods {
		k := witness.Key{Verifier: vs[i], From: p.FromSeq}
		if i+1 < len(periods) {
			k.To = periods[i+1].FromSeq - 1
		}
		listed = listed || p.KeyID == self.KeyID()
		keys = append(keys, k)
	}
	if !listed {
		keys = append(keys, witness.Key{Verifier: self.NoteVerifier()})
	}
	return keys, nil
}
