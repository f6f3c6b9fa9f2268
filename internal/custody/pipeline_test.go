package custody

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// TestPipelineOrder: every check runs once, in order, after its own decode,
// whatever the count against the block size and the number of cores.
func TestPipelineOrder(t *testing.T) {
	for _, procs := range []int{1, 2, 4} {
		old := runtime.GOMAXPROCS(procs)
		for _, n := range []int{0, 1, 127, 128, 129, 1000} {
			decoded := make([]int, n)
			var checked []int
			pipeline(n, func(i int) { decoded[i] = i + 1 }, func(i int) {
				if decoded[i] != i+1 {
					t.Errorf("procs %d n %d: check %d ran before its decode", procs, n, i)
				}
				checked = append(checked, i)
			})
			if len(checked) != n {
				t.Fatalf("procs %d n %d: %d checks", procs, n, len(checked))
			}
			for i, c := range checked {
				if c != i {
					t.Fatalf("procs %d n %d: check %d ran as number %d", procs, n, c, i)
				}
			}
		}
		runtime.GOMAXPROCS(old)
	}
}

// TestPipelineFault: a panic while decoding (a damaged page read under
// SetPanicOnFault) reaches the caller's goroutine, where Verify's safely
// turns it into ErrCorrupt, and no decoder is still running once pipeline
// has returned or panicked, since decoders read the caller's transaction.
func TestPipelineFault(t *testing.T) {
	old := runtime.GOMAXPROCS(2)
	defer runtime.GOMAXPROCS(old)
	for _, in := range []string{"decode", "check"} {
		var running, after atomic.Int64
		var returned atomic.Bool
		got := func() (r any) {
			defer func() { r = recover(); returned.Store(true) }()
			pipeline(5000, func(i int) {
				running.Add(1)
				defer running.Add(-1)
				if returned.Load() {
					after.Add(1)
				}
				if in == "decode" && i == 3000 {
					panic("damaged page")
				}
			}, func(i int) {
				if in == "check" && i == 10 {
					panic("damaged page")
				}
			})
			return nil
		}()
		if got != "damaged page" {
			t.Fatalf("panic in %s: caller recovered %v, want the decoder's panic", in, got)
		}
		if n := running.Load(); n != 0 || after.Load() != 0 {
			t.Fatalf("panic in %s: %d decoders running and %d decodes started after pipeline ended", in, n, after.Load())
		}
	}
}
