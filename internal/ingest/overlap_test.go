package ingest

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/vault"
)

// overlapVault is a real vault whose ReadBack of item first does not start
// reading until the copy of item next is complete and durable (its record
// step has begun) or has failed: it goes on only if the pass reads one file
// back while it copies the next. A pass that reads
// back before it copies on would wait here for ever; the wait gives up
// shortly before the test's deadline (go test -timeout) and fails the test
// with a message, instead of letting the binary's timeout kill it. Nothing
// here measures time.
type overlapVault struct {
	*vault.Vault
	t           *testing.T
	first, next string
	copied      chan struct{} // closed when StoreRecorded(next) calls record or returns
	once        sync.Once
}

func newOverlapVault(t *testing.T, v *vault.Vault, first, next string) *overlapVault {
	return &overlapVault{Vault: v, t: t, first: first, next: next, copied: make(chan struct{})}
}

func (o *overlapVault) StoreRecorded(ctx context.Context, id string, src io.Reader, size int64, progress func(int64), record func(vault.Stored) error) (vault.Stored, error) {
	if id != o.next {
		return o.Vault.StoreRecorded(ctx, id, src, size, progress, record)
	}
	done := func() { o.once.Do(func() { close(o.copied) }) }
	defer done()
	return o.Vault.StoreRecorded(ctx, id, src, size, progress, func(st vault.Stored) error {
		done()
		return record(st)
	})
}

func (o *overlapVault) ReadBackParts(ctx context.Context, id string, partSize int64) (digest.Sum, int64, []digest.Sum, error) {
	if id == o.first {
		var giveUp <-chan time.Time
		if d, ok := o.t.Deadline(); ok {
			giveUp = time.After(time.Until(d) - 5*time.Second)
		}
		select {
		case <-o.copied:
		case <-giveUp:
			o.t.Error("the read-back of the first file waited for the copy of the next one until the test's deadline: not overlapped")
			return digest.Sum{}, 0, nil, errors.New("read-back not overlapped with the next copy")
		}
	}
	return o.Vault.ReadBackParts(ctx, id, partSize)
}

