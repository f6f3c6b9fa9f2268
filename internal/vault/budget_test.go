package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/iobuf"
)

// Many copies and read-backs at once through one vault share one buffer
// budget: the pool never hands out more buffers than its budget at a time
// (its own high-water count, not a timing), and every buffer comes back,
// after a clean copy, a source that fails mid-file, a source longer than
// its size, a copy cancelled mid-file and a read-back cancelled before it
// starts.
func TestStoreBufferBudget(t *testing.T) {
	const budget = 4 // buffers; 32 copies would want 5 each without a budget
	pool := iobuf.New(budget * iobuf.Size)
	v, err := Open(filepath.Join(t.TempDir(), "vault"), nil, Options{Buffers: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	boom := errors.New("camera unplugged")
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		id := fmt.Sprintf("cam-%02d", i)
		data := randomBytes(3*bufSize+i, uint64(i))
		wg.Go(func() {
			errs <- func() error {
				// A deadline, so that a budget that leaks buffers shows as
				// copies failing to get one, not as a test that hangs.
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				switch i % 8 {
				case 4: // longer than the camera said: fails holding a buffer
					if _, err := v.Store(ctx, id, bytes.NewReader(data), int64(len(data)-bufSize), nil); !errors.Is(err, ErrLongCopy) {
						return fmt.Errorf("%s: Store of a long source = %v, want %v", id, err, ErrLongCopy)
					}
					return nil
				case 1, 5: // the source fails after two and a bit buffers
					src := io.MultiReader(bytes.NewReader(data[:2*bufSize+3]), iotest.ErrReader(boom))
					if _, err := v.Store(ctx, id, src, int64(len(data)), nil); !errors.Is(err, boom) {
						return fmt.Errorf("%s: Store of a failing source = %v, want %v", id, err, boom)
					}
					return nil
				case 2, 6: // cancelled on the second read, mid-file
					src := io.MultiReader(&cancelling{cancel: cancel}, bytes.NewReader(data))
					if _, err := v.Store(ctx, id, src, 64*bufSize, nil); !errors.Is(err, context.Canceled) {
						return fmt.Errorf("%s: cancelled Store = %v, want context.Canceled", id, err)
					}
					return nil
				}
				st, err := v.Store(ctx, id, bytes.NewReader(data), int64(len(data)), nil)
				if err != nil {
					return err
				}
				if i%4 == 3 { // a read-back whose context has ended
					cctx, ccancel := context.WithCancel(ctx)
					ccancel()
					if _, _, err := v.ReadBack(cctx, id); !errors.Is(err, context.Canceled) {
						return fmt.Errorf("%s: cancelled ReadBack = %v, want context.Canceled", id, err)
					}
				}
				sum, n, err := v.ReadBack(ctx, id)
				if err != nil || sum != st.SHA256 || sum != digest.Bytes(data) || n != int64(len(data)) {
					return fmt.Errorf("%s: ReadBack = %s, %d, %v; want %s, %d", id, sum.Hex(), n, err, st.SHA256.Hex(), len(data))
				}
				return nil
			}()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	s := pool.Stats()
	t.Logf("pool: %+v", s)
	if s.Max != budget {
		t.Fatalf("pool of %d MiB has %d buffers, want %d", budget, s.Max, budget)
	}
	if s.Peak > s.Max {
		t.Errorf("pool handed out %d buffers at once, budget %d", s.Peak, s.Max)
	}
	if s.Made > s.Max {
		t.Errorf("pool allocated %d buffers, budget %d", s.Made, s.Max)
	}
	if s.Peak < s.Max {
		t.Errorf("32 copies at once drew at most %d of %d buffers: the budget was never under pressure, so the test shows nothing", s.Peak, s.Max)
	}
	if s.InUse != 0 || s.Over != 0 {
		t.Errorf("after every copy returned: %d buffers still out, %d returned twice; want 0 and 0", s.InUse, s.Over)
	}
}
