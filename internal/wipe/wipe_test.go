package wipe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/ingest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
	"github.com/evidenced/evidenced/internal/upload"
	"github.com/evidenced/evidenced/internal/vault"
)

// fixture is one host with a camera folder whose one file was ingested,
// uploaded to an in-memory store and verified: the starting point of every
// wipe.
type fixture struct {
	cfg    *config.Config
	ledger *custody.Ledger
	vault  *vault.Vault
	store  *memstore.Store
	w      *Wiper
	cam    string
	file   string // absolute path of the camera file
	data   []byte
	id     string
	now    time.Time
	free   uint64 // fake free space when freeSet
	fake   bool
}

const rel = "DCIM/100MEDIA/VID_0001.MP4"

func testConfig(t *testing.T, extra string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(`host_id: unit
state_dir: /tmp/unused
object_store: {bucket: evidence}
retention:
  default_class: uncategorized
  classes:
    - {name: uncategorized, days: 90, mode: GOVERNANCE}
    - {name: incident, days: 2555, mode: COMPLIANCE}
cameras:
  - {serial: BWC-0001, kind: body, assigned_to: officer-1}
  - {serial: BWC-0002, kind: body, assigned_to: officer-2, wipe_after_verify: false}
vault_reserve: 0
upload: {retry_min: 1ms, retry_max: 2ms}
`+extra), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// freeVault lets a test say how much space the vault's file system has.
type freeVault struct {
	*vault.Vault
	f *fixture
}

func (v freeVault) Free() (uint64, error) {
	if v.f.fake {
		return v.f.free, nil
	}
	return v.Vault.Free()
}

func newFixture(t *testing.T, extra string) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{cfg: testConfig(t, extra), store: memstore.New(), now: time.Now()}
	var err error
	f.ledger, err = custody.Open(filepath.Join(dir, "ledger.db"), custody.Options{Host: "unit"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var problems []string
		if _, err := f.ledger.Verify(context.Background(), func(p custody.Problem) { problems = append(problems, p.What) }); err != nil || len(problems) > 0 {
			t.Errorf("ledger verify: %v %v", err, problems)
		}
		f.ledger.Close()
	})
	if f.vault, err = vault.Open(filepath.Join(dir, "vault"), nil, vault.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.vault.Close() })
	f.cam = filepath.Join(dir, "media", "BWC-0001")
	f.file = filepath.Join(f.cam, rel)
	f.data = []byte(strings.Repeat("evidence ", 50_000))
	if err := os.MkdirAll(filepath.Dir(f.file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.file, f.data, 0o644); err != nil {
		t.Fatal(err)
	}
	f.w = New(f.cfg, f.ledger, freeVault{f.vault, f}, f.store, Options{Actor: "test", Now: func() time.Time { return f.now }})
	return f
}

// ingest docks the camera and uploads and verifies everything on it.
func (f *fixture) ingest(t *testing.T, serial string) {
	t.Helper()
	ctx := context.Background()
	in := ingest.New(f.cfg, f.ledger, f.vault, nil)
	res, err := in.Dock(ctx, ingest.Request{Serial: serial, Root: f.cam, Actor: "test", Via: "cli"}, nil)
	if err != nil {
		t.Fatalf("dock: %v", err)
	}
	up := upload.New(f.cfg, f.ledger, f.vault, f.store, "test", nil)
	if err := up.Sync(ctx, res.Items, 1); err != nil {
		t.Fatalf("upload: %v", err)
	}
	if len(res.Items) != 1 {
		t.Fatalf("%d items", len(res.Items))
	}
	f.id = res.Items[0]
}

// dock docks the camera as the daemon does, admitted by the wiper on
// ingest's walk, and copies what it is let copy.
func (f *fixture) dock(via string) (ingest.Result, error) {
	in := ingest.New(f.cfg, f.ledger, f.vault, nil)
	in.Admit(f.w)
	return in.Dock(context.Background(), ingest.Request{Serial: "BWC-0001", Root: f.cam, Actor: "test", Via: via}, nil)
}

