package upload

import (
	"context"
	"sync"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/objstore"
)

// Limiter is a token bucket shared by every upload of a host: the uplink is
// shared with the depot's other traffic, so the cap is on the sum. Its rate
// follows the configured time windows (config.Upload.BandwidthAt), read at
// every wait, so a window opening at 22:00 takes effect within one chunk.
// A rate of 0 is unlimited. Safe for concurrent use.
type Limiter struct {
	rate func(time.Time) int64
	now  func() time.Time

	mu     sync.Mutex
	tokens float64 // may go negative: a debt the next waiters pay off
	last   time.Time
}

var _ objstore.Limiter = (*Limiter)(nil)

// NewLimiter returns the Limiter for u (bandwidth and windows) for
// s3store.Config.Limiter. It is a nil interface when no cap is configured at
// any time of day, so the HTTP path has no limiter at all.
func NewLimiter(u config.Upload) objstore.Limiter {
	limited := u.Bandwidth > 0
	for _, w := range u.Windows {
		limited = limited || w.Bandwidth > 0
	}
	if !limited {
		return nil
	}
	return NewRateLimiter(u.BandwidthAt, time.Now)
}

// NewRateLimiter is a Limiter with an arbitrary rate schedule (bytes per
// second at a time; 0 = unlimited) and clock, for tests and tools.
func NewRateLimiter(rate func(time.Time) int64, now func() time.Time) *Limiter {
	return &Limiter{rate: rate, now: now}
}

// burst is how many bytes may go at once after an idle spell: a tenth of a
// second's worth, at least 64 KiB so a chunk never waits on itself.
func burst(rate int64) float64 { return float64(max(rate/10, 64<<10)) }

// WaitN implements objstore.Limiter: it takes n tokens, going into debt if
// needed, and sleeps until the debt is paid or ctx ends.
func (l *Limiter) WaitN(ctx context.Context, n int) error {
	if l == nil {
		return ctx.Err()
	}
	l.mu.Lock()
	now := l.now()
	r := l.rate(now)
	if r <= 0 {
		l.tokens, l.last = 0, now
		l.mu.Unlock()
		return ctx.Err()
	}
	if !l.last.IsZero() {
		l.tokens += now.Sub(l.last).Seconds() * float64(r)
	} else {
		l.tokens = burst(r)
	}
	l.tokens = min(l.tokens, burst(r))
	l.last = now
	l.tokens -= float64(n)
	wait := time.Duration(0)
	if l.tokens < 0 {
		wait = time.Duration(-l.tokens / float64(r) * float64(time.Second))
	}
	l.mu.Unlock()
	if wait <= 0 {
		return ctx.Err()
	}
	return sleep(ctx, wait)
}
