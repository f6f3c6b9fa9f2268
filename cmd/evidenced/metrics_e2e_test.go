package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/testutil/hosttool"
)

// freeAddr is a loopback address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

var sampleLine = regexp.MustCompile(`(?m)^(evidenced_[a-z_]+)(\{[^}]*\})? (\S+)$`)

// samples maps `name{labels}` to its value in a text-format scrape.
func samples(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range sampleLine.FindAllStringSubmatch(text, -1) {
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", m[0], err)
		}
		out[m[1]+m[2]] = v
	}
	return out
}

// A live daemon's /metrics passes `promtool check metrics` (names, units,
// help, types per Prometheus conventions) and its values agree with the
// dock that just happened.
func TestDaemonMetrics(t *testing.T) {
	tool := hosttool.Find(t, "promtool", "prometheus")
	addr := freeAddr(t)
	h := newHarness(t, harnessOpts{extra: "metrics:\n  listen: " + addr + "\n"})
	stop, logs := h.daemon(t)

	staging := filepath.Join(h.dir, "staging", "BWC-0002")
	files := writeCamera(t, staging, map[string]int{"DCIM/100/A.MP4": 300 << 10, "DCIM/100/B.MP4": 70 << 10})
	var total float64
	for _, b := range files {
		total += float64(len(b))
	}
	if err := os.Rename(staging, filepath.Join(h.media, "BWC-0002")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "recordings verified", 3*time.Minute, func() bool {
		items := h.find("--camera", "BWC-0002")
		for _, it := range items {
			if it.State != custody.StateVerified {
				return false
			}
		}
		return len(items) == len(files)
	})

	body := scrape(t, addr)
	check := exec.Command(tool, "check", "metrics")
	check.Stdin = bytes.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	got := samples(t, string(body))
	want := map[string]float64{
		"evidenced_copied_bytes_total":                                  total,
		"evidenced_vault_read_back_bytes_total":                         total,
		"evidenced_uploaded_bytes_total":                                total,
		"evidenced_store_verified_bytes_total":                          total,
		`evidenced_recordings{state="verified"}`:                        2,
		`evidenced_recordings{state="vaulted"}`:                         0,
		"evidenced_upload_queue_items":                                  0,
		"evidenced_upload_queue_oldest_age_seconds":                     0,
		`evidenced_upload_errors_total{kind="permanent",step="upload"}`: 0,
		`evidenced_upload_errors_total{kind="permanent",step="verify"}`: 0,
		`evidenced_upload_errors_total{kind="transient",step="upload"}`: 0,
		`evidenced_upload_errors_total{kind="transient",step="verify"}`: 0,
		"evidenced_integrity_failures_total":                            0,
		`evidenced_bays{state="safe_to_undock"}`:                        1,
		`evidenced_bays{state="copying"}`:                               0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for _, k := range []string{"evidenced_ledger_records", "evidenced_vault_free_bytes",
		`evidenced_camera_last_dock_age_seconds{camera="BWC-0002"}`, "evidenced_custody_anchor_age_seconds"} {
		if g, ok := got[k]; !ok || g <= 0 && k != "evidenced_custody_anchor_age_seconds" {
			t.Errorf("%s = %v (present %v), want a positive value", k, g, ok)
		}
	}
	if age := got[`evidenced_camera_last_dock_age_seconds{camera="BWC-0002"}`]; age > 600 {
		t.Errorf("camera docked minutes ago shows last dock %vs ago", age)
	}
	if _, ok := got[`evidenced_camera_last_dock_age_seconds{camera="BWC-0001"}`]; ok {
		t.Error("a camera that never docked has a last-dock age")
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", body)
	}

	// The store goes away while a camera docks: each failed attempt is
	// counted as transient (the ledger records none of them); once the
	// store is back the recording is verified, and nothing was permanent.
	h.srv.Stop()
	staging = filepath.Join(h.dir, "staging", "BWC-0001")
	writeCamera(t, staging, map[string]int{"DCIM/100/C.MP4": 40 << 10})
	if err := os.Rename(staging, filepath.Join(h.media, "BWC-0001")); err != nil {
		t.Fatal(err)
	}
	transient := `evidenced_upload_errors_total{kind="transient",step="upload"}`
	waitFor(t, "transient upload errors counted", time.Minute, func() bool {
		return samples(t, string(scrape(t, addr)))[transient] >= 2
	})
	h.srv.Restart(t)
	waitFor(t, "the recording verified once the store is back", 3*time.Minute, func() bool {
		items := h.find("--camera", "BWC-0001")
		return len(items) == 1 && items[0].State == custody.StateVerified
	})
	got = samples(t, string(scrape(t, addr)))
	for k, v := range got {
		if strings.Contains(k, `kind="permanent"`) && v != 0 {
			t.Errorf("%s = %v after a store outage; want 0 (every failure was transient)", k, v)
		}
	}
	t.Logf("after the outage: %s = %v", transient, got[transient])

	// The daemon's log (what journald keeps) never holds the store's secret
	// key nor any footage bytes.
	if code := stop(); code != 0 {
		t.Errorf("daemon exit %d", code)
	}
	text := logs.String()
	if strings.Contains(text, h.srv.SecretKey) {
		t.Error("the daemon log contains the S3 secret key")
	}
	for rel, b := range files {
		for off := 0; off+32 <= len(b); off += len(b) / 8 {
			if bytes.Contains([]byte(text), b[off:off+32]) {
				t.Errorf("the daemon log contains bytes of %s at offset %d", rel, off)
				break
			}
		}
	}
}

// scrape returns the text of GET /metrics.
func scrape(t *testing.T, addr string) []byte {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v\n%s", resp.StatusCode, err, body)
	}
	return body
}
