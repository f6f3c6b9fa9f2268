package dock

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/ingest"
	"github.com/evidenced/evidenced/internal/service"
	"github.com/evidenced/evidenced/internal/web"
)

const inventory = `host_id: dock-07
state_dir: /var/lib/evidenced
retention:
  classes:
    - {name: uncategorized, days: 90, mode: GOVERNANCE}
cameras:
  - {serial: BWC-0001, kind: body, assigned_to: officer-4711}
  - {serial: BWC-0002, kind: body, assigned_to: officer-0815}
`

// source is a daemon's bays and config without the rest of the daemon:
// the real tracker the ingester reports to, the real parsed config.
type source struct {
	bays *service.Bays
	cfg  *config.Config
}

func (s source) Bays() *service.Bays    { return s.bays }
func (s source) Config() *config.Config { return s.cfg }

func newSource(t *testing.T) source {
	t.Helper()
	cfg, err := config.Parse([]byte(inventory), "/etc/evidenced/evidenced.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return source{bays: service.NewBays(), cfg: cfg}
}

// server serves the dock page as the daemon does: behind web.Handler.
func server(t *testing.T, src source, opt config.DockPage, o Options) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(web.Handler(NewWith(src, opt, o, nil)))
	t.Cleanup(srv.Close)
	return srv
}

func getBays(t *testing.T, url string) ([]map[string]any, string) {
	t.Helper()
	resp, err := http.Get(url + "/api/bays")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("/api/bays: %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var out []map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("/api/bays is not a JSON array: %v: %s", err, body)
	}
	return out, string(body)
}

// The JSON contract: an array, one object per bay, with the named fields
// and the values of the dock in progress.
func TestBaysJSONContract(t *testing.T) {
	src := newSource(t)
	srv := server(t, src, config.DockPage{ShowAssignedTo: true}, Options{})
	if got, body := getBays(t, srv.URL); len(got) != 0 || strings.TrimSpace(body) != "[]" {
		t.Fatalf("no camera docked: %s, want []", body)
	}
	src.bays.Watched("BWC-0001", "/run/evidenced/media")
	src.bays.Start("BWC-0001", 4, 1000)
	src.bays.Held("BWC-0001", 1, 100)
	src.bays.File("BWC-0001", "DCIM/A.MP4", 330, 400)
	src.bays.Arrived("BWC-0002", "1-1.2")
	src.bays.Start("BWC-0002", 1, 10)
	src.bays.Done("BWC-0002", ingest.Result{SafeToUndock: true})
	src.bays.Unknown("ZZ-9", "1-1.3")
	src.bays.Arrived("BWC-0003", "1-1.4")
	src.bays.Problem("BWC-0003", "camera storage unreadable: I/O error")

	got, _ := getBays(t, srv.URL)
	if len(got) != 4 {
		t.Fatalf("%d bays, want 4: %v", len(got), got)
	}
	for _, b := range got {
		for _, k := range []string{"bay", "camera", "assigned_to", "state", "files_done", "files_total", "bytes_done", "bytes_total", "safe_to_undock", "problem", "eta_seconds", "percent", "label"} {
			if _, ok := b[k]; !ok {
				t.Errorf("bay %v has no %q", b["camera"], k)
			}
		}
	}
	byCam := map[string]map[string]any{}
	for _, b := range got {
		byCam[b["camera"].(string)] = b
	}
	want := map[string]map[string]any{
		"BWC-0001": {"bay": "/run/evidenced/media", "assigned_to": "officer-4711", "state": "copying", "files_done": 1.0, "files_total": 4.0,
			"bytes_done": 430.0, "bytes_total": 1000.0, "safe_to_undock": false, "problem": "", "percent": 43.0, "label": "copying 43 %"},
		"BWC-0002": {"bay": "1-1.2", "assigned_to": "officer-0815", "state": "safe_to_undock", "files_done": 1.0, "files_total": 1.0,
			"bytes_done": 10.0, "bytes_total": 10.0, "safe_to_undock": true, "percent": 100.0, "label": "SAFE TO UNDOCK"},
		"ZZ-9": {"bay": "1-1.3", "state": "not_in_inventory", "safe_to_undock": false, "label": "not in inventory — call the evidence office"},
		"BWC-0003": {"bay": "1-1.4", "state": "problem", "safe_to_undock": false, "problem": "camera storage unreadable: I/O error",
			"label": "problem: camera storage unreadable: I/O error"},
	}
	for cam, fields := range want {
		b, ok := byCam[cam]
		if !ok {
			t.Errorf("no bay for %s", cam)
			continue
		}
		for k, v := range fields {
			if b[k] != v {
				t.Errorf("%s.%s = %#v, want %#v", cam, k, b[k], v)
			}
		}
	}
	if a := byCam["ZZ-9"]["assigned_to"]; a != "" {
		t.Errorf("a camera not in the inventory is issued to %#v", a)
	}
	// Ordered by bay, so tiles do not move about.
	var order []string
	for _, b := range got {
		order = append(order, b["bay"].(string))
	}
	if strings.Join(order, ",") != "/run/evidenced/media,1-1.2,1-1.3,1-1.4" {
		t.Errorf("order %v", order)
	}
}

