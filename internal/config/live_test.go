package config

import (
	"slices"
	"testing"
	"time"
)

// After Reload the inventory and the classes follow the new file for every
// holder of the original *Config; the wipe rule and field reads do not; and
// RestartNeeded names exactly the changed keys Reload does not apply.
func TestReload(t *testing.T) {
	store := "object_store: {bucket: evidence}\n"
	start := mustParse(t, minimal+store+"wipe_after_verify: true\ncameras:\n  - {serial: A-1, kind: body, assigned_to: x}\n")
	start.EnableReload()
	next := mustParse(t, store+`host_id: dock-01
state_dir: /var/lib/evidenced
shutdown_timeout: 45s
wipe_after_verify: true
retention:
  classes:
    - {name: uncategorized, days: 120, mode: GOVERNANCE}
upload: {bandwidth: 1MiB}
log_level: debug
cameras:
  - {serial: A-1, kind: body, assigned_to: x}
  - {serial: B-2, kind: body, assigned_to: y}
`)
	if _, ok := start.Camera("B-2"); ok {
		t.Fatal("B-2 known before the reload")
	}
	got := start.RestartNeeded(next)
	if want := []string{"shutdown_timeout"}; !slices.Equal(got, want) {
		t.Errorf("RestartNeeded = %v, want %v", got, want)
	}
	start.Reload(next)
	if _, ok := start.Camera("B-2"); !ok {
		t.Error("Camera does not see a camera added by the reload")
	}
	if cl, _ := start.Class("uncategorized"); cl.Days != 120 {
		t.Errorf("Class after reload: %d days, want 120", cl.Days)
	}
	if start.WipePolicy("B-2").Enabled {
		t.Error("a camera added by a reload is wiped before a restart")
	}
	if !start.WipePolicy("A-1").Enabled {
		t.Error("the start-up wipe policy of A-1 was lost")
	}
	if start.UploadBandwidthAt(time.Now()) != 1<<20 {
		t.Error("upload bandwidth does not follow the reload")
	}
	if start.ShutdownTimeout.Duration == next.ShutdownTimeout.Duration {
		t.Error("a key needing a restart changed in the running config")
	}
}
