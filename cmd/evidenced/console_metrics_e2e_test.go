package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
		return got[`evidenced_fleet_hosts{state="untrusted"}`] == 1 && got["evidenced_fleet_items"] == 1 && got[`evidenced_fleet_hosts{state="broken"}`] == 1
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
	if n, ok := got["evidenced_fleet_scrub_failures_total"]; !ok || n != 0 {
		t.Errorf("evidenced_fleet_scrub_failures_total = %v (present %v), want 0", n, ok)
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", body)
	}
}
