package service

import "time"

// Subscribe returns a channel that receives after every change of the bays
// (at least one receive per burst of changes: a subscriber that is slow is
// told once, then reads the latest List), and a cancel that releases it.
// The tracker never waits for a subscriber, so a stalled client of the dock
// page cannot hold up ingest.
func (b *Bays) Subscribe() (changed <-chan struct{}, cancel func()) {
	c := make(chan struct{}, 1)
	b.mu.Lock()
	b.subs[c] = struct{}{}
	b.mu.Unlock()
	return c, func() {
		b.mu.Lock()
		delete(b.subs, c)
		b.mu.Unlock()
	}
}

// changed tells every subscriber; b.mu is held.
func (b *Bays) changed() {
	for c := range b.subs {
		select {
		case c <- struct{}{}:
		default: // already told; it reads the latest state anyway
		}
	}
}

// minETAElapsed: before a copy ran this long its rate says little.
const minETAElapsed = 2 * time.Second

// ETA estimates how long the copy still takes at the rate it has had since
// it started (bytes already held do not count as speed). ok is false while
// there is no copy, or too little of one to measure.
func (b Bay) ETA(now time.Time) (left time.Duration, ok bool) {
	if b.State != BayCopying || b.StartedAt.IsZero() {
		return 0, false
	}
	elapsed := now.Sub(b.StartedAt)
	copied := b.Done - b.heldBytes
	if elapsed < minETAElapsed || copied <= 0 {
		return 0, false
	}
	remaining := b.Bytes - b.Done
	if remaining <= 0 {
		return 0, true
	}
	return time.Duration(float64(elapsed) * float64(remaining) / float64(copied)), true
}
