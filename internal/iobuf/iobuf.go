// Package iobuf is the process-wide budget for the large I/O buffers of the
// ingest path: the vault copy's read-ahead and the cold read-back draw every
// buffer they read into from one Pool, so the memory those buffers take is
// bounded by the Pool's budget however many cameras are docked at once.
//
// Before the budget each copy kept its own few buffers in flight, so the
// buffers grew with the number of cameras (eight cameras could hold 40 MiB of
// them) and the daemon's peak memory with them. With a Pool a copy that finds
// the budget spent waits for a buffer (or for its context to end) instead of
// allocating one: more cameras at once share the same bytes and each goes a
// little slower, rather than the daemon growing without bound.
//
// Buffers are fixed-size (Size) and page-aligned, so they can serve O_DIRECT
// reads and writes as well as buffered ones. A caller holds a buffer for one
// step (a read, the hash and write of what was read) and returns it with Put
// on every path, errors and panics included: a camera stuck in a read holds
// at most the one buffer that read is filling, not a queue of them.
package iobuf

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// Size is the size of every buffer. 1 MiB is large enough that USB mass
	// storage sees big requests and syscall overhead vanishes, small enough
	// that a budget of a few tens of MiB serves many cameras at once.
	Size = 1 << 20
	// Align is the alignment of every buffer: the page and logical block
	// size O_DIRECT needs on the file systems a vault lives on.
	Align = 4096
	// DefaultBudget is the budget of Default and of the daemon unless the
	// configuration says otherwise (vault.io_budget). Measured in
	// docs/BENCHMARKS.md ("One budget for the I/O buffers"): with eight
	// cameras at once 32 MiB kept the ingest within a few percent of a
	// buffer queue per copy where 16 MiB cost about a tenth, and the
	// daemon's peak no longer grows with the cameras.
	DefaultBudget = 32 << 20
)

// Default is the process-wide pool used by a vault whose options name none.
var Default = New(DefaultBudget)

// Pool hands out at most Budget()/Size buffers at a time. It allocates a
// buffer the first time one is needed beyond those already made and keeps
// every buffer it made for reuse, so the memory it holds never exceeds the
// budget either, and no garbage is left for the collector to find late.
type Pool struct {
	tokens chan struct{} // one per buffer that may be handed out; a Get takes one
	mu     sync.Mutex
	free   []*[]byte            // made and returned, ready to reuse
	out    map[*[]byte]struct{} // handed out by Get and not yet returned

	inUse atomic.Int64 // buffers handed out and not yet returned
	peak  atomic.Int64 // the most ever handed out at once
	made  atomic.Int64 // buffers allocated
	over  atomic.Int64 // Puts beyond the Gets (a buffer returned twice)
}

// New returns a pool of budget bytes: budget/Size buffers, at least one.
func New(budget int64) *Pool {
	n := max(budget/Size, 1)
	p := &Pool{tokens: make(chan struct{}, n), out: make(map[*[]byte]struct{}, n)}
	for range n {
		p.tokens <- struct{}{}
	}
	return p
}

// Budget is the most memory the pool's buffers take, in bytes.
func (p *Pool) Budget() int64 { return int64(cap(p.tokens)) * Size }

// Get returns a buffer of Size bytes, waiting while the budget is spent. It
// never allocates past the budget. If ctx ends first it returns ctx's error
// and no buffer. The buffer's contents are whatever its last user left.
func (p *Pool) Get(ctx context.Context) (*[]byte, error) {
	select {
	case <-p.tokens:
	default:
		select {
		case <-p.tokens:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for an I/O buffer (%d MiB budget spent): %w", p.Budget()>>20, ctx.Err())
		}
	}
	n := p.inUse.Add(1)
	for {
		peak := p.peak.Load()
		if n <= peak || p.peak.CompareAndSwap(peak, n) {
			break
		}
	}
	p.mu.Lock()
	var b *[]byte
	if k := len(p.free); k > 0 {
		b, p.free = p.free[k-1], p.free[:k-1]
	}
	p.mu.Unlock()
	if b == nil {
		b = alloc()
		p.made.Add(1)
	}
	p.mu.Lock()
	p.out[b] = struct{}{}
	p.mu.Unlock()
	return b, nil
}

// Put returns a buffer that Get handed out. Put(nil) does nothing, so a
// deferred Put of a buffer that may already be returned (and set to nil) is
// safe.
func (p *Pool) Put(b *[]byte) {
	if b == nil {
		return
	}
	if len(*b) != Size {
		panic(fmt.Sprintf("iobuf: Put of a %d-byte buffer, not one from Get", len(*b)))
	}
	// A buffer not out now (returned twice) is counted and the Put
	// ignored: were it listed free again, two Gets would hand out the
	// same bytes at once, and the extra token would raise the budget. It is
	// told apart by identity, not by the token count, which cannot see a
	// second Put while other buffers are still out.
	p.mu.Lock()
	if _, ok := p.out[b]; !ok {
		p.mu.Unlock()
		p.over.Add(1)
		return
	}
	delete(p.out, b)
	// On the free list before the token goes back, so that the Get the
	// token wakes finds a buffer to reuse and allocates none.
	p.free = append(p.free, b)
	p.mu.Unlock()
	p.inUse.Add(-1)
	p.tokens <- struct{}{}
}

// Stats is a snapshot of a pool's use, for tests and metrics.
type Stats struct {
	InUse int64 // buffers handed out now
	Peak  int64 // the most handed out at once since the pool was made
	Made  int64 // buffers allocated since the pool was made
	Max   int64 // the most that may be handed out at once (the budget)
	Over  int64 // Puts with no Get to match: a buffer returned twice
}

// Stats reports the pool's use.
func (p *Pool) Stats() Stats {
	return Stats{InUse: p.inUse.Load(), Peak: p.peak.Load(), Made: p.made.Load(), Max: int64(cap(p.tokens)), Over: p.over.Load()}
}

// alloc makes one Size-byte buffer, page-aligned, outside the Go heap: an
// anonymous private mapping. Outside because the pool keeps its buffers for
// good, and live heap raises the collector's goal (GOGC) by as much again: a
// 32 MiB pool in the heap let up to 32 MiB more garbage build up before a
// collection, and the daemon's peak with 16 cameras at once came out above
// what it had been without a budget. The mapping is never unmapped (the pool
// reuses it); its pages count in RSS once touched. Should the mapping fail
// (no address space), a heap buffer aligned by hand serves instead.
func alloc() *[]byte {
	if b, err := unix.Mmap(-1, 0, Size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON); err == nil {
		return &b
	}
	raw := make([]byte, Size+Align)
	off := 0
	if r := int(uintptr(unsafe.Pointer(&raw[0])) & (Align - 1)); r != 0 {
		off = Align - r
	}
	b := raw[off : off+Size : off+Size]
	return &b
}