// custodyOf lists every ledger record as "TYPE NAME", NAME the camera file
// (by names, an item id → short name) or "" for records of no item.
func (f *fixture) custodyOf(t *testing.T, names map[string]string) []string {
	t.Helper()
	var got []string
	if err := f.ledger.Events(context.Background(), 1, func(ev custody.Event) error {
		got = append(got, strings.TrimSpace(string(ev.Type)+" "+names[ev.Item]))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// overlapFixture is a camera with the files A, B and C (their item ids
// returned) behind an overlapVault on A's read-back and B's copy.
func overlapFixture(t *testing.T) (f *fixture, a, b, c string) {
	t.Helper()
	f = newFixture(t)
	f.write(t, "DCIM/A.MP4", []byte("first recording"))
	f.write(t, "DCIM/B.MP4", []byte("second recording"))
	f.write(t, "DCIM/C.MP4", []byte("third recording"))
	a, b, c = f.itemOf(t, "DCIM/A.MP4"), f.itemOf(t, "DCIM/B.MP4"), f.itemOf(t, "DCIM/C.MP4")
	f.in.vault = newOverlapVault(t, f.vault, a, b)
	return f, a, b, c
}

// TestReadBackOverlapsNextCopy: the cold read-back of a file runs while the
// next file is copied (A's read-back does not start until B's copy is done),
// and the pass still reads in the ledger exactly as one done a file at a
// time: each file's VAULTED before the next file's COPIED, SAFE_TO_UNDOCK
// after the last read-back, results in file order.
func TestReadBackOverlapsNextCopy(t *testing.T) {
	f, a, b, c := overlapFixture(t)
	res, err := f.dock(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Vaulted != 3 || !res.SafeToUndock || !slices.Equal(res.Items, []string{a, b, c}) {
		t.Fatalf("result %+v: want A, B, C vaulted in file order and safe to undock", res)
	}
	want := []string{"DOCKED", "COPIED A", "VAULTED A", "COPIED B", "VAULTED B", "COPIED C", "VAULTED C", "SAFE_TO_UNDOCK"}
	if got := f.custodyOf(t, map[string]string{a: "A", b: "B", c: "C"}); !slices.Equal(got, want) {
		t.Errorf("custody records %q, want %q", got, want)
	}
}

// vaultedFails is the real ledger, failing the append of VAULTED for one
// item: the ledger cannot take the record (disk full, I/O error) while the
// next file is being copied.
type vaultedFails struct {
	*custody.Ledger
	item string
}

func (v vaultedFails) Append(ctx context.Context, ev custody.Event, it *custody.Item) (custody.Event, error) {
	if ev.Type == custody.Vaulted && ev.Item == v.item {
		return custody.Event{}, errors.New("ledger write failed")
	}
	return v.Ledger.Append(ctx, ev, it)
}

// TestLedgerFailureDuringOverlapStopsBeforeNextCopied: A's VAULTED cannot
// be recorded while B is being copied. The pass ends with the ledger's
// error and leaves what a pass done a file at a time leaves: A COPIED (its
// copy in items/, as after a crash), and nothing of B — no record, no copy
// under items/ — although B's bytes were already copied; C is not touched.
func TestLedgerFailureDuringOverlapStopsBeforeNextCopied(t *testing.T) {
	f, a, b, c := overlapFixture(t)
	f.in.ledger = vaultedFails{f.ledger, a}
	res, err := f.dock(t, nil)
	if err == nil || !strings.Contains(err.Error(), "ledger write failed") || strings.Contains(err.Error(), b) {
		t.Fatalf("dock: %v, want A's ledger error as it was", err)
	}
	if res.SafeToUndock || res.Vaulted != 0 {
		t.Errorf("result %+v: want nothing vaulted, not safe to undock", res)
	}
	want := []string{"DOCKED", "COPIED A"}
	if got := f.custodyOf(t, map[string]string{a: "A", b: "B", c: "C"}); !slices.Equal(got, want) {
		t.Errorf("custody records %q, want %q", got, want)
	}
	if got := f.vaultFiles(t); !slices.Equal(got, []string{a}) {
		t.Errorf("items/ holds %v, want A's copy only (COPIED, awaiting a next pass)", got)
	}
}

// cancelOnFile cancels the dock's context at the first progress report of
// the file rel: a camera yanked, or the daemon stopped, mid-copy.
type cancelOnFile struct {
	rel    string
	cancel context.CancelFunc
}

func (c cancelOnFile) Start(string, int, int64) {}
func (c cancelOnFile) Done(string, Result)      {}
func (c cancelOnFile) File(_, rel string, _, _ int64) {
	if rel == c.rel {
		c.cancel()
	}
}

// TestCancelDuringOverlapLeavesNothingHalfRecorded: the dock is cancelled
// while B is copied and A's read-back is pending. Every file the pass began
// ends on record, in file order: A's read-back is cut short, so A is
// COPY_FAILED and its copy removed (the camera still holds it), B is
// COPY_FAILED without a COPIED, C is not copied; nothing is left under
// items/ or in the vault's tmp/, and the camera is not safe to undock.
func TestCancelDuringOverlapLeavesNothingHalfRecorded(t *testing.T) {
	f, a, b, c := overlapFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := dockReq
	req.Root = f.cam
	res, err := f.in.Dock(ctx, req, cancelOnFile{rel: "DCIM/B.MP4", cancel: cancel})
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("dock: %v, want ErrIncomplete", err)
	}
	var failed []string
	for _, fe := range res.Failed {
		failed = append(failed, fe.Rel)
	}
	if res.SafeToUndock || res.Vaulted != 0 || !slices.Equal(failed, []string{"DCIM/A.MP4", "DCIM/B.MP4", "DCIM/C.MP4"}) {
		t.Errorf("result %+v: want A, B, C failed in file order, nothing vaulted, not safe to undock", res)
	}
	want := []string{"DOCKED", "COPIED A", "COPY_FAILED A", "COPY_FAILED B"}
	if got := f.custodyOf(t, map[string]string{a: "A", b: "B", c: "C"}); !slices.Equal(got, want) {
		t.Errorf("custody records %q, want %q", got, want)
	}
	if got := f.vaultFiles(t); len(got) != 0 {
		t.Errorf("items/ holds %v, want nothing", got)
	}
	if tmp, err := os.ReadDir(filepath.Join(f.vault.Dir(), "tmp")); err != nil || len(tmp) != 0 {
		t.Errorf("vault tmp/: %v %v, want empty", tmp, err)
	}
}