// On a public screen only the camera shows: not in the JSON, not in the
// page, not in the event stream.
func TestShowAssignedToOff(t *testing.T) {
	src := newSource(t)
	src.bays.Arrived("BWC-0001", "1-1.1")
	for _, show := range []bool{true, false} {
		srv := server(t, src, config.DockPage{ShowAssignedTo: show}, Options{})
		_, body := getBays(t, srv.URL)
		page := get(t, srv.URL+"/", 200)
		ev := firstEvent(t, srv.URL)
		for what, text := range map[string]string{"/api/bays": body, "page": page, "/api/events": ev} {
			if strings.Contains(text, "officer-4711") != show {
				t.Errorf("show_assigned_to %v: %s shows the officer: %v\n%s", show, what, !show, text)
			}
			if !strings.Contains(text, "BWC-0001") {
				t.Errorf("show_assigned_to %v: %s lacks the camera", show, what)
			}
		}
	}
}

func get(t *testing.T, url string, code int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != code {
		t.Fatalf("GET %s: %d, want %d: %s", url, resp.StatusCode, code, b)
	}
	return string(b)
}

// sse reads one event stream.
type sse struct {
	resp *http.Response
	r    *bufio.Reader
}

func openEvents(t *testing.T, url string) *sse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("/api/events: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sse{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next frame (up to a blank line), failing after d.
func (s *sse) next(t *testing.T, d time.Duration) string {
	t.Helper()
	type res struct {
		frame string
		err   error
	}
	c := make(chan res, 1)
	go func() {
		var b strings.Builder
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				c <- res{b.String(), err}
				return
			}
			if line == "\n" {
				c <- res{b.String(), nil}
				return
			}
			b.WriteString(line)
		}
	}()
	select {
	case r := <-c:
		if r.err != nil {
			t.Fatalf("event stream: %v after %q", r.err, r.frame)
		}
		return r.frame
	case <-time.After(d):
		t.Fatalf("no event within %s", d)
		return ""
	}
}

// nextBays skips heartbeats and returns the next snapshot.
func (s *sse) nextBays(t *testing.T, d time.Duration) []BayView {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		f := s.next(t, time.Until(deadline))
		data, ok := strings.CutPrefix(f, "event: bays\ndata: ")
		if !ok {
			continue
		}
		var out []BayView
		if err := json.Unmarshal([]byte(strings.TrimSuffix(data, "\n")), &out); err != nil {
			t.Fatalf("snapshot %q: %v", data, err)
		}
		return out
	}
}

func firstEvent(t *testing.T, url string) string {
	t.Helper()
	s := openEvents(t, url)
	if f := s.next(t, 5*time.Second); !strings.HasPrefix(f, "retry: ") {
		t.Fatalf("first frame %q, want retry:", f)
	}
	return s.next(t, 5*time.Second)
}

// A client gets the full snapshot on connect and a new one after each
// change; between, heartbeat comments keep the connection open.
func TestEventsSnapshotAndUpdate(t *testing.T) {
	src := newSource(t)
	src.bays.Arrived("BWC-0001", "1-1.1")
	srv := server(t, src, config.DockPage{ShowAssignedTo: true}, Options{Heartbeat: 50 * time.Millisecond, MinInterval: time.Millisecond})
	s := openEvents(t, srv.URL)
	if f := s.next(t, 5*time.Second); f != "retry: 2000\n" {
		t.Errorf("first frame %q", f)
	}
	snap := s.nextBays(t, 5*time.Second)
	if len(snap) != 1 || snap[0].Camera != "BWC-0001" || snap[0].State != StateDocked {
		t.Fatalf("snapshot on connect: %+v", snap)
	}
	if f := s.next(t, 5*time.Second); f != ": heartbeat\n" {
		t.Errorf("idle frame %q, want a heartbeat comment", f)
	}
	src.bays.Start("BWC-0001", 2, 200)
	snap = s.nextBays(t, 5*time.Second)
	if snap[0].State != StateCopying {
		t.Errorf("after Start: %+v", snap[0])
	}
	src.bays.Done("BWC-0001", ingest.Result{SafeToUndock: true})
	if snap = s.nextBays(t, 5*time.Second); snap[0].State != StateSafe || !snap[0].SafeToUndock || snap[0].Label != "SAFE TO UNDOCK" {
		t.Errorf("after Done: %+v", snap[0])
	}
	src.bays.Remove("BWC-0001")
	if snap = s.nextBays(t, 5*time.Second); len(snap) != 0 {
		t.Errorf("after undock: %+v", snap)
	}
}

