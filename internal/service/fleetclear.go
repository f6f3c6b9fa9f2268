package service

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/custody"
)

// HostCleared is the console's record of a custodian lifting a dock host's
// broken or withheld flag (Details: host, reason, checkpoint, root,
// object, indexed_checkpoint, problems_cleared, problem, withheld). It is
// written only after the host's anchored history was re-checked and
// verified (catalog.Clear), and says which checkpoint was accepted, so who vouched for
// serving the host again, why, and on what, is as verifiable as the break.
const HostCleared custody.EventType = "HOST_CLEARED"

// ClearHostOptions name the host and why it is cleared.
type ClearHostOptions struct {
	Host   string
	Reason string
}

// HostClearance is what ClearHost accepted.
type HostClearance struct {
	Host string `json:"host"`
	// Checkpoint is the newest checkpoint of the re-checked history (tree
	// size), Root its root and Object its key.
	Checkpoint uint64 `json:"checkpoint"`
	Root       string `json:"root"`
	Object     string `json:"object"`
	// IndexedCheckpoint is where the index had stopped; it continues from
	// there.
	IndexedCheckpoint uint64 `json:"indexed_checkpoint"`
	// Cleared are the problems the host was flagged for; Withheld whether
	// the audit had withheld it.
	Cleared  []string `json:"cleared"`
	Withheld bool     `json:"withheld,omitempty"`
	// Seq is the HOST_CLEARED record's seq in the console's ledger.
	Seq uint64 `json:"seq"`
}

// ClearHost lifts the broken or withheld flag of a trusted dock host at a
// console, after a custodian has looked (the dock host was repaired, the
// right key pinned, an object that did not belong removed), and only if
// the host's anchored history now verifies (catalog.Clear): else it
// is an ErrIntegrity naming the first problem, and the flag stays. The
// clearance is a signed HOST_CLEARED record in the console's ledger,
// written before the flag is lifted; the host's records are served again
// from the next read of the store.
func (s *Service) ClearHost(ctx context.Context, c Caller, o ClearHostOptions) (HostClearance, error) {
	var res HostClearance
	if s.catalog == nil {
		return res, &kindError{kind: ErrInvalid, err: ErrNotConsole}
	}
	if strings.TrimSpace(o.Reason) == "" {
		return res, invalidf("clear %s: a reason is required (why the flag may be lifted: what was investigated)", o.Host)
	}
	cl, err := s.catalog.Clear(ctx, o.Host, func(cl catalog.Cleared) error {
		was := make([]string, len(cl.Was))
		for i, p := range cl.Was {
			was[i] = p.String()
		}
		d := map[string]string{
			"host": cl.Host, "reason": o.Reason, "checkpoint": strconv.FormatUint(cl.Size, 10), "root": cl.Root,
			"object": cl.Object, "indexed_checkpoint": strconv.FormatUint(cl.IndexedSize, 10),
			"problems_cleared": strconv.Itoa(len(cl.Was)), "withheld": strconv.FormatBool(cl.Withheld),
		}
		if len(was) > 0 {
			d["problem"] = was[0]
		}
		ev, err := s.ledger.Append(context.WithoutCancel(ctx), custody.Event{Type: HostCleared, Actor: c.Actor, Details: c.details(d)}, nil)
		if err != nil {
			return fmt.Errorf("record the clearance of %s; nothing cleared: %w", cl.Host, err)
		}
		res = HostClearance{Host: cl.Host, Checkpoint: cl.Size, Root: cl.Root, Object: cl.Object,
			IndexedCheckpoint: cl.IndexedSize, Cleared: was, Withheld: cl.Withheld, Seq: ev.Seq}
		return nil
	})
	var still *catalog.StillBrokenError
	switch {
	case errors.As(err, &still):
		return HostClearance{}, &kindError{kind: ErrIntegrity, err: err}
	case errors.Is(err, catalog.ErrNotTrusted), errors.Is(err, catalog.ErrNotFlagged):
		return HostClearance{}, &kindError{kind: ErrInvalid, err: err}
	case err != nil:
		return HostClearance{}, s.storeErr(err)
	}
	s.log.Info("dock host cleared", "host", cl.Host, "checkpoint", cl.Size, "actor", c.Actor, "reason", o.Reason)
	return res, nil
}
