package objstore

import (
	"context"
	"fmt"
	"time"
)

// Retainer changes the Object Lock state of a stored version after upload:
// the retention an investigator raises when footage is categorised, and the
// legal holds of open cases. It is a separate interface from Store because a
// store without Object Lock (or a read-only principal) can still hold and
// serve evidence; callers that need it type-assert.
//
// Contract for every implementation:
//   - PutRetention sets the version's lock mode and retain-until date. It
//     never shortens: a request that would move retain-until earlier, or
//     turn COMPLIANCE into GOVERNANCE, is refused with an error wrapping
//     ErrRetentionShortened before anything is sent (the store would refuse
//     COMPLIANCE anyway, but would accept a shortened GOVERNANCE from a
//     privileged principal, and evidenced never uses that privilege).
//     Setting the same mode and date again is a no-op that succeeds, so a
//     retry after a lost response is safe.
//   - PutLegalHold turns the version's legal hold on or off; idempotent.
//   - versionID "" means the latest version; callers that hold evidence
//     always pass the version the ledger recorded.
//   - Errors wrap the package sentinels (ErrNotFound, ErrAccessDenied,
//     ErrInvalidRequest, ...) so IsPermanent classifies them.
type Retainer interface {
	PutRetention(ctx context.Context, key, versionID, mode string, until time.Time) error
	PutLegalHold(ctx context.Context, key, versionID string, on bool) error
}

// Tagger replaces the object tags of a stored version. Tags are labels for
// lifecycle rules and searches in the store (camera, assigned_to,
// retention_class, sha256 — see the uploader); evidence never rests on them,
// but a label that contradicts the ledger misleads whoever reads the bucket,
// so a class change rewrites retention_class.
//
// Contract: PutTags replaces the whole tag set of the version (S3
// PutObjectTagging semantics; Object Lock does not cover tags), is
// idempotent, and wraps the package sentinels like Retainer.
type Tagger interface {
	PutTags(ctx context.Context, key, versionID string, tags map[string]string) error
}

// ErrRetentionShortened: a retention change that would shorten the
// retention or weaken its mode. It wraps ErrInvalidRequest, so IsPermanent
// says what it is: sending it again cannot succeed.
var ErrRetentionShortened = fmt.Errorf("retention can only be extended: %w", ErrInvalidRequest)

// CheckExtension reports (as an error wrapping ErrRetentionShortened)
// whether moving from (oldMode, oldUntil) to (mode, until) would shorten
// the retention or weaken its mode: COMPLIANCE is stronger than GOVERNANCE,
// which is stronger than none. An unknown mode is ErrInvalidRequest.
// Retain-until dates are compared to the second, as S3 stores them.
func CheckExtension(oldMode string, oldUntil time.Time, mode string, until time.Time) error {
	rank := func(m string) int {
		switch m {
		case "":
			return 0
		case LockGovernance:
			return 1
		case LockCompliance:
			return 2
		}
		return -1
	}
	switch {
	case rank(mode) <= 0 || until.IsZero():
		return errorf(ErrInvalidRequest, "lock mode %q until %v: a mode (GOVERNANCE or COMPLIANCE) and a date are required", mode, until)
	case rank(oldMode) < 0:
		return errorf(ErrInvalidRequest, "current lock mode %q is unknown", oldMode)
	case rank(mode) < rank(oldMode):
		return errorf(ErrRetentionShortened, "lock mode %s would weaken %s", mode, oldMode)
	case until.Truncate(time.Second).Before(oldUntil.Truncate(time.Second)):
		return errorf(ErrRetentionShortened, "retain-until %s is before the current %s",
			until.UTC().Format(time.RFC3339), oldUntil.UTC().Format(time.RFC3339))
	}
	return nil
}

func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), sentinel)
}
