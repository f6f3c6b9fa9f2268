package upload

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
)

type dirVault struct{ dir string }

func (v dirVault) Open(id string) (*os.File, error) { return os.Open(filepath.Join(v.dir, id)) }

type fixture struct {
	l     *custody.Ledger
	v     dirVault
	cfg   *config.Config
	store *memstore.Store
	u     *Uploader
	dock  uint64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	l, err := custody.Open(filepath.Join(dir, "ledger.db"), custody.Options{Host: "unit"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cfg := config.Default()
	cfg.HostID = "unit"
	cfg.Retention.Classes = []config.Class{{Name: "uncategorized", Days: 1, Mode: config.ModeGovernance}, {Name: "incident", Days: 2, Mode: config.ModeGovernance}}
	cfg.Upload.RetryMin = config.Duration{Duration: time.Millisecond}
	cfg.Upload.RetryMax = config.Duration{Duration: 5 * time.Millisecond}
	ev, err := l.Append(context.Background(), custody.Event{Type: custody.Docked, Actor: "t", Camera: "CAM"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := memstore.New()
	f := &fixture{l: l, v: dirVault{dir}, cfg: cfg, store: st, dock: ev.Seq}
	f.u = New(cfg, l, f.v, st, "unit", nil)
	return f
}

func (f *fixture) item(t *testing.T, n int, class string, ingested time.Time) custody.Item {
	t.Helper()
	b := []byte(fmt.Sprintf("recording %d", n))
	id := fmt.Sprintf("%024x", n)
	if err := os.WriteFile(filepath.Join(f.v.dir, id), b, 0o600); err != nil {
		t.Fatal(err)
	}
	it := custody.Item{ID: id, Camera: "CAM", Kind: "body", AssignedTo: "x", SourcePath: fmt.Sprintf("V%d.MP4", n),
		Size: int64(len(b)), SHA256: digest.Bytes(b).Hex(), RecordedAt: ingested, IngestedAt: ingested,
		State: custody.StateVaulted, RetentionClass: class, DockSeq: f.dock}
	if _, err := f.l.Append(context.Background(), custody.Event{Type: custody.Vaulted, Actor: "t", Camera: "CAM", Item: id, SHA256: it.SHA256}, &it); err != nil {
		t.Fatal(err)
	}
	return it
}

func TestPendingPutsUrgentFirst(t *testing.T) {
	f := newFixture(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := f.item(t, 1, "uncategorized", t0)
	b := f.item(t, 2, "incident", t0.Add(time.Hour))
	c := f.item(t, 3, "uncategorized", t0.Add(-time.Hour))
	d := f.item(t, 4, "incident", t0.Add(-time.Minute))
	ids, err := f.u.pending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{d.ID, b.ID, c.ID, a.ID}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("queue %v, want %v (incident first, then oldest first)", ids, want)
	}
}

// A recorded version the store no longer has is a permanent verify
// failure, recorded once as VERIFY_FAILED (vanished), never spun on.
func TestVanishedVersionIsPermanent(t *testing.T) {
	f := newFixture(t)
	it := f.item(t, 1, "uncategorized", time.Now())
	ctx := context.Background()
	var stats sync.Mutex
	vanish := false
	// The first verify fails transiently; from then on the version is gone.
	f.store.SetHook(func(op, key string) error {
		if op == "stat" {
			stats.Lock()
			defer stats.Unlock()
			if vanish {
				return fmt.Errorf("version gone: %w", objstore.ErrNotFound)
			}
			vanish = true
			return errors.New("connection reset")
		}
		return nil
	})
	if err := f.u.Process(ctx, it.ID); err == nil || errors.Is(err, ErrPermanent) {
		t.Fatalf("first attempt: %v, want a transient error", err)
	}
	for range 3 {
		if err := f.u.Process(ctx, it.ID); !errors.Is(err, ErrPermanent) {
			t.Fatalf("verify of a vanished version: %v, want ErrPermanent", err)
		}
	}
	evs, _ := f.l.Custody(ctx, it.ID)
	n := 0
	for _, e := range evs {
		if e.Type == custody.VerifyFailed {
			n++
			if e.Details["vanished"] != "true" || e.Details["permanent"] != "true" {
				t.Errorf("VERIFY_FAILED details %v", e.Details)
			}
		}
		if e.Type == custody.Verified {
			t.Error("a vanished version was recorded VERIFIED")
		}
	}
	if n != 1 {
		t.Errorf("%d VERIFY_FAILED events, want 1", n)
	}
	got, _ := f.l.Item(ctx, it.ID)
	if got.State != custody.StateUploaded || got.LastError == "" {
		t.Errorf("item after vanished version: state %s last_error %q", got.State, got.LastError)
	}
}

func TestFindOpenUpload(t *testing.T) {
	ev := func(typ custody.EventType, d map[string]string) custody.Event {
		return custody.Event{Type: typ, Details: d}
	}
	started := func(id string) custody.Event {
		return ev(custody.UploadStarted, map[string]string{"upload_id": id, "key": "k", "part_size": "8388608", "parts": "3"})
	}
	tests := []struct {
		name   string
		evs    []custody.Event
		want   string
		nParts int
	}{
		{"none", nil, "", 0},
		{"started", []custody.Event{started("u1")}, "u1", 0},
		{"parts", []custody.Event{started("u1"), ev(custody.UploadParts, map[string]string{"upload_id": "u1", "part_1": "aa 5 e", "part_2": "bb 5 e"})}, "u1", 2},
		{"other upload's parts", []custody.Event{started("u2"), ev(custody.UploadParts, map[string]string{"upload_id": "u1", "part_1": "aa 5 e"})}, "u2", 0},
		{"aborted", []custody.Event{started("u1"), ev(custody.UploadAborted, map[string]string{"upload_id": "u1"})}, "", 0},
		{"restarted", []custody.Event{started("u1"), ev(custody.UploadAborted, map[string]string{"upload_id": "u1"}), started("u3")}, "u3", 0},
		{"uploaded", []custody.Event{started("u1"), ev(custody.Uploaded, nil)}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := findOpenUpload(tt.evs)
			got, n := "", 0
			if st != nil {
				got, n = st.uploadID, len(st.recorded)
				if st.partSize != 8388608 || st.parts != 3 || st.key != "k" {
					t.Errorf("open upload %+v", st)
				}
			}
			if got != tt.want || n != tt.nParts {
				t.Errorf("open upload %q with %d parts, want %q with %d", got, n, tt.want, tt.nParts)
			}
		})
	}
}

func TestLimiterPacesAndFollowsWindows(t *testing.T) {
	var mu sync.Mutex
	clock := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	u := config.Upload{Bandwidth: 1 << 20, Windows: []config.Window{{From: "22:00", To: "06:00", Bandwidth: 0}}}
	if NewLimiter(config.Upload{}) != nil {
		t.Error("a limiter without any cap")
	}
	if NewLimiter(u) == nil {
		t.Fatal("no limiter for a 1 MiB/s cap")
	}
	l := NewRateLimiter(u.BandwidthAt, now)
	ctx := context.Background()
	// The first burst (0.1 s worth, at least 64 KiB) is free; then 1 MiB
	// more at 1 MiB/s needs ~1 s: with a cancelled context the wait is cut
	// short, which shows the limiter wanted to wait.
	if err := l.WaitN(ctx, 64<<10); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.WaitN(cctx, 1<<20); !errors.Is(err, context.Canceled) {
		t.Errorf("1 MiB over the cap with a cancelled context: %v, want context.Canceled", err)
	}
	// At night the window lifts the cap: no wait at all.
	mu.Lock()
	clock = time.Date(2026, 1, 1, 23, 30, 0, 0, time.UTC)
	mu.Unlock()
	if err := l.WaitN(cctx, 100<<20); !errors.Is(err, context.Canceled) {
		// Unlimited returns ctx.Err() without waiting.
		t.Errorf("unlimited: %v", err)
	}
	if err := l.WaitN(ctx, 100<<20); err != nil {
		t.Errorf("unlimited window: %v", err)
	}
	for _, tc := range []struct {
		at   string
		want int64
	}{{"21:59", 1 << 20}, {"22:00", 0}, {"03:00", 0}, {"05:59", 0}, {"06:00", 1 << 20}} {
		tm, _ := time.Parse("15:04", tc.at)
		if got := u.BandwidthAt(tm); got != tc.want {
			t.Errorf("bandwidth at %s: %d, want %d", tc.at, got, tc.want)
		}
	}
}

// Every transient failure is counted by its step (the monitoring's only
// view of a store that keeps failing: nothing goes to the ledger), a
// permanent one is not, and neither is an attempt cut short by shutdown.
func TestTransientFailuresCountedByStep(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.item(t, 1, "uncategorized", time.Now())
	b := f.item(t, 2, "uncategorized", time.Now())
	c := f.item(t, 3, "uncategorized", time.Now())
	shutdown, stop := context.WithCancel(ctx)
	defer stop()
	var mu sync.Mutex
	fails := map[string]int{"put": 2, "stat": 1}
	f.store.SetHook(func(op, key string) error {
		mu.Lock()
		defer mu.Unlock()
		if strings.Contains(key, b.ID) && op == "put" {
			return fmt.Errorf("refused: %w", objstore.ErrAccessDenied)
		}
		if strings.Contains(key, c.ID) && op == "put" {
			stop() // the daemon shuts down while c is being sent
			return context.Canceled
		}
		if fails[op] > 0 {
			fails[op]--
			return errors.New("connection reset by peer")
		}
		return nil
	})
	for i := 0; ; i++ {
		err := f.u.Process(ctx, a.ID)
		if err == nil {
			break
		}
		if errors.Is(err, ErrPermanent) || i > 10 {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if err := f.u.Process(ctx, b.ID); !errors.Is(err, ErrPermanent) {
		t.Fatalf("access denied: %v, want ErrPermanent", err)
	}
	if err := f.u.Process(shutdown, c.ID); !errors.Is(err, context.Canceled) {
		t.Fatalf("upload cut short by shutdown: %v, want context.Canceled", err)
	}
	got := f.u.TransientFailures()
	if want := map[string]uint64{"upload": 2, "verify": 1}; !maps.Equal(got, want) {
		t.Errorf("transient failures %v, want %v", got, want)
	}
	got["upload"] = 99
	if f.u.TransientFailures()["upload"] != 2 {
		t.Error("TransientFailures returned the Uploader's own map")
	}
}
