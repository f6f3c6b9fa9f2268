package iobuf

import (
	"context"
	"errors"
	"testing"
	"time"
	"unsafe"
)

// A spent budget makes Get wait, and a waiting Get gives up with its
// context's error, handing out nothing; a Put lets the next Get through
// with the same buffer, not a new one.
func TestGetWaitsWithinBudget(t *testing.T) {
	p := New(2 * Size)
	a, b := get(t, p), get(t, p)
	for _, buf := range []*[]byte{a, b} {
		if len(*buf) != Size || cap(*buf) != Size || uintptr(unsafe.Pointer(&(*buf)[0]))%Align != 0 {
			t.Errorf("buffer of len %d cap %d at %p, want %d bytes aligned to %d", len(*buf), cap(*buf), &(*buf)[0], Size, Align)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if c, err := p.Get(ctx); !errors.Is(err, context.DeadlineExceeded) || c != nil {
		t.Fatalf("Get with the budget spent = %p, %v; want nil, context.DeadlineExceeded", c, err)
	}
	got := make(chan *[]byte)
	go func() {
		c, _ := p.Get(context.Background())
		got <- c
	}()
	p.Put(a)
	if c := <-got; c != a {
		t.Errorf("Get after Put = %p, want the returned buffer %p", c, a)
	}
	if s := p.Stats(); s != (Stats{InUse: 2, Peak: 2, Made: 2, Max: 2}) {
		t.Errorf("stats %+v, want 2 in use, peak 2, made 2, max 2", s)
	}
	p.Put(a)
	p.Put(b)
	p.Put(b) // once too often: counted, the budget unchanged
	if s := p.Stats(); s.Over != 1 || s.Max != 2 || len(p.tokens) != 2 {
		t.Errorf("after a double Put: %+v with %d tokens, want Over 1 and 2 tokens", s, len(p.tokens))
	}
}

// A buffer Put twice while another is still out is caught too: the second
// Put neither lists it free again (two Gets would then share its bytes) nor
// adds a token past the budget.
func TestDoublePutWhileOthersOut(t *testing.T) {
	p := New(2 * Size)
	a, b := get(t, p), get(t, p)
	p.Put(a)
	p.Put(a) // once too often, with b still out
	if s := p.Stats(); s.Over != 1 || s.InUse != 1 || len(p.tokens) != 1 {
		t.Fatalf("after a double Put with one buffer out: %+v with %d tokens, want Over 1, 1 in use, 1 token", s, len(p.tokens))
	}
	c := get(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if d, err := p.Get(ctx); err == nil {
		t.Fatalf("a third buffer (%p) handed out from a budget of two (a %p, b %p, c %p)", d, a, b, c)
	}
	if c == b {
		t.Fatalf("Get handed out %p, which is still out", c)
	}
}

// get is a Get that must succeed at once.
func get(t *testing.T, p *Pool) *[]byte {
	t.Helper()
	b, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return b
}