// A burst of changes reaches a client as the latest state, not as a queue
// of every step: at most one snapshot per MinInterval.
func TestEventsCoalesce(t *testing.T) {
	const minInterval = 200 * time.Millisecond
	src := newSource(t)
	srv := server(t, src, config.DockPage{}, Options{MinInterval: minInterval, Heartbeat: time.Hour})
	s := openEvents(t, srv.URL)
	s.nextBays(t, 5*time.Second)
	start := time.Now()
	src.bays.Start("BWC-0001", 1, 1000)
	// Changes spaced wider than a send takes: without the interval each
	// would be a snapshot of its own.
	const steps = 30
	for i := int64(1); i <= steps; i++ {
		src.bays.File("BWC-0001", "A.MP4", i, 1000)
		time.Sleep(10 * time.Millisecond)
	}
	burst := time.Since(start)
	var snaps int
	for {
		snap := s.nextBays(t, 5*time.Second)
		snaps++
		if len(snap) == 1 && snap[0].BytesDone == steps {
			break
		}
	}
	if most := int(burst/minInterval) + 2; snaps > most {
		t.Errorf("%d snapshots for %d changes over %s, want at most %d (coalesced)", snaps, steps+1, burst.Round(time.Millisecond), most)
	}
	if time.Since(start) > burst+3*time.Second {
		t.Errorf("the latest state took %s after the burst", time.Since(start)-burst)
	}
}

// The page only reads: other methods are 405 with Allow, unknown paths 404.
func TestMethodsAndPaths(t *testing.T) {
	srv := server(t, newSource(t), config.DockPage{}, Options{})
	for _, p := range []string{"/", "/api/bays", "/api/events", AssetPrefix + "dock.js"} {
		for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
			req, _ := http.NewRequest(m, srv.URL+p, strings.NewReader("x"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(resp.Header.Get("Allow"), "GET") {
				t.Errorf("%s %s: %d Allow %q, want 405 with GET allowed", m, p, resp.StatusCode, resp.Header.Get("Allow"))
			}
		}
		req, _ := http.NewRequest("HEAD", srv.URL+p, nil)
		if p == "/api/events" {
			continue // a stream; GET is tested elsewhere
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("HEAD %s: %d", p, resp.StatusCode)
		}
	}
	for _, p := range []string{"/index.html", "/api", "/api/", "/api/bays/x", "/api/item", AssetPrefix + "nope.js", "/assets/"} {
		get(t, srv.URL+p, http.StatusNotFound)
	}
}

// The page is complete without script, has the security headers, and
// needs nothing the policy forbids: no inline script, style or handler.
func TestPageUnderCSP(t *testing.T) {
	src := newSource(t)
	src.bays.Start("BWC-0001", 2, 1000)
	src.bays.File("BWC-0001", "A.MP4", 430, 1000)
	srv := server(t, src, config.DockPage{ShowAssignedTo: true}, Options{})
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if csp := resp.Header.Get("Content-Security-Policy"); csp != web.CSP {
		t.Errorf("CSP %q", csp)
	}
	if resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", resp.Header)
	}
	for _, want := range []string{"BWC-0001", "officer-4711", "copying 43 %", `<progress max="100" value="43">`, "0 of 2 files",
		`src="/assets/dock/dock.js"`, `href="/assets/dock/dock.css"`, `href="/assets/web/base.css"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(\s[^>]*)?>[^<]`), // inline script
		regexp.MustCompile(`(?i)<style`),
		regexp.MustCompile(`(?i)\sstyle=`),
		regexp.MustCompile(`(?i)\son[a-z]+=`),
		regexp.MustCompile(`(?i)javascript:`),
	} {
		if m := bad.FindString(page); m != "" {
			t.Errorf("page has %q, which the CSP blocks", m)
		}
	}
	for _, a := range []string{"dock.js", "dock.css"} {
		get(t, srv.URL+AssetPrefix+a, 200)
	}
}

