package upload

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
	"github.com/evidenced/evidenced/internal/objstore/storetest"
)

// TestMultipartLockReapplied: on a store that drops the lock and tags of a
// multipart upload and returns no ETag (memstore with Ceph RGW's quirks),
// the uploader applies the lock and tags to the new version, records what
// it applied and the ETag the store reports, and the item ends verified.
// A single put, which keeps its lock, applies nothing.
func TestMultipartLockReapplied(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := custody.Open(filepath.Join(dir, "ledger.db"), custody.Options{Host: "unit"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := config.Default()
	cfg.HostID = "unit"
	cfg.Retention.Classes = []config.Class{{Name: "uncategorized", Days: 3, Mode: config.ModeCompliance}}
	st := &memstore.Store{MultipartThreshold: 8 << 20, NoChecksums: true, MultipartDropsLock: true}
	u := New(cfg, l, dirVault{dir}, st, "unit", nil)
	for n, size := range []int{storetest.MultipartSize, 1000} {
		b := storetest.RandBytes(uint64(n), size)
		id := string(rune('a'+n)) + "00000000000000000000001"
		if err := os.WriteFile(filepath.Join(dir, id), b, 0o600); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		it := custody.Item{ID: id, Camera: "CAM", Kind: "body", AssignedTo: "x", SourcePath: "V.MP4", Size: int64(size),
			SHA256: digest.Bytes(b).Hex(), RecordedAt: now, IngestedAt: now, State: custody.StateVaulted, RetentionClass: "uncategorized"}
		if _, err := l.Append(ctx, custody.Event{Type: custody.Vaulted, Actor: "t", Camera: "CAM", Item: id, SHA256: it.SHA256}, &it); err != nil {
			t.Fatal(err)
		}
		if err := u.Process(ctx, id); err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		it, _ = l.Item(ctx, id)
		info, err := st.Stat(ctx, it.ObjectKey, it.VersionID)
		if err != nil {
			t.Fatal(err)
		}
		if it.State != custody.StateVerified || info.LockMode != config.ModeCompliance || !info.RetainUntil.Equal(it.RetainUntil) ||
			info.Tags["sha256"] != it.SHA256 || info.Tags["camera"] != "CAM" {
			t.Errorf("%d bytes: item %s, stored lock %q until %v (want %v), tags %v", size, it.State, info.LockMode, info.RetainUntil, it.RetainUntil, info.Tags)
		}
		evs, _ := l.Custody(ctx, id)
		var d map[string]string
		for _, e := range evs {
			if e.Type == custody.Uploaded {
				d = e.Details
			}
		}
		want := "retention,tags"
		if size < storetest.MultipartSize {
			want = ""
		}
		if d["applied_after_upload"] != want || d["etag"] == "" || d["etag"] != info.ETag {
			t.Errorf("%d bytes: UPLOADED applied_after_upload %q (want %q), etag %q (store: %q)", size, d["applied_after_upload"], want, d["etag"], info.ETag)
		}
	}
}
