package anchor_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tsa"
)

// memStore is the in-memory store, which lists versions itself.
type memStore = memstore.Store

func newMemStore() *memStore { return memstore.New() }

var _ anchor.Store = (*memStore)(nil)

func TestRunnerAnchorsOnKick(t *testing.T) {
	key, err := signing.Generate(host)
	if err != nil {
		t.Fatal(err)
	}
	l := openLedger(t, filepath.Join(t.TempDir(), "ledger.db"), key)
	defer l.Close()
	s := newMemStore()
	appendDocks(t, l, 0, 2)

	results := make(chan anchor.Result, 10)
	r := anchor.NewRunner(l, s, host, time.Hour, 24*time.Hour, anchor.Options{})
	r.OnAnchor = func(res anchor.Result, err error) {
		if err != nil {
			t.Errorf("anchor: %v", err)
		}
		results <- res
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	if res := <-results; res.Size != 3 || len(res.Written) == 0 {
		t.Fatalf("first run: %+v", res)
	}
	appendDocks(t, l, 2, 2) // a dock session ends
	r.Kick()
	if res := <-results; res.Size != 5 || res.Since != 3 {
		t.Fatalf("after kick: %+v", res)
	}
	r.Kick() // nothing new
	if res := <-results; len(res.Written) != 0 || res.Size != 5 {
		t.Fatalf("kick with nothing new: %+v", res)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	rep, err := anchor.Check(context.Background(), l, s, host, key.NoteVerifier())
	if err != nil || !rep.OK() || rep.Checkpoints != 2 || rep.Records != 5 {
		t.Fatalf("check: %+v %v\n%s", rep, err, problems(rep))
	}
}

func TestAnchorRefusals(t *testing.T) {
	key, err := signing.Generate(host)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l := openLedger(t, filepath.Join(t.TempDir(), "ledger.db"), key)
	defer l.Close()
	s := newMemStore()

	// An empty ledger is not anchored.
	if res, err := anchor.Anchor(ctx, l, s, host, time.Now().Add(time.Hour), anchor.Options{}); err != nil || len(res.Written) != 0 {
		t.Fatalf("empty ledger: %+v %v", res, err)
	}
	appendDocks(t, l, 0, 1)
	if _, err := anchor.Anchor(ctx, l, s, host, time.Now().Add(-time.Hour), anchor.Options{}); err == nil {
		t.Fatal("a retain-until in the past was accepted")
	}
	if _, err := anchor.Anchor(ctx, l, nil, host, time.Now().Add(time.Hour), anchor.Options{}); !errors.Is(err, anchor.ErrNoStore) {
		t.Fatalf("nil store: %v", err)
	}
	// A TSA that fails fails the anchor, and the checkpoint is not written.
	failing := tsaFunc(func() error { return errors.New("tsa down") })
	if _, err := anchor.Anchor(ctx, l, s, host, time.Now().Add(time.Hour), anchor.Options{TSA: failing}); err == nil {
		t.Fatal("anchor with a failing TSA succeeded")
	}
	if vs, _ := s.ListVersions(ctx, anchor.CheckpointKey(host, 2)); len(vs) != 0 {
		t.Fatal("a checkpoint was written although its time-stamp failed")
	}
	// Another key's checkpoint does not verify.
	other, _ := signing.Generate(host)
	if _, err := anchor.Anchor(ctx, l, s, host, time.Now().Add(time.Hour), anchor.Options{}); err != nil {
		t.Fatal(err)
	}
	rep, err := anchor.Check(ctx, l, s, host, other.NoteVerifier())
	if err != nil {
		t.Fatal(err)
	}
	requireProblem(t, rep, anchor.CheckpointKey(host, 2), "does not verify with the host key")
}

type tsaFunc func() error

func (f tsaFunc) Timestamp(context.Context, digest.Sum) (*tsa.Token, error) { return nil, f() }

// Sync anchors what the ledger holds when it is called, in Run's
// goroutine, and returns that anchor's error.
func TestRunnerSync(t *testing.T) {
	key, err := signing.Generate(host)
	if err != nil {
		t.Fatal(err)
	}
	l := openLedger(t, filepath.Join(t.TempDir(), "ledger.db"), key)
	defer l.Close()
	s := newMemStore()
	appendDocks(t, l, 0, 2)
	r := anchor.NewRunner(l, s, host, time.Hour, 24*time.Hour, anchor.Options{})
	first := make(chan struct{})
	var once sync.Once
	r.OnAnchor = func(anchor.Result, error) { once.Do(func() { close(first) }) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-first                 // the start's anchor is done
	appendDocks(t, l, 2, 1) // an access that is about to release data
	head, err := l.TreeHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, found, err := anchor.Latest(ctx, s, host, ^uint64(0)); err != nil || !found || got.Size != head.Size {
		t.Fatalf("after Sync the newest anchored checkpoint has size %d (found %v, %v), want %d", got.Size, found, err, head.Size)
	}
	cancel()
	<-done
	stopped, stop := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer stop()
	if err := r.Sync(stopped); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Sync with Run stopped: %v, want the context's error", err)
	}
}

// A checkpoint the store does not hand back for a reason that may pass (a
// timeout, a 5xx) is a check that could not be made: CheckWith returns an
// error, so that verify exits 1 and a console does not call the host
// broken. One the store says is gone is a finding (a problem naming it).
func TestUnreadableIsNotAFinding(t *testing.T) {
	key, err := signing.Generate(host)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l := openLedger(t, filepath.Join(t.TempDir(), "ledger.db"), key)
	appendDocks(t, l, 0, 3)
	s := newMemStore()
	if _, err := anchor.Anchor(ctx, l, s, host, time.Now().Add(time.Hour), anchor.Options{}); err != nil {
		t.Fatal(err)
	}
	s.SetHook(func(op, key string) error {
		if op == "open" && strings.Contains(key, "/checkpoints/") {
			return errors.New("503 Slow Down")
		}
		return nil
	})
	rep, err := anchor.Check(ctx, l, s, host, key.NoteVerifier())
	if err == nil {
		t.Fatalf("a checkpoint the store could not hand back was reported as %d problems, not as an error:\n%s", len(rep.Problems), problems(rep))
	}
	s.SetHook(func(op, key string) error {
		if op == "open" && strings.Contains(key, "/checkpoints/") {
			return objstore.ErrNotFound
		}
		return nil
	})
	rep, err = anchor.Check(ctx, l, s, host, key.NoteVerifier())
	if err != nil || rep.OK() || !strings.Contains(problems(rep), "cannot be read") {
		t.Fatalf("a listed checkpoint the store says is gone: %v\n%s", err, problems(rep))
	}
}