// Every string from a camera is text, never markup or a reordering of the
// screen: in the page (html/template) and in the JSON the script puts in
// with textContent.
func TestCameraStringsEscaped(t *testing.T) {
	src := newSource(t)
	evil := `<img src=x onerror=alert(1)>` + "\u202e" + `4PM.exe`
	src.bays.Unknown(evil, `1-1"><script>`)
	src.bays.Arrived("BWC-0001", "1-1.1")
	src.bays.Problem("BWC-0001", "file </section><h1>pwned</h1> refused")
	srv := server(t, src, config.DockPage{ShowAssignedTo: true}, Options{})
	page := get(t, srv.URL+"/", 200)
	for _, raw := range []string{"<img", "<script>", "<h1>pwned", "\u202e"} {
		if strings.Contains(page, raw) {
			t.Errorf("page carries %q unescaped", raw)
		}
	}
	if !strings.Contains(page, "&lt;img src=x onerror=alert(1)&gt;") || !strings.Contains(page, "&lt;h1&gt;pwned") {
		t.Errorf("escaped text missing from the page:\n%s", page)
	}
	_, body := getBays(t, srv.URL)
	if strings.Contains(body, "\u202e") {
		t.Error("a direction override reaches the JSON")
	}
}

// Streams are bounded (the page is public), and a stream that ends gives
// its place back.
func TestMaxStreams(t *testing.T) {
	srv := server(t, newSource(t), config.DockPage{}, Options{MaxStreams: 2})
	first := openEvents(t, srv.URL)
	openEvents(t, srv.URL)
	// A stream accepted by mistake would never end: read only the status.
	status := func() int {
		t.Helper()
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(srv.URL + "/api/events")
		if err != nil {
			t.Fatalf("third stream: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := status(); code != http.StatusServiceUnavailable {
		t.Fatalf("third stream: %d, want 503", code)
	}
	first.resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code := status()
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream's place is not given back: %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The time left reads as a person says it.
func TestETAWords(t *testing.T) {
	for sec, want := range map[int64]string{
		5: "less than a minute left", 59: "less than a minute left", 60: "about 1 min left", 61: "about 2 min left",
		119: "about 2 min left", 3599: "about 60 min left", 3600: "about 1 h 0 min left", 7199: "about 2 h 0 min left", 5400: "about 1 h 30 min left",
	} {
		if got := eta(sec); got != want {
			t.Errorf("eta(%d) = %q, want %q", sec, got, want)
		}
	}
	v := BayView{State: StateCopying, Percent: 43}
	s := int64(100)
	v.ETASeconds = &s
	if got := label(v); got != "copying 43 % · about 2 min left" {
		t.Errorf("label %q", got)
	}
}

// The percentage never says 100 before the dock says safe.
func TestPercentNot100BeforeSafe(t *testing.T) {
	src := newSource(t)
	src.bays.Start("BWC-0001", 1, 1000)
	src.bays.File("BWC-0001", "A.MP4", 1000, 1000)
	v := view(src.bays.List(), src.cfg, config.DockPage{}, time.Now())
	if v[0].Percent != 99 || v[0].SafeToUndock {
		t.Errorf("all bytes read, not yet safe: %+v", v[0])
	}
}

// With nothing changing, the snapshot is sent again every Refresh: the
// page's script takes a silence longer than that as a dead connection and
// says the screen is stale, rather than keep showing SAFE TO UNDOCK.
func TestEventsRefresh(t *testing.T) {
	src := newSource(t)
	src.bays.Arrived("BWC-0001", "1-1.1")
	srv := server(t, src, config.DockPage{}, Options{Refresh: 100 * time.Millisecond, Heartbeat: time.Hour})
	s := openEvents(t, srv.URL)
	s.nextBays(t, 5*time.Second)
	for i := 0; i < 2; i++ {
		if snap := s.nextBays(t, 2*time.Second); len(snap) != 1 || snap[0].Camera != "BWC-0001" {
			t.Fatalf("refresh %d: %+v", i, snap)
		}
	}
}

// A watched folder's long path is split for the tile as dock.js splits it:
// the directory (cut from its start by the page's style) isolated
// left-to-right, then the folder's own name whole; the full path is the
// tile's title. A USB bay has no directory part.
func TestWatchedFolderTileSplit(t *testing.T) {
	src := newSource(t)
	src.bays.Watched("BWC-0001", "/srv/evidence/stations/north/watched/body-worn")
	src.bays.Arrived("BWC-0002", "1-1.2")
	srv := server(t, src, config.DockPage{}, Options{})
	page := get(t, srv.URL+"/", 200)
	for _, want := range []string{
		`<div class="where" title="/srv/evidence/stations/north/watched/body-worn"><span class="dir"><bdi dir="ltr">/srv/evidence/stations/north/watched/</bdi></span><span class="leaf">body-worn</span></div>`,
		`<div class="where" title="1-1.2"><span class="leaf">1-1.2</span></div>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s:\n%s", want, page)
		}
	}
}
