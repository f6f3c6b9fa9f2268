package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
)

// openVaultOnly opens a Service on a fresh vault-only host with one camera
// in its inventory, the way any front end (CLI, control socket, console)
// does.
func openVaultOnly(t *testing.T) (*Service, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(context.Background(), testConfig(t, dir, ""), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

// testConfig is a host with one camera in its inventory and its state under
// dir; extra is appended to the YAML (an object_store section, timeouts).
func testConfig(t testing.TB, dir, extra string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`host_id: test-dock
state_dir: %s
retention:
  default_class: uncategorized
  classes:
    - {name: uncategorized, days: 90, mode: GOVERNANCE}
cameras:
  - {serial: BWC-0001, kind: body, assigned_to: officer-4711}
vault_reserve: 0
`, filepath.Join(dir, "state"))+extra), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The operations are the service's, with typed results: another front end
// gets the same records and the same refusals as the CLI without parsing
// any text.
func TestOperationsWithoutTheCLI(t *testing.T) {
	ctx := context.Background()
	s, dir := openVaultOnly(t)
	who := Caller{Actor: "investigator-1", Peer: "uid=1000,pid=42"}

	cam := filepath.Join(dir, "cam")
	os.MkdirAll(filepath.Join(cam, "DCIM"), 0o755)
	body := bytes.Repeat([]byte("footage "), 4096)
	if err := os.WriteFile(filepath.Join(cam, "DCIM", "A.MP4"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ingest(ctx, who, IngestOptions{Camera: "BWC-0001", From: filepath.Join(dir, "nowhere")}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ingest from a missing folder: %v, want ErrInvalid", err)
	}
	rep, err := s.Ingest(ctx, who, IngestOptions{Camera: "BWC-0001", From: cam})
	if err != nil || !rep.Ran || !rep.SafeToUndock || len(rep.Recorded) != 1 {
		t.Fatalf("ingest: %+v, %v", rep, err)
	}
	it := rep.Recorded[0]

	items, err := s.Find(ctx, who, FindOptions{Filter: custody.Filter{AssignedTo: "officer-4711"}, Reason: "complaint 7"})
	if err != nil || len(items) != 1 || items[0].ID != it.ID {
		t.Fatalf("find: %v, %v", items, err)
	}
	// On a dock host a page past the results is empty; the total stays.
	if p, err := s.FindPage(ctx, who, FindOptions{Filter: custody.Filter{AssignedTo: "officer-4711"}, Offset: 1, Limit: 10}); err != nil || p.Total != 1 || len(p.Items) != 0 {
		t.Fatalf("find, offset 1: %+v, %v", p, err)
	}
	if err := s.Get(ctx, who, GetOptions{ID: it.ID, Reason: " "}, &bytes.Buffer{}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("get with a blank reason: %v, want ErrInvalid", err)
	}
	if err := s.Get(ctx, who, GetOptions{ID: "no-such-item", Reason: "r"}, &bytes.Buffer{}, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("get of an unknown item: %v, want ErrNotFound", err)
	}
	var got bytes.Buffer
	var started custody.Item
	if err := s.Get(ctx, who, GetOptions{ID: it.ID, Reason: "review", Out: "-"}, &got, func(i custody.Item) { started = i }); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), body) || started.ID != it.ID {
		t.Errorf("get: %d bytes, started with %q", got.Len(), started.ID)
	}

	// A vault copy changed behind the ledger's back: verify finds it, get
	// refuses it as an integrity failure and records the attempt as failed.
	if err := os.Chmod(it.VaultPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(it.VaultPath, append([]byte("X"), body[1:]...), 0o644); err != nil {
		t.Fatal(err)
	}
	vr, err := s.Verify(ctx, who, VerifyOptions{Reason: "audit"})
	if err != nil || vr.OK || len(vr.Problems) != 1 || vr.Problems[0].Item != it.ID || !vr.Complete() {
		t.Errorf("verify: %+v, %v", vr, err)
	}
	// The counts say what was checked and what of it failed.
	if vr.Vault != 1 || vr.VaultFailed != 1 {
		t.Errorf("verify counted %d vault files checked, %d failed; want 1 checked, 1 failed", vr.Vault, vr.VaultFailed)
	}
	if err := s.Get(ctx, who, GetOptions{ID: it.ID, Reason: "review again"}, &bytes.Buffer{}, nil); !errors.Is(err, ErrIntegrity) {
		t.Errorf("get of a changed vault copy: %v, want ErrIntegrity", err)
	}

	// Every access is on record, in order, with its outcome where it failed;
	// the listing of accesses is one too.
	evs, err := s.Accesses(ctx, who, AccessFilter{Actor: "investigator-1", Since: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, ev := range evs {
		trail = append(trail, ev.Details["action"]+":"+ev.Details["outcome"])
		if ev.Details["peer"] != who.Peer {
			t.Errorf("%s recorded without the peer: %v", ev.Details["action"], ev.Details)
		}
	}
	want := "[find: find: retrieve: verify:1 problem(s) retrieve: retrieve:failed]"
	if fmt.Sprint(trail) != want {
		t.Errorf("access trail %v, want %s", trail, want)
	}
	again, _ := s.Accesses(ctx, who, AccessFilter{})
	if last := again[len(again)-1]; last.Details["action"] != "access" || last.Details["results"] != fmt.Sprint(len(evs)) {
		t.Errorf("the listing itself is recorded as %v", last.Details)
	}
}
