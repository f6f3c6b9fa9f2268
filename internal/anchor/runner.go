package anchor

import (
	"context"
	"log/slog"
	"time"
)

// DefaultInterval is how often the Runner anchors when nothing asks it to
// sooner (custody.checkpoint_interval).
const DefaultInterval = 10 * time.Minute

// Runner anchors the ledger at the end of each dock session (Kick) and at
// least every Interval, in one goroutine (Run), so anchors never overlap.
// A failed anchor is logged and retried at the next kick or tick: the
// records stay in the ledger, nothing is lost by waiting.
type Runner struct {
	Ledger Ledger
	Store  Store
	Host   string
	// Interval between anchors; 0 means DefaultInterval.
	Interval time.Duration
	// RetainFor is how long anchored objects are locked (COMPLIANCE) from
	// the time they are written. It must cover the longest retention of
	// the footage the records describe.
	RetainFor time.Duration
	Options   Options
	// OnAnchor, when set, is called after every attempt (tests, status).
	OnAnchor func(Result, error)

	kick chan struct{}
	sync chan chan error
}

// NewRunner returns a Runner; see the field docs.
func NewRunner(l Ledger, s Store, hostID string, interval, retainFor time.Duration, o Options) *Runner {
	return &Runner{Ledger: l, Store: s, Host: hostID, Interval: interval, RetainFor: retainFor, Options: o,
		kick: make(chan struct{}, 1), sync: make(chan chan error)}
}

// Sync anchors now and returns that anchor's error: what the ledger holds
// at the call is anchored off the host when it returns nil. The anchor
// runs in Run's goroutine, so it never overlaps another; Sync waits for
// Run to take the request, or for ctx. An access that releases data
// (get, export) calls it before the first byte leaves, so the record of
// the release cannot be trimmed from the unanchored tail unnoticed.
func (r *Runner) Sync(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case r.sync <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kick asks for an anchor soon (a dock session ended). It never blocks;
// kicks while one is pending coalesce.
func (r *Runner) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run anchors once at start, then on every Kick and every Interval, until
// ctx is done; it returns ctx's error.
func (r *Runner) Run(ctx context.Context) error {
	log := r.Options.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if r.kick == nil {
		r.kick = make(chan struct{}, 1)
	}
	if r.sync == nil {
		r.sync = make(chan chan error)
	}
	var waiting []chan error
	iv := r.Interval
	if iv <= 0 {
		iv = DefaultInterval
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		res, err := Anchor(ctx, r.Ledger, r.Store, r.Host, time.Now().Add(r.RetainFor), r.Options)
		if err != nil && ctx.Err() == nil {
			log.Error("custody anchor failed; retrying later", "host", r.Host, "err", err)
		}
		for _, w := range waiting {
			w <- err
		}
		waiting = nil
		if r.OnAnchor != nil {
			r.OnAnchor(res, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-r.kick:
		case w := <-r.sync:
			waiting = append(waiting, w)
		}
	}
}
