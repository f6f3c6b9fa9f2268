package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/testutil/hosttool"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// Issue #13: a console's /metrics passes `promtool check metrics` and says
// what the fleet is: dock-01 trusted and indexed (its catalog lag a
// number of seconds, its checkpoint followed), dock-02 listed with a key
// that is not its own (broken), dock-03 anchoring but not listed
// (untrusted); and how long the last read of the store took.
func TestConsoleMetricsE2E(t *testing.T) {
	tool := hosttool.Find(t, "promtool", "prometheus")
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	keys := map[string]string{}
	for i, id := range []string{"dock-01", "dock-02", "dock-03"} {
		serial := fmt.Sprintf("BWC-%04d", i+1)
		d := newFleetHost(t, srv, bucket, id, fmt.Sprintf("cameras:\n  - {serial: %s, kind: body, assigned_to: officer-%d}\n", serial, i+1))
		keys[id] = d.publicKey()
		cam := filepath.Join(d.dir, "cam")
		writeCamera(t, cam, map[string]int{"DCIM/100MEDIA/VID_0001.MP4": 8 << 10})
		d.must("ingest", "--camera", serial, "--from", cam)
	}
	other, err := signing.Generate("dock-02")
	if err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(t.TempDir(), "dock-02-wrong.pem")
	if err := os.WriteFile(wrong, other.PublicPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	console := newFleetHost(t, srv, bucket, "hq", fmt.Sprintf("role: console\nconsole:\n  poll: 1s\n  hosts:\n    - {id: dock-01, public_key_file: %s}\n    - {id: dock-02, public_key_file: %s}\nmetrics:\n  listen: %s\n",
		keys["dock-01"], wrong, addr))
	console.daemon()
	// The console's inventory lists BWC-0001 (docked at dock-01), BWC-0002
	// (docked only at dock-02, whose history the console cannot trust) and
	// BWC-0099, which never docked.
	inv := filepath.Join(t.TempDir(), "inventory.yaml")
	if err := os.WriteFile(inv, []byte("cameras:\n  - {serial: BWC-0001, kind: body, assigned_to: officer-1}\n"+
		"  - {serial: BWC-0002, kind: body, assigned_to: officer-2}\n  - {serial: BWC-0099, kind: vehicle, assigned_to: car-99}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	console.must("inventory", "publish", inv)

	var got map[string]float64
	var body []byte
	waitFor(t, "the fleet in the console's metrics", 30*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if body, err = io.ReadAll(resp.Body); err != nil || resp.StatusCode != http.StatusOK {
			return false
		}
		got = samples(t, string(body))
		return got[`evidenced_fleet_hosts{state="untrusted"}`] == 1 && got["evidenced_fleet_items"] == 1 && got[`evidenced_fleet_hosts{state="broken"}`] == 1 &&
			got[`evidenced_fleet_cameras{state="never_docked"}`] == 2
	})
	check := exec.Command(tool, "check", "metrics")
	check.Stdin = bytes.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	want := map[string]float64{
		`evidenced_fleet_hosts{state="trusted"}`:      2,
		`evidenced_fleet_hosts{state="untrusted"}`:    1,
		`evidenced_fleet_hosts{state="broken"}`:       1,
		`evidenced_fleet_hosts{state="withheld"}`:     0,
		`evidenced_fleet_host_broken{host="dock-01"}`: 0,
		`evidenced_fleet_host_broken{host="dock-02"}`: 1,
		`evidenced_fleet_host_items{host="dock-01"}`:  1,
		`evidenced_fleet_host_items{host="dock-02"}`:  0,
		`evidenced_fleet_items`:                       1,
		`evidenced_fleet_cameras{state="docked"}`:     1,
		// dock-01's recording was verified before its records were
		// anchored: nothing of it waits.
		`evidenced_fleet_host_unverified_items{host="dock-01"}`:              0,
		`evidenced_fleet_host_unverified_oldest_age_seconds{host="dock-01"}`: 0,
		`evidenced_fleet_cameras{state="not_docked"}`:                        0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if lag, ok := got[`evidenced_fleet_host_last_record_age_seconds{host="dock-01"}`]; !ok || lag <= 0 || lag > 600 {
		t.Errorf("dock-01's catalog lag %v (present %v), want seconds", lag, ok)
	}
	if _, ok := got[`evidenced_fleet_host_last_record_age_seconds{host="dock-02"}`]; ok {
		t.Error("dock-02, broken at its first checkpoint, has a catalog lag")
	}
	if age, ok := got["evidenced_fleet_sync_age_seconds"]; !ok || age > 30 {
		t.Errorf("evidenced_fleet_sync_age_seconds = %v (present %v), want within the poll", age, ok)
	}
	if got[`evidenced_fleet_host_records{host="dock-01"}`] < 5 {
		t.Errorf("dock-01 records indexed: %v", got[`evidenced_fleet_host_records{host="dock-01"}`])
	}
	// The checkpoint followed covers every record indexed; dock-02's first
	// checkpoint broke, so none of its is followed.
	if cp := got[`evidenced_fleet_host_checkpoint_size{host="dock-01"}`]; cp != got[`evidenced_fleet_host_records{host="dock-01"}`] {
		t.Errorf("dock-01's checkpoint size %v, records indexed %v", cp, got[`evidenced_fleet_host_records{host="dock-01"}`])
	}
	if cp, ok := got[`evidenced_fleet_host_checkpoint_size{host="dock-02"}`]; !ok || cp != 0 {
		t.Errorf("dock-02's checkpoint size %v (present %v), want 0", cp, ok)
	}
	if took, ok := got["evidenced_fleet_sync_duration_seconds"]; !ok || took <= 0 || took > 30 {
		t.Errorf("evidenced_fleet_sync_duration_seconds = %v (present %v), want the last pass's seconds", took, ok)
	}
	// Cameras as the fleet's anchored docks say: BWC-0001 at dock-01;
	// none of the broken or the untrusted host.
	if age, ok := got[`evidenced_fleet_camera_last_dock_age_seconds{camera="BWC-0001",host="dock-01"}`]; !ok || age < 0 || age > 600 {
		t.Errorf("BWC-0001's last dock age %v (present %v), want seconds", age, ok)
	}
	for k := range got {
		if strings.HasPrefix(k, "evidenced_fleet_camera_last_dock_age_seconds") && !strings.Contains(k, `camera="BWC-0001"`) {
			t.Errorf("%s: a camera no trusted, sound host's records dock", k)
		}
	}
	// The inventory's cameras no sound record docks, with how long the
	// inventory has listed them (seconds: it was just published).
	for _, cam := range []string{"BWC-0002", "BWC-0099"} {
		k := fmt.Sprintf(`evidenced_fleet_camera_never_docked_age_seconds{camera=%q}`, cam)
		if age, ok := got[k]; !ok || age < 0 || age > 600 {
			t.Errorf("%s = %v (present %v), want seconds since the inventory listed it", k, age, ok)
		}
	}
	if _, ok := got[`evidenced_fleet_camera_never_docked_age_seconds{camera="BWC-0001"}`]; ok {
		t.Error("BWC-0001 docked at dock-01, yet counted as never docked")
	}
	// fleet --json (through the daemon's socket) says the same.
	var fl catalog.Fleet
	if err := json.Unmarshal([]byte(console.must("fleet", "--json")), &fl); err != nil {
		t.Fatal(err)
	}
	var cams []string
	for _, c := range fl.Cameras {
		cams = append(cams, fmt.Sprintf("%s:%s:%s:%s:%t", c.Serial, c.State, c.Host, c.AssignedTo, c.ListedSince.IsZero()))
	}
	if want := "[BWC-0001:docked:dock-01:officer-1:true BWC-0002:never docked::officer-2:false BWC-0099:never docked::car-99:false]"; fmt.Sprint(cams) != want || fl.InventoryVersion != 1 {
		t.Errorf("fleet --json cameras %v (inventory version %d), want %s", cams, fl.InventoryVersion, want)
	}
	if text := console.must("fleet"); !regexp.MustCompile(`(?m)^BWC-0099\s+vehicle\s+car-99\s+never docked \(listed since \d{4}-\d\d-\d\d\)\s+-\s+-\s+-$`).MatchString(text) {
		t.Errorf("fleet does not show BWC-0099 as never docked:\n%s", text)
	}
	// dock-02's flag cannot be cleared while its history does not verify
	// with the key the console pins (exit 3, naming the problem); a sound
	// host is not flagged (exit 2); a clear without a reason is refused.
	for _, tc := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"fleet", "clear", "dock-02", "--reason", "ticket 9"}, 3, "anchored history of dock-02 still does not verify"},
		{[]string{"fleet", "clear", "dock-01", "--reason", "ticket 9"}, 2, "not flagged"},
		{[]string{"fleet", "clear", "dock-02"}, 2, "--reason is required"},
	} {
		code, out, errs := run(t, nil, append([]string{tc.args[0], "--config", console.cfg}, tc.args[1:]...)...)
		if code != tc.code || !strings.Contains(errs, tc.says) {
			t.Errorf("%v: exit %d, want %d saying %q\n%s%s", tc.args, code, tc.code, tc.says, out, errs)
		}
	}
	if f := console.fleetJSON(); !hostOf(f, "dock-02").Broken {
		t.Errorf("dock-02 is no longer flagged after refused clears: %+v", hostOf(f, "dock-02"))
	}
	if n, ok := got["evidenced_fleet_scrub_failures_total"]; !ok || n != 0 {
		t.Errorf("evidenced_fleet_scrub_failures_total = %v (present %v), want 0", n, ok)
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", body)
	}
}
