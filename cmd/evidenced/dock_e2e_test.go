package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dockBay is one object of /api/bays, as a program reading it sees it.
type dockBay struct {
	Bay          string `json:"bay"`
	Camera       string `json:"camera"`
	AssignedTo   string `json:"assigned_to"`
	State        string `json:"state"`
	FilesDone    int    `json:"files_done"`
	FilesTotal   int    `json:"files_total"`
	BytesDone    int64  `json:"bytes_done"`
	BytesTotal   int64  `json:"bytes_total"`
	SafeToUndock bool   `json:"safe_to_undock"`
	Problem      string `json:"problem"`
	Label        string `json:"label"`
}

func readBays(t *testing.T, base string) map[string]dockBay {
	t.Helper()
	resp, err := http.Get(base + "/api/bays")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var bays []dockBay
	if err := json.NewDecoder(resp.Body).Decode(&bays); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/api/bays: %d %v", resp.StatusCode, err)
	}
	out := map[string]dockBay{}
	for _, b := range bays {
		out[b.Camera] = b
	}
	return out
}

// dockCamera builds a camera folder aside and moves it into the watched
// folder (one dock), returning the bytes it holds.
func (h *harness) dockCamera(t *testing.T, serial string, files map[string]int) int64 {
	t.Helper()
	staging := filepath.Join(h.dir, "staging", serial)
	var total int64
	for _, b := range writeCamera(t, staging, files) {
		total += int64(len(b))
	}
	if err := os.Rename(staging, filepath.Join(h.media, serial)); err != nil {
		t.Fatal(err)
	}
	return total
}

// The built daemon with http.listen and a watched folder serves the dock
// page: /api/bays follows a dock to safe to undock with the inventory's
// assigned_to, shows a camera not in the inventory as such, forgets a
// camera that left, and an open event stream does not hold up the stop.
func TestDaemonDockPage(t *testing.T) {
	addr := freeAddr(t)
	h := newHarness(t, harnessOpts{noStore: true, extra: "http:\n  listen: " + addr + "\n"})
	stop, logs := h.daemon(t)
	base := "http://" + addr
	if bays := readBays(t, base); len(bays) != 0 {
		t.Fatalf("no camera docked, /api/bays: %+v", bays)
	}

	total := h.dockCamera(t, "BWC-0002", bodyCam)
	h.dockCamera(t, "ZZ-0009", map[string]int{"DCIM/A.MP4": 1000})
	var bays map[string]dockBay
	waitFor(t, "BWC-0002 safe to undock on /api/bays", time.Minute, func() bool {
		bays = readBays(t, base)
		return bays["BWC-0002"].SafeToUndock && bays["ZZ-0009"].State != ""
	})
	b := bays["BWC-0002"]
	want := dockBay{Bay: h.media, Camera: "BWC-0002", AssignedTo: "officer-0815", State: "safe_to_undock",
		FilesDone: len(bodyCam), FilesTotal: len(bodyCam), BytesDone: total, BytesTotal: total, SafeToUndock: true, Label: "SAFE TO UNDOCK"}
	if b != want {
		t.Errorf("BWC-0002:\n got %+v\nwant %+v", b, want)
	}
	if z := bays["ZZ-0009"]; z.State != "not_in_inventory" || z.SafeToUndock || z.AssignedTo != "" || z.Bay != h.media {
		t.Errorf("camera not in the inventory: %+v", z)
	}

	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "officer-0815") || resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("GET /: %d, CSP %q\n%s", resp.StatusCode, resp.Header.Get("Content-Security-Policy"), page)
	}

	// The camera leaves its bay: its tile goes.
	if err := os.RemoveAll(filepath.Join(h.media, "BWC-0002")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "BWC-0002 gone from /api/bays", time.Minute, func() bool {
		_, there := readBays(t, base)["BWC-0002"]
		return !there
	})

	// A kiosk holding the event stream open: the daemon still stops at
	// once, and the stream ends.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/events", nil)
	es, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer es.Body.Close()
	r := bufio.NewReader(es.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
		if strings.HasPrefix(line, "data: ") {
			break
		}
	}
	began := time.Now()
	if code := stop(); code != 0 {
		t.Fatalf("daemon exit %d\n%s", code, logs)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("stopping with an open event stream took %s", d)
	}
	if _, err := io.Copy(io.Discard, r); err != nil && !strings.Contains(err.Error(), "EOF") {
		t.Logf("stream after stop: %v", err)
	}
}