func (f *fixture) item(t *testing.T) custody.Item {
	t.Helper()
	it, err := f.ledger.Item(context.Background(), f.id)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func (f *fixture) types(t *testing.T) []string {
	t.Helper()
	evs, err := f.ledger.Custody(context.Background(), f.id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		s := string(e.Type)
		if e.Type == custody.WipeChecked {
			s += ":" + e.Details["check"]
		}
		out = append(out, s)
	}
	return out
}

func (f *fixture) sourceExists(t *testing.T) bool {
	t.Helper()
	_, err := os.Lstat(f.file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

var wipedPath = []string{"DOCKED", "COPIED", "VAULTED", "UPLOADED", "VERIFIED", "WIPE_STARTED",
	"WIPE_CHECKED:stream_vault", "WIPE_CHECKED:store", "WIPE_CHECKED:lock", "WIPE_UNLINKING", "WIPED"}

func TestWipeAllConditionsHold(t *testing.T) {
	for _, verifySource := range []bool{false, true} {
		t.Run(fmt.Sprintf("verify_source=%v", verifySource), func(t *testing.T) {
			f := newFixture(t, fmt.Sprintf("wipe_after_verify: true\nverify_source_before_wipe: %v\n", verifySource))
			f.ingest(t, "BWC-0001")
			if err := f.w.Wipe(context.Background(), f.id); err != nil {
				t.Fatalf("wipe: %v", err)
			}
			if f.sourceExists(t) {
				t.Fatal("the camera file is still there after WIPED")
			}
			want := slices.Clone(wipedPath)
			if verifySource {
				want = slices.Insert(want, 9, "WIPE_CHECKED:source")
			}
			if got := f.types(t); !slices.Equal(got, want) {
				t.Errorf("custody %v\nwant    %v", got, want)
			}
			// Idempotent: a second call records nothing more.
			if err := f.w.Wipe(context.Background(), f.id); err != nil {
				t.Fatalf("second wipe: %v", err)
			}
			if got := f.types(t); len(got) != len(want) {
				t.Errorf("second call added events: %v", got)
			}
			// Everything else on the camera (the folders) is untouched.
			if _, err := os.Stat(filepath.Dir(f.file)); err != nil {
				t.Errorf("camera folder: %v", err)
			}
		})
	}
}

// TestWipeRefusedUnlessEveryConditionHolds injects the failure of each
// condition in turn: the file stays, WIPE_REFUSED names the check, WIPED is
// never recorded, and a later call does not try again.
func TestWipeRefusedUnlessEveryConditionHolds(t *testing.T) {
	tests := []struct {
		name   string
		extra  string
		check  string
		inject func(t *testing.T, f *fixture)
	}{
		{"corrupt vault copy", "", CheckStreamVault, func(t *testing.T, f *fixture) {
			p := f.vault.Path(f.id)
			os.Chmod(p, 0o640)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			if err := os.WriteFile(p, b, 0o440); err != nil {
				t.Fatal(err)
			}
		}},
		{"vault copy missing", "", CheckStreamVault, func(t *testing.T, f *fixture) {
			os.Remove(f.vault.Path(f.id))
		}},
		{"object replaced by a new version", "", CheckStore, func(t *testing.T, f *fixture) {
			other := []byte("not the evidence")
			if _, err := f.store.Put(context.Background(), objstore.PutRequest{
				Key: f.item(t).ObjectKey, Body: strings.NewReader(string(other)), Size: int64(len(other)), SHA256: digest.Bytes(other),
			}); err != nil {
				t.Fatal(err)
			}
		}},
		{"newer version claiming the recorded sha256", "", CheckStore, func(t *testing.T, f *fixture) {
			// Another client's write whose metadata copies ours: the
			// recorded version still verifies, but it is no longer what a
			// GET of the key returns.
			it := f.item(t)
			other := []byte("not the evidence, same claim")
			if _, err := f.store.Put(context.Background(), objstore.PutRequest{
				Key: it.ObjectKey, Body: strings.NewReader(string(other)), Size: int64(len(other)), SHA256: digest.Bytes(other),
				Metadata: map[string]string{"sha256": it.SHA256},
			}); err != nil {
				t.Fatal(err)
			}
		}},
		{"store holds other bytes", "", CheckStore, func(t *testing.T, f *fixture) {
			f.store.Corrupt(f.item(t).ObjectKey)
		}},
		{"object gone", "", CheckStore, func(t *testing.T, f *fixture) {
			f.store.Fail(objstore.ErrNotFound)
		}},
		{"retention missing", "", CheckLock, func(t *testing.T, f *fixture) {
			it := f.item(t)
			if err := f.store.ClearRetention(it.ObjectKey, it.VersionID); err != nil {
				t.Fatal(err)
			}
		}},
		{"retention expired", "", CheckLock, func(t *testing.T, f *fixture) {
			f.now = time.Now().AddDate(1, 0, 0)
		}},
		{"source changed, same size and mtime", "verify_source_before_wipe: true\n", CheckSource, func(t *testing.T, f *fixture) {
			st, _ := os.Stat(f.file)
			b := append([]byte{}, f.data...)
			b[0] ^= 1
			fh, err := os.OpenFile(f.file, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			fh.WriteAt(b[:1], 0)
			fh.Close()
			os.Chtimes(f.file, st.ModTime(), st.ModTime())
		}},
		{"source rewritten", "", string(StepStart), func(t *testing.T, f *fixture) {
			os.WriteFile(f.file, append(f.data, 'x'), 0o644)
		}},
		{"source replaced by a link", "", string(StepStart), func(t *testing.T, f *fixture) {
			os.Rename(f.file, f.file+".moved")
			os.Symlink(f.file+".moved", f.file)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "wipe_after_verify: true\n"+tt.extra)
			f.ingest(t, "BWC-0001")
			f.store.Fail(nil)
			tt.inject(t, f)
			f.store.Fail(nil)
			if tt.name == "object gone" {
				f.store.Fail(objstore.ErrNotFound)
			}
			err := f.w.Wipe(context.Background(), f.id)
			f.store.Fail(nil)
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("wipe: %v, want ErrRefused", err)
			}
			if _, err := os.Lstat(f.file); err != nil {
				t.Fatalf("the camera file is gone: %v", err)
			}
			got := f.types(t)
			if slices.Contains(got, "WIPED") || slices.Contains(got, "WIPE_UNLINKING") {
				t.Fatalf("custody %v", got)
			}
			evs, _ := f.ledger.Custody(context.Background(), f.id)
			last := evs[len(evs)-1]
			if last.Type != custody.WipeRefused || last.Details["check"] != tt.check || last.Details["reason"] == "" {
				t.Errorf("last event %s %v, want WIPE_REFUSED for check %s", last.Type, last.Details, tt.check)
			}
			if slices.Contains(got, "WIPE_CHECKED:"+tt.check) {
				t.Errorf("the failed check %s was recorded as passed: %v", tt.check, got)
			}
			if err := f.w.Wipe(context.Background(), f.id); !errors.Is(err, ErrGaveUp) {
				t.Errorf("second call: %v, want ErrGaveUp", err)
			}
			if n := len(f.types(t)); n != len(got) {
				t.Errorf("second call recorded more events")
			}
		})
	}
}

// TestWipeKilledBetweenSteps stops the state machine before each step in
// turn (as a kill would), checks the file is still there unless the unlink
// already ran, then resumes from the ledger: the wipe completes with each
// step recorded exactly once.
func TestWipeKilledBetweenSteps(t *testing.T) {
	kill := errors.New("killed")
	for _, at := range Steps {
		t.Run(string(at), func(t *testing.T) {
			f := newFixture(t, "wipe_after_verify: true\nverify_source_before_wipe: true\n")
			f.ingest(t, "BWC-0001")
			var seen []Step
			f.w.o.BeforeStep = func(_ string, s Step) error {
				seen = append(seen, s)
				if s == at {
					return kill
				}
				return nil
			}
			if err := f.w.Wipe(context.Background(), f.id); !errors.Is(err, kill) {
				t.Fatalf("wipe: %v, want the injected stop", err)
			}
			unlinked := at == StepRecord
			if f.sourceExists(t) == unlinked {
				t.Fatalf("stopped before %s: source exists = %v", at, !unlinked)
			}
			if slices.Contains(f.types(t), "WIPED") {
				t.Fatal("WIPED recorded before the last step")
			}
			// "Restart": a new Wiper, state from the ledger only.
			var resumed []Step
			w2 := New(f.cfg, f.ledger, f.vault, f.store, Options{Actor: "test", BeforeStep: func(_ string, s Step) error {
				resumed = append(resumed, s)
				return nil
			}})
			if err := w2.Wipe(context.Background(), f.id); err != nil {
				t.Fatalf("resume: %v", err)
			}
			if f.sourceExists(t) {
				t.Fatal("resumed wipe left the file")
			}
			// The unlink is not recorded until WIPED, so after a stop at
			// "record" it is re-entered, finds the file gone and says so.
			wantAt := at
			if at == StepRecord {
				wantAt = StepUnlink
			}
			if resumed[0] != wantAt {
				t.Errorf("resumed at %s, want %s (steps %v)", resumed[0], wantAt, resumed)
			}
			evs, _ := f.ledger.Custody(context.Background(), f.id)
			if note := evs[len(evs)-1].Details["note"]; (note != "") != (at == StepRecord) {
				t.Errorf("WIPED note %q after a stop before %s", note, at)
			}
			want := slices.Insert(slices.Clone(wipedPath), 9, "WIPE_CHECKED:source")
			if got := f.types(t); !slices.Equal(got, want) {
				t.Errorf("custody %v\nwant    %v", got, want)
			}
		})
	}
}

// TestWipeResumeRechecksIdentity: the camera file is replaced (same size
// and mtime, new inode) while the process is down after the checks: the
// resumed unlink refuses it, and a new attempt re-checks from the start.
func TestWipeResumeRechecksIdentity(t *testing.T) {
	f := newFixture(t, "wipe_after_verify: true\nverify_source_before_wipe: true\n")
	f.ingest(t, "BWC-0001")
	stop := errors.New("stop")
	f.w.o.BeforeStep = func(_ string, s Step) error {
		if s == StepUnlink {
			return stop
		}
		return nil
	}
	if err := f.w.Wipe(context.Background(), f.id); !errors.Is(err, stop) {
		t.Fatal(err)
	}
	st, _ := os.Stat(f.file)
	tmp := f.file + ".new"
	os.WriteFile(tmp, f.data, 0o644)
	os.Chtimes(tmp, st.ModTime(), st.ModTime())
	os.Rename(tmp, f.file)
	f.w.o.BeforeStep = nil
	if err := f.w.Wipe(context.Background(), f.id); !errors.Is(err, ErrRefused) {
		t.Fatalf("wipe after swap: %v, want ErrRefused", err)
	}
	if !f.sourceExists(t) {
		t.Fatal("a file that was not the one checked was deleted")
	}
	// retry=true: the next call starts over and, the content being the
	// same, wipes it after checking it again.
	if err := f.w.Wipe(context.Background(), f.id); err != nil {
		t.Fatalf("new attempt: %v", err)
	}
	got := f.types(t)
	if n := strings.Count(strings.Join(got, " "), "WIPE_STARTED"); n != 2 || got[len(got)-1] != "WIPED" {
		t.Errorf("custody %v", got)
	}
}

func TestWipeNotEnabledOrNotThere(t *testing.T) {
	f := newFixture(t, "")
	f.ingest(t, "BWC-0001")
	if err := f.w.Wipe(context.Background(), f.id); !errors.Is(err, ErrNotEnabled) {
		t.Fatalf("wipe with the rule off: %v", err)
	}
	if !f.sourceExists(t) {
		t.Fatal("deleted with the rule off")
	}

	f = newFixture(t, "wipe_after_verify: true\n")
	f.ingest(t, "BWC-0001")
	os.Rename(f.cam, f.cam+".undocked")
	n := len(f.types(t))
	if err := f.w.Wipe(context.Background(), f.id); !errors.Is(err, ErrSourceAbsent) {
		t.Fatalf("wipe of an undocked camera: %v", err)
	}
	if len(f.types(t)) != n {
		t.Errorf("an absent camera recorded events: %v", f.types(t))
	}
	os.Rename(f.cam+".undocked", f.cam)
	if err := f.w.Wipe(context.Background(), f.id); err != nil {
		t.Fatalf("wipe after re-dock: %v", err)
	}
}

func TestHookRunsWipeAfterVerified(t *testing.T) {
	f := newFixture(t, "wipe_after_verify: true\n")
	ctx := context.Background()
	in := ingest.New(f.cfg, f.ledger, f.vault, nil)
	res, err := in.Dock(ctx, ingest.Request{Serial: "BWC-0001", Root: f.cam, Actor: "test", Via: "cli"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.id = res.Items[0]
	up := upload.New(f.cfg, OnVerified(f.ledger, f.w.Notify), f.vault, f.store, "test", nil)
	if err := up.Sync(ctx, res.Items, 1); err != nil {
		t.Fatal(err)
	}
	if f.sourceExists(t) {
		t.Fatal("not wiped after VERIFIED")
	}
	if got := f.types(t); !slices.Equal(got, wipedPath) {
		t.Errorf("custody %v", got)
	}
}

func TestReleaseAfterGrace(t *testing.T) {
	f := newFixture(t, "vault: {grace: 1h}\n")
	f.ingest(t, "BWC-0001")
	ctx := context.Background()
	if err := f.w.Release(ctx, f.id); !errors.Is(err, ErrNotYet) {
		t.Fatalf("release within grace: %v", err)
	}
	if ok, _ := f.vault.Exists(f.id); !ok {
		t.Fatal("released within grace")
	}
	f.now = f.now.Add(2 * time.Hour)
	if err := f.w.Release(ctx, f.id); err != nil {
		t.Fatalf("release: %v", err)
	}
	if ok, _ := f.vault.Exists(f.id); ok {
		t.Fatal("vault copy still there")
	}
	it := f.item(t)
	if it.VaultPath != "" || it.State != custody.StateVerified {
		t.Errorf("item after release: %+v", it)
	}
	if got := f.types(t); got[len(got)-1] != "VAULT_RELEASED" {
		t.Errorf("custody %v", got)
	}
	// Idempotent, and a copy left by a crash after the record is removed.
	os.MkdirAll(filepath.Dir(f.vault.Path(f.id)), 0o750)
	os.WriteFile(f.vault.Path(f.id), f.data, 0o440)
	if err := f.w.Release(ctx, f.id); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.vault.Exists(f.id); ok {
		t.Fatal("leftover copy not removed")
	}
	if got := f.types(t); strings.Count(strings.Join(got, " "), "VAULT_RELEASED") != 1 {
		t.Errorf("custody %v", got)
	}
}

func TestReleaseNeverBeforeVerified(t *testing.T) {
	f := newFixture(t, "vault: {grace: 1ns}\n")
	ctx := context.Background()
	in := ingest.New(f.cfg, f.ledger, f.vault, nil)
	res, err := in.Dock(ctx, ingest.Request{Serial: "BWC-0001", Root: f.cam, Actor: "test", Via: "cli"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.id = res.Items[0]
	f.now = f.now.AddDate(10, 0, 0)
	if err := f.w.Release(ctx, f.id); !errors.Is(err, ErrNotYet) {
		t.Fatalf("release of a vaulted item: %v", err)
	}
	if ok, _ := f.vault.Exists(f.id); !ok {
		t.Fatal("an unverified copy was released")
	}
}

func TestAdmitDock(t *testing.T) {
	f := newFixture(t, "vault: {min_free: 1MiB}\n")
	ctx := context.Background()
	f.fake = true
	f.free = uint64(len(f.data)) + 1<<20 - 1 // one byte short
	_, err := f.dock("cli")
	if !errors.Is(err, ErrVaultFull) || !errors.Is(err, ingest.ErrNotAdmitted) || !strings.Contains(err.Error(), "vault full") {
		t.Fatalf("dock with no room: %v", err)
	}
	var refused custody.Event
	var all []string
	f.ledger.Events(ctx, 1, func(e custody.Event) error {
		all = append(all, string(e.Type))
		if e.Type == custody.Refused {
			refused = e
		}
		return nil
	})
	if refused.Camera != "BWC-0001" || refused.Details["need_bytes"] != fmt.Sprint(len(f.data)) || refused.Details["free_bytes"] != fmt.Sprint(f.free) {
		t.Errorf("REFUSED event %+v", refused)
	}
	// Refused before the session opened: the refusal is its only record.
	if !slices.Equal(all, []string{"REFUSED"}) {
		t.Errorf("ledger after a refused dock: %v, want only REFUSED", all)
	}
	f.free++
	if res, err := f.dock("cli"); err != nil || res.Vaulted != 1 {
		t.Fatalf("dock with room: %+v %v", res, err)
	}
	// What is already held needs no room.
	f.free = 1 << 20
	if res, err := f.dock("cli"); err != nil || res.AlreadyHeld != 1 {
		t.Fatalf("re-dock of held footage: %+v %v", res, err)
	}
}

// A USB dock session opened at arrival continues with the camera as it was
// then, even when the inventory in force drops it before the copy pass:
// the pass still copies, so it must still fit. Admission followed the
// inventory in force instead and admitted a camera it no longer found,
// copying a full camera into a vault with no room left.
func TestAdmitDockCameraDroppedAfterArrival(t *testing.T) {
	f := newFixture(t, "vault: {min_free: 1MiB}\n")
	ctx := context.Background()
	in := ingest.New(f.cfg, f.ledger, f.vault, nil)
	in.Admit(f.w)
	req := ingest.Request{Serial: "BWC-0001", Root: "usb:2-1", Actor: "test", Via: "usb"}
	sess, err := in.Arrive(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// A published inventory that no longer lists the camera takes effect.
	f.cfg.SetPublished(&config.Published{Console: "console-1", Version: 1, Cameras: []config.InventoryCamera{
		{Serial: "BWC-0002", Kind: "body", AssignedTo: "officer-2"},
	}})
	if _, ok := f.cfg.Camera("BWC-0001"); ok {
		t.Fatal("BWC-0001 is still in the inventory: the check below proves nothing")
	}
	f.fake = true
	f.free = uint64(len(f.data)) + 1<<20 - 1 // one byte short
	req.Root, req.Session = f.cam, sess
	res, err := in.Dock(ctx, req, nil)
	if !errors.Is(err, ErrVaultFull) || res.Vaulted != 0 {
		t.Fatalf("copy pass with no room, camera dropped after arrival: %+v %v; want ErrVaultFull, nothing copied", res, err)
	}
	var refused custody.Event
	f.ledger.Events(ctx, 1, func(e custody.Event) error {
		if e.Type == custody.Refused {
			refused = e
		}
		return nil
	})
	if refused.Camera != "BWC-0001" || refused.Details["need_bytes"] != fmt.Sprint(len(f.data)) {
		t.Errorf("REFUSED event %+v, want BWC-0001's, naming the bytes it needed", refused)
	}
}

func TestRunWipesAndReleases(t *testing.T) {
	f := newFixture(t, "wipe_after_verify: true\nvault: {grace: 1ns}\n")
	f.ingest(t, "BWC-0001")
	f.now = f.now.Add(time.Second)
	f.w.o.Interval = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.w.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for f.sourceExists(t) || f.item(t).VaultPath != "" {
		if time.Now().After(deadline) {
			t.Fatalf("not wiped and released: %v", f.types(t))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := f.types(t)
	if i, j := slices.Index(got, "WIPED"), slices.Index(got, "VAULT_RELEASED"); i < 0 || j < i {
		t.Errorf("custody %v: want WIPED, then VAULT_RELEASED", got)
	}
}

func TestRefusedWatchedDockResumesWhenRoomFrees(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	f.fake, f.free = true, 10
	got := make(chan string, 4)
	f.w.RetryDocks(func(serial, root string) { got <- serial + "@" + root })
	if _, err := f.dock("watch"); !errors.Is(err, ErrVaultFull) {
		t.Fatalf("dock: %v", err)
	}
	f.w.retryDocks(ctx)
	f.free = 1 << 30
	f.w.retryDocks(ctx) // the first call, still full, retried nothing
	if r := <-got; r != "BWC-0001@"+f.cam {
		t.Errorf("retried %q", r)
	}
	f.w.retryDocks(ctx) // forgotten once retried
	select {
	case r := <-got:
		t.Errorf("retried twice: %q", r)
	default:
	}
	// A dock refused from the CLI is not the daemon's to resume.
	f.free = 10
	if _, err := f.dock("cli"); !errors.Is(err, ErrVaultFull) {
		t.Fatalf("dock from the CLI: %v", err)
	}
	f.free = 1 << 30
	f.w.retryDocks(ctx)
	select {
	case r := <-got:
		t.Errorf("CLI refusal retried: %q", r)
	default:
	}
}

func TestReleaseWaitsForTheWipe(t *testing.T) {
	f := newFixture(t, "wipe_after_verify: true\nvault: {grace: 1ns}\n")
	f.ingest(t, "BWC-0001")
	ctx := context.Background()
	f.now = f.now.Add(time.Hour)
	os.Rename(f.cam, f.cam+".undocked")
	if err := f.w.Release(ctx, f.id); !errors.Is(err, ErrNotYet) {
		t.Fatalf("release before the wipe: %v", err)
	}
	os.Rename(f.cam+".undocked", f.cam)
	if err := f.w.Wipe(ctx, f.id); err != nil {
		t.Fatal(err)
	}
	if err := f.w.Release(ctx, f.id); err != nil {
		t.Fatalf("release after the wipe: %v", err)
	}
	if ok, _ := f.vault.Exists(f.id); ok {
		t.Fatal("vault copy still there")
	}
}
