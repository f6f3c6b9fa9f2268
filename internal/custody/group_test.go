package custody

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// waitUntil polls ok for up to 10 s.
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !ok(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("waiting for %s", what)
		}
	}
}

// groupAtOnce runs call(0..n-1) on their own goroutines (wg counts them)
// so that caller 0 leads alone into a transaction held back (the writers'
// lock RotateKey takes) while the other n-1 queue behind it; then the
// writers go.
func groupAtOnce(t *testing.T, l *Ledger, n int, wg *sync.WaitGroup, call func(i int)) {
	t.Helper()
	queued := func() int { l.group.mu.Lock(); defer l.group.mu.Unlock(); return len(l.group.queued) }
	l.mu.Lock()
	wg.Add(1)
	go call(0)
	waitUntil(t, "the first caller to lead", func() bool {
		l.group.mu.Lock()
		defer l.group.mu.Unlock()
		return l.group.leading && len(l.group.queued) == 0
	})
	for i := 1; i < n; i++ {
		wg.Add(1)
		go call(i)
	}
	waitUntil(t, "the others to queue", func() bool { return queued() == n-1 })
	l.mu.Unlock()
}

// Records written at once by many callers share a transaction (one fsync),
// and each caller returns only when its own record is committed: read back
// the moment AppendGrouped returns, it is there, at the seq returned, as
// written. A record the ledger refuses is its caller's error only; the
// others of its group are written. The ledger verifies after.
func TestAppendGroupedSharesCommits(t *testing.T) {
	f := newSignedFixture(t, newKey(t))
	l := f.l
	ctx := context.Background()
	var mu sync.Mutex
	var sizes []int
	l.group.committed = func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() }

	// run appends n records (groupAtOnce). bad is the caller whose record
	// the ledger refuses (invalid UTF-8), -1 for none.
	run := func(n, bad int) ([]Event, []error) {
		t.Helper()
		evs, errs := make([]Event, n), make([]error, n)
		var wg sync.WaitGroup
		call := func(i int) {
			defer wg.Done()
			ev := Event{Type: Accessed, Actor: fmt.Sprintf("reader-%02d", i), Details: map[string]string{"action": "find"}}
			if i == bad {
				ev.Actor = "bad\xff"
			}
			evs[i], errs[i] = l.AppendGrouped(ctx, ev)
			if errs[i] != nil {
				return
			}
			// Committed when it returns: readable now, as written.
			var got Event
			stop := errors.New("stop")
			if err := l.Events(ctx, evs[i].Seq, func(e Event) error { got = e; return stop }); !errors.Is(err, stop) || got.Actor != ev.Actor || got.Type != Accessed {
				t.Errorf("caller %d: record %d read back as %+v (%v) the moment AppendGrouped returned", i, evs[i].Seq, got, err)
			}
		}
		groupAtOnce(t, l, n, &wg, call)
		wg.Wait()
		return evs, errs
	}

	const n = 24
	evs, errs := run(n, -1)
	var seqs []uint64
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		seqs = append(seqs, evs[i].Seq)
	}
	slices.Sort(seqs)
	if len(slices.Compact(seqs)) != n {
		t.Errorf("the %d records were given seqs %v: not one each", n, seqs)
	}
	if want := []int{1, n - 1}; !slices.Equal(sizes, want) {
		t.Errorf("transactions of %v records, want %v: the queued records were not committed together", sizes, want)
	}

	sizes = nil
	evs, errs = run(5, 3)
	for i, err := range errs {
		switch {
		case i == 3 && !errors.Is(err, ErrInvalid):
			t.Errorf("the refused record's caller got %v, want ErrInvalid", err)
		case i != 3 && (err != nil || evs[i].Seq == 0):
			t.Errorf("caller %d, in a group with a refused record: %+v, %v", i, evs[i], err)
		}
	}
	var problems []Problem
	if _, err := l.Verify(ctx, func(p Problem) { problems = append(problems, p) }); err != nil || len(problems) != 0 {
		t.Errorf("verify after the grouped appends: %v %v", problems, err)
	}
}

// A panic in a shared commit (here after the transaction, in the commit
// hook; the leader's work either way) does not wedge the queue: the
// leader's caller gets the panic, every other caller of that commit
// returns an error saying its record's fate is unknown (never nil, so
// nothing is released on it), the callers queued behind are led on, and
// the next append works. Without the hand-off in a defer, the waiters and
// every later caller would wait forever.
func TestAppendGroupedSurvivesAPanickingCommit(t *testing.T) {
	f := newSignedFixture(t, newKey(t))
	l := f.l
	ctx := context.Background()
	l.group.committed = func(n int) {
		if n > 1 {
			panic("injected: the shared commit failed")
		}
	}
	const n = 5
	errs, panics := make([]error, n), make([]any, n)
	var wg sync.WaitGroup
	call := func(i int) {
		defer wg.Done()
		defer func() { panics[i] = recover() }()
		_, errs[i] = l.AppendGrouped(ctx, Event{Type: Accessed, Actor: fmt.Sprintf("reader-%02d", i), Details: map[string]string{"action": "find"}})
	}
	// Caller 0 commits alone; 1..4 queue, and the first of them leads
	// their shared commit, which panics.
	groupAtOnce(t, l, n, &wg, call)
	returned := make(chan struct{})
	go func() { wg.Wait(); close(returned) }()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatalf("callers still waiting 10s after their commit panicked: errors %v, panics %v", errs, panics)
	}
	if errs[0] != nil || panics[0] != nil {
		t.Errorf("caller 0 committed alone: %v %v", errs[0], panics[0])
	}
	led := 0
	for i := 1; i < n; i++ {
		switch {
		case panics[i] != nil:
			led++
		case !errors.Is(errs[i], errCommitPanicked):
			t.Errorf("caller %d of the panicked commit returned %v, want errCommitPanicked", i, errs[i])
		}
	}
	if led != 1 {
		t.Errorf("%d callers saw the panic, want the one that led the commit: %v", led, panics)
	}

	l.group.committed = nil
	done := make(chan error, 1)
	go func() {
		_, err := l.AppendGrouped(ctx, Event{Type: Accessed, Actor: "reader-after", Details: map[string]string{"action": "find"}})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the append after the panic: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the append after the panic waits forever: the lead was never handed on")
	}
	var problems []Problem
	if _, err := l.Verify(ctx, func(p Problem) { problems = append(problems, p) }); err != nil || len(problems) != 0 {
		t.Errorf("verify after the panic: %v %v", problems, err)
	}
}
