package upload

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/ingest"
	"github.com/evidenced/evidenced/internal/vault"
)

// TestPartSumsKeyFlipped: upload.part_sums_at_ingest is read by the ingest
// alone; the uploader goes by what each item's VAULTED record holds. So a
// vault docked with the key one way uploads correctly after the key is
// turned the other way (a host upgraded to the default on, or one turned
// off again):
//   - docked off, uploaded with it on: VAULTED names no part sums and none
//     are kept; the upload hashes the vault copy (the streamed-hash path);
//   - docked on, uploaded with it off: the recorded part sums are used, the
//     upload hashes nothing.
//
// Either way the item is verified and the store holds exactly the
// recording's bytes (read back from the server). Real ingest, vault,
// ledger and versitygw; a 3-part recording.
func TestPartSumsKeyFlipped(t *testing.T) {
	for _, c := range []struct {
		name               string
		atIngest, atUpload bool
	}{
		{"docked off, uploaded on", false, true},
		{"docked on, uploaded off", true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newVaultRig(t)
			hashed := countHashing(t)
			dockCfg := *r.cfg
			dockCfg.Cameras = []config.Camera{{Serial: "BWC-0001", Kind: "body", AssignedTo: "officer-1"}}
			dockCfg.Upload.PartSumsAtIngest = c.atIngest
			data := pattern(2*(8<<20)+4099, 7)
			cam := t.TempDir()
			if err := os.MkdirAll(filepath.Join(cam, "DCIM"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(cam, "DCIM", "A.MP4"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			res, err := ingest.New(&dockCfg, r.l, r.v, nil).Dock(r.ctx, ingest.Request{Serial: "BWC-0001", Root: cam, Actor: "t", Via: "test"}, nil)
			if err != nil || !res.SafeToUndock {
				t.Fatalf("dock with part_sums_at_ingest %v: %+v %v", c.atIngest, res, err)
			}
			var it custody.Item
			if err := r.l.Items(r.ctx, custody.Filter{}, func(i custody.Item) error { it = i; return nil }); err != nil || it.ID == "" {
				t.Fatalf("no item after the dock (%v)", err)
			}
			evs, err := r.l.Custody(r.ctx, it.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				if _, named := e.Details[vault.DetailPartSums]; e.Type == custody.Vaulted && named != c.atIngest {
					t.Fatalf("VAULTED names part sums: %v, want %v (docked with the key %v)", named, c.atIngest, c.atIngest)
				}
			}

			upCfg := dockCfg
			upCfg.Upload.PartSumsAtIngest = c.atUpload
			if err := New(&upCfg, r.l, r.v, r.store, "unit", nil).Process(r.ctx, it.ID); err != nil {
				t.Fatalf("upload with part_sums_at_ingest %v: %v", c.atUpload, err)
			}
			got, err := r.l.Item(r.ctx, it.ID)
			if err != nil || got.State != custody.StateVerified {
				t.Fatalf("item is %s (%v), want verified", got.State, err)
			}
			if n := hashed.Load(); (n > 0) == c.atIngest {
				t.Errorf("the upload hashed the vault copy %d times; want hashing only where no part sums were recorded (recorded: %v)", n, c.atIngest)
			}
			body, err := r.st.Open(r.ctx, got.ObjectKey, got.VersionID)
			if err != nil {
				t.Fatal(err)
			}
			defer body.Close()
			stored, err := io.ReadAll(body)
			if err != nil {
				t.Fatal(err)
			}
			if digest.Bytes(stored) != digest.Bytes(data) || int64(len(stored)) != got.Size {
				t.Errorf("the store holds %d bytes that do not read back as the recording's %d", len(stored), len(data))
			}
		})
	}
}
