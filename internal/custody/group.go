package custody

import (
	"context"
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
	// c leads: commit everything queued (c among it), then hand the lead to
	// the first caller queued meanwhile, so that no caller commits for
	// others after its own record is written.
	g.mu.Lock()
	batch := g.queued
	g.queued = nil
	g.mu.Unlock()
	l.commitGroup(batch)
	g.mu.Lock()
	if len(g.queued) > 0 {
		next := g.queued[0]
		next.lead = true
		next.done <- struct{}{}
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	return c.out, c.err
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
		c.done <- struct{}{}
	}
}
