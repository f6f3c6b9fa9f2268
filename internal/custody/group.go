package custody

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// groupQueue holds the records waiting for the next shared transaction
// and whether a caller is committing one (leads).
type groupQueue struct {
	mu      sync.Mutex
	queued  []*groupCall
	leading bool
	// committed, when set (tests), is told the size of each transaction.
	committed func(n int)
}

// groupCall is one AppendGrouped call. done receives once its record is
// committed (out, err set) or once it is handed the lead (lead set).
type groupCall struct {
	ev   Event
	done chan struct{}
	lead bool
	told bool // done was sent its outcome
	out  Event
	err  error
}

// AppendGrouped is Append for a record without an item projection (an
// ACCESSED record) that many callers may write at once: the records that
// arrive while one transaction is being committed are written together in
// the next, one fsync for all, instead of one transaction (and fsync) each
// in turn. A call that finds nothing being committed commits at once: no
// timer, so an uncontended call costs what Append costs (bolt.Batch would
// wait up to 10 ms).
//
// The guarantee is Append's: AppendGrouped returns nil only once the
// transaction that holds ev is committed and synced, so a caller that
// records an access before releasing anything still releases nothing
// before its record is on disk. When a shared transaction fails, each of
// its records is appended alone, so one record's refusal is only its own
// caller's error. A caller whose ctx ends while its record is queued still
// waits for the outcome: it must not believe a record absent that was
// written.
func (l *Ledger) AppendGrouped(ctx context.Context, ev Event) (Event, error) {
	if err := ctx.Err(); err != nil {
		return Event{}, err
	}
	c := &groupCall{ev: ev, done: make(chan struct{}, 1)}
	g := &l.group
	g.mu.Lock()
	g.queued = append(g.queued, c)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if !lead {
		<-c.done
		if !c.lead {
			return c.out, c.err
		}
	}
	// c leads: commit everything queued (c among it), then hand the lead
	// on (handOff).
	g.mu.Lock()
	batch := g.queued
	g.queued = nil
	g.mu.Unlock()
	// Whatever happens to the commit, a panic included, the lead passes
	// on and every caller of the batch is told: the callers queued behind
	// must not wait forever on a leader that is gone (a panic recovered
	// higher up, by an HTTP server say, would otherwise wedge every later
	// access record of the process).
	defer g.handOff()
	defer func() {
		if r := recover(); r != nil {
			failGroup(batch, r)
			panic(r)
		}
	}()
	l.commitGroup(batch)
	return c.out, c.err
}

// errCommitPanicked is a grouped record's error when the commit holding it
// panicked: its caller cannot know whether it was written.
var errCommitPanicked = errors.New("custody: the commit holding this record panicked")

// failGroup tells each caller of batch not yet told that its commit
// panicked. Whether the record was written is unknown (the panic may come
// after the transaction committed), so the caller must not release what
// the record was to cover; custody shows whether it was written.
func failGroup(batch []*groupCall, r any) {
	for _, c := range batch {
		if !c.told {
			c.out, c.err = Event{}, fmt.Errorf("%w (%v): whether it was written is unknown, see its custody", errCommitPanicked, r)
			c.told = true
			c.done <- struct{}{}
		}
	}
}

// handOff passes the lead to the first caller queued meanwhile, so that no
// caller commits for others after its own record is written; with none
// queued, the next caller leads.
func (g *groupQueue) handOff() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queued) > 0 {
		next := g.queued[0]
		next.lead = true
		next.done <- struct{}{}
	} else {
		g.leading = false
	}
}

// commitGroup appends batch in one transaction (all or none), or each
// alone when that fails, and tells each caller its outcome.
func (l *Ledger) commitGroup(batch []*groupCall) {
	ps := make([]pending, len(batch))
	for i, c := range batch {
		ps[i] = pending{ev: c.ev}
	}
	// The callers' contexts were checked when they queued; the commit is
	// theirs together and is not abandoned for one of them.
	out, err := l.appendAll(context.Background(), ps)
	switch {
	case err == nil:
		out = out[len(out)-len(batch):] // a HOST_KEY record may come first
		for i, c := range batch {
			c.out = out[i]
		}
		if l.group.committed != nil {
			l.group.committed(len(batch))
		}
	case len(batch) == 1:
		batch[0].err = err
	default:
		for _, c := range batch {
			c.out, c.err = l.Append(context.Background(), c.ev, nil)
			if c.err == nil && l.group.committed != nil {
				l.group.committed(1)
			}
		}
	}
	for _, c := range batch {
		c.told = true
		c.done <- struct{}{}
	}
}
