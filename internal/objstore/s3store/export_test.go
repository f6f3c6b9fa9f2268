package s3store

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/evidenced/evidenced/internal/digest"
)

// WithPayloadSHA256 exposes withPayloadSHA256 to the tests, so that they can
// sign a request with a payload hash that does not match its body.
func WithPayloadSHA256(sum digest.Sum) func(*s3.Options) { return withPayloadSHA256(sum) }

// SetClock makes the probe's schedule follow now, so that a test can step
// past probeRetry and probeRenew.
func SetClock(s *Store, now func() time.Time) { s.now = now }

// ProbeRetry and ProbeRenew are the probe's schedule.
const ProbeRetry, ProbeRenew = probeRetry, probeRenew
