package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/service"
	"github.com/evidenced/evidenced/internal/testutil/browser"
	"github.com/evidenced/evidenced/internal/testutil/oidcprovider"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// The people who sign in to the console in these tests, as typed into the
// provider's form, and the groups the provider gives them.
const (
	investigatorLogin = "Ivy Investigator"
	custodianLogin    = "Carl Custodian"
	auditorLogin      = "Ada Auditor"
)

// consoleWeb is a console host serving its web UI, on the built binary,
// with one recording ingested by a real dock host on a real S3 server, and
// a real OpenID Connect provider where people sign in.
type consoleWeb struct {
	// base is where the browser opens the console: localhost, while the
	// console listens on 127.0.0.1, so the provider (127.0.0.1) is another
	// site and the cookies' SameSite attributes are exercised as in
	// production.
	base string
	// direct is the same listener by address, for requests from Go.
	direct string
	idp    *oidcprovider.Provider
	item   custody.Item // the H.264 clip, as the dock recorded it
	clip   []byte
	// console is the console host, for its command line; stop stops its
	// daemon (the last scenario, to read its ledger).
	console *fleetHost
	stop    func()
	// The vehicle camera's recording, ANPR log and GPS log, as the dock
	// recorded them (writeCarCamera).
	car, anpr, gps custody.Item
}

// startConsoleWeb docks one camera holding an H.264 clip (made by ffmpeg)
// and a vehicle camera with an ANPR log and a GPS log (writeCarCamera) at a
// dock host, runs a console host with http.listen, oidc and the sidecar
// rules configured until the test ends, and waits until the console's index
// serves the clip and its facts index the vehicle camera's plate read.
func startConsoleWeb(t *testing.T) *consoleWeb {
	t.Helper()
	start := time.Now()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		// As for Chromium itself: CI never passes by skipping the browser.
		if os.Getenv("EVIDENCED_REQUIRE_BROWSER") == "1" {
			t.Fatalf("EVIDENCED_REQUIRE_BROWSER=1 but no ffmpeg to make the H.264 clip (run scripts/setup.sh): %v", err)
		}
		t.Skipf("no ffmpeg to make the H.264 clip (scripts/setup.sh installs it): %v", err)
	}
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)

	dock := newFleetHost(t, srv, bucket, "dock-01", "cameras:\n  - {serial: BWC-0001, kind: body, assigned_to: officer-4711}\n"+
		"  - {serial: CAR-0001, kind: vehicle, assigned_to: car-17}\n"+sidecarRules)
	clip := filepath.Join(dock.dir, "cam", "DCIM", "100MEDIA", "VID_0001.MP4")
	if err := os.MkdirAll(filepath.Dir(clip), 0o755); err != nil {
		t.Fatal(err)
	}
	ff := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=duration=4:size=320x240:rate=15",
		"-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4", clip)
	if out, err := ff.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	clipBytes, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	key := dock.publicKey()
	dock.must("ingest", "--camera", "BWC-0001", "--from", filepath.Join(dock.dir, "cam"))
	writeCarCamera(t, filepath.Join(dock.dir, "cam-car"))
	dock.must("ingest", "--camera", "CAR-0001", "--from", filepath.Join(dock.dir, "cam-car"))
	car := map[string]custody.Item{}
	for _, it := range dock.findJSON("--camera", "CAR-0001") {
		car[it.SourcePath] = it
	}

	idp := oidcprovider.Start(t, map[string][]string{
		investigatorLogin: {"evidence-investigators"},
		custodianLogin:    {"evidence-custodians"},
		auditorLogin:      {"evidence-auditors"},
	})
	secret := filepath.Join(t.TempDir(), "oidc-secret")
	if err := os.WriteFile(secret, []byte(idp.Config().ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	console := newFleetHost(t, srv, bucket, "hq", fmt.Sprintf(`role: console
console:
  poll: 1s
  hosts:
    - {id: dock-01, public_key_file: %s}
http:
  listen: %s
oidc:
  issuer: %s
  client_id: %s
  client_secret_file: %s
  redirect_url: http://localhost:%s/auth/callback
  roles_claim: groups
  roles: {investigator: [evidence-investigators], custodian: [evidence-custodians], auditor: [evidence-auditors]}
%s`, key, addr, idp.Issuer(), idp.Config().ClientID, secret, port, sidecarRules))
	stop := console.daemon()
	var items []custody.Item
	waitFor(t, "the docked clip at the console", 20*time.Second, func() bool {
		items = console.findJSON("--camera", "BWC-0001")
		return len(items) == 1
	})
	waitFor(t, "the vehicle camera's plate read in the console's facts index", 30*time.Second, func() bool {
		_, out, _ := run(t, nil, "find", "--config", console.cfg, "--json", "--plate", "CA 123-456")
		return strings.Contains(out, `"recording"`)
	})
	t.Logf("dock, console and provider ready in %v", time.Since(start).Round(time.Millisecond))
	return &consoleWeb{
		base:   "http://localhost:" + port,
		direct: "http://" + addr,
		idp:    idp, item: items[0], clip: clipBytes, console: console, stop: stop,
		car: car["DCIM/100MEDIA/VID_0001.MP4"], anpr: car["ANPR/READS.CSV"], gps: car["GPS/TRACK.NMEA"],
	}
}

// signIn opens page at the console in b, which must send the browser to the
// provider's form (PKCE S256 and a nonce in the request), types login there
// and waits until the console greets the person on page.
func (c *consoleWeb) signIn(t *testing.T, b *browser.Browser, login, page, shot string) {
	t.Helper()
	b.Do("opening "+page+" should reach the provider's sign-in form",
		chromedp.Navigate(c.base+page), chromedp.WaitVisible(chromedp.ID("username")))
	if at := b.Location(); !strings.HasPrefix(at, c.idp.AuthorizationEndpoint()+"?") ||
		!strings.Contains(at, "code_challenge_method=S256") || !strings.Contains(at, "nonce=") {
		t.Errorf("sign-in form at %s, want the provider's authorization endpoint with PKCE S256 and a nonce", at)
	}
	if shot != "" {
		b.Screenshot(shot)
	}
	b.Do("signing in as "+login,
		chromedp.SendKeys(chromedp.ID("username"), login),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("who")))
	if who := b.Text(); !strings.Contains(who, login) {
		t.Errorf("after sign-in the page says %q, want %q", who, login)
	}
	if at := b.Location(); at != c.base+page {
		t.Errorf("after sign-in the browser is at %s, want %s", at, c.base+page)
	}
}

// session is the console's session cookie as the browser holds it.
func (c *consoleWeb) session(t *testing.T, b *browser.Browser) *network.Cookie {
	t.Helper()
	res, err := chromedp.Call(b.Ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{c.base + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range res.Cookies {
		if ck.Name == "evidenced_session" {
			if !ck.HTTPOnly || ck.SameSite != network.CookieSameSiteLax {
				t.Errorf("session cookie %+v, want HttpOnly and SameSite=Lax", ck)
			}
			return ck
		}
	}
	t.Fatalf("the browser holds no evidenced_session cookie: %+v", res.Cookies)
	return nil
}

// request sends one request from Go, not following redirects, with the
// given session cookie value ("" for none) and form (POST when not nil),
// and returns the status and the body's start.
func (c *consoleWeb) request(t *testing.T, method, path, sid string, form url.Values, hdr ...string) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, c.direct+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if sid != "" {
		req.AddCookie(&http.Cookie{Name: "evidenced_session", Value: sid})
	}
	cl := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	// Read to the end: a download cut short would be recorded as failed.
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return resp.StatusCode, string(b[:min(len(b), 4096)])
}

// brief is what an answer says, for a failure message: a page's message,
// else the body's start.
func brief(body string) string {
	if _, msg, ok := strings.Cut(body, `id="message">`); ok {
		msg, _, _ = strings.Cut(msg, "<")
		return msg
	}
	return body[:min(len(body), 300)]
}

// custodyRows is the text of the item page's custody table, one string per
// row.
func custodyRows(t *testing.T, b *browser.Browser) []string { return tableRows(t, b, "custody") }

// tableRows is the text of the page's table with that id, one string per
// body row.
func tableRows(t *testing.T, b *browser.Browser, id string) []string {
	t.Helper()
	rows, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("#`+id+` tbody tr")).map(r => r.innerText)`))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// rowWith is the first row holding every one of parts, or "".
func rowWith(rows []string, parts ...string) string {
	for _, r := range rows {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(r, p)
		}
		if all {
			return r
		}
	}
	return ""
}

// setSession replaces the session cookie the browser holds.
func (c *consoleWeb) setSession(t *testing.T, b *browser.Browser, value string) {
	t.Helper()
	if _, err := chromedp.Call(b.Ctx, network.SetCookie, network.SetCookieParams{
		Name: "evidenced_session", Value: value, URL: c.base + "/", Path: "/", HTTPOnly: new(true), SameSite: network.CookieSameSiteLax,
	}); err != nil {
		t.Fatal(err)
	}
}

// csrf is the CSRF token of the page the browser shows (its download
// form's).
func csrf(t *testing.T, b *browser.Browser) string {
	t.Helper()
	tok, err := chromedp.Run(b.Ctx, chromedp.Value(chromedp.CSS(`#download-form input[name="csrf"]`)))
	if err != nil || tok == "" {
		t.Fatalf("the item page has no CSRF token in its download form (%q, %v)", tok, err)
	}
	return tok
}

// investigatorOn starts a browser, signs the investigator in on page (an
// item's) and returns the browser, the session id and the page's CSRF
// token.
func (c *consoleWeb) investigatorOn(t *testing.T, page string) (*browser.Browser, string, string) {
	t.Helper()
	b := browser.Start(t, 1280, 900)
	c.signIn(t, b, investigatorLogin, page, "")
	return b, c.session(t, b).Value, csrf(t, b)
}

// download runs steps that make the browser download a file, and returns
// the file's bytes as the browser saved them. A page shown instead (an
// error) is a wait that ends at the step deadline, naming that page.
func download(t *testing.T, b *browser.Browser, what string, steps ...chromedp.Action[chromedp.Void]) []byte {
	t.Helper()
	dir := t.TempDir()
	if _, err := chromedp.Call(b.Ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: new(true),
	}); err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(b.Ctx, browser.StepTimeout)
	defer cancel()
	progress := chromedp.Events(dctx, cdpbrowser.DownloadProgress)
	b.Do(what, steps...)
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("%s: waiting for the download: %v (browser at %s, page says %q)", what, err, b.Location(), b.Text())
		}
		if ev.State == cdpbrowser.DownloadProgressStateCanceled {
			t.Fatalf("%s: the download was cancelled (%d of %d bytes)", what, int64(ev.ReceivedBytes), int64(ev.TotalBytes))
		}
		if ev.State == cdpbrowser.DownloadProgressStateCompleted {
			got, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
	}
	t.Fatalf("%s: no download", what)
	return nil
}

// updateDocs copies the screenshot shot into docs/ under its own name
// when EVIDENCED_UPDATE_DOCS=1: the pictures the README shows are the
// tests' own.
func updateDocs(t *testing.T, shot string) {
	t.Helper()
	if os.Getenv("EVIDENCED_UPDATE_DOCS") != "1" {
		return
	}
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", filepath.Base(shot)), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// noProblems fails the test on a CSP violation or an uncaught exception in
// any page the browser showed.
func noProblems(t *testing.T, b *browser.Browser) {
	t.Helper()
	for _, p := range b.Problems() {
		t.Errorf("browser console: %s", p)
	}
}

// Issue #14, item 4, for the web console: real-browser scenarios against
// the built binary's console role, a real dock's ingest on a real S3
// server (versitygw) and a real OpenID Connect provider. Each scenario
// starts its own Chromium, so each signs in afresh.
func TestConsoleWebInBrowserE2E(t *testing.T) {
	browser.Path(t) // skip (or, under EVIDENCED_REQUIRE_BROWSER=1, fail) before starting anything
	c := startConsoleWeb(t)
	t.Run("search, play, download, custody", c.searchPlayDownload)
	t.Run("an investigator is refused a custodian's action", c.investigatorRefused)
	t.Run("a tampered session cookie and a missing CSRF token are refused", c.forgeriesRefused)
	t.Run("an auditor finds the accesses in the access log", c.auditorReadsAccessLog)
	t.Run("an investigator finds a recording by plate and by place", c.plateAndPlace)
	// Last: it stops the console to read its ledger.
	t.Run("a custodian hands a camera over on the Inventory page", c.inventoryEdit)
}

// inventoryVersion is the version the Inventory page shows ("" for none),
// read without waiting for the element.
func inventoryVersion(t *testing.T, b *browser.Browser) string {
	t.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.getElementById("inventory-version")?.innerText ?? ""`))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Issue #13, item 5, at the web console: with version 1 of the inventory
// published (the CLI's import), a custodian opens Inventory, hands
// BWC-0001 to officer-0815 (effective now, the form's default) and is
// shown version 2 with the new holder; the store holds version 2
// (`inventory show`). An investigator sees the page without the forms, and
// an assignment posted with the investigator's own session and CSRF token
// is refused (403) with the store still at version 2. The console's ledger
// holds version 2's INVENTORY_PUBLISHED under the custodian's name.
func (c *consoleWeb) inventoryEdit(t *testing.T) {
	start := time.Now()
	csvFile := filepath.Join(t.TempDir(), "inventory.csv")
	if err := os.WriteFile(csvFile, []byte("serial,kind,assigned_to\nBWC-0001,body,officer-4711\nCAR-0001,vehicle,car-17\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.console.must("inventory", "import", csvFile)
	show := func() service.InventoryView {
		t.Helper()
		var v service.InventoryView
		if err := json.Unmarshal([]byte(c.console.must("inventory", "show", "--json")), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}

	b := browser.Start(t, 1280, 900)
	c.signIn(t, b, custodianLogin, "/inventory", "")
	if rows := tableRows(t, b, "inventory"); rowWith(rows, "BWC-0001", "officer-4711") == "" {
		t.Fatalf("the custodian's Inventory page, version 1: %q", rows)
	}
	b.Do("handing BWC-0001 to officer-0815",
		chromedp.SendKeys(chromedp.CSS(`#assign-form input[name="serial"]`), "BWC-0001"),
		chromedp.SendKeys(chromedp.CSS(`#assign-form input[name="to"]`), "officer-0815"),
		chromedp.Click(chromedp.ID("assign")))
	b.WaitTrue("the Inventory page after the hand-over",
		`location.pathname === "/inventory" && location.search === "?published=2" && document.readyState === "complete" && document.getElementById("inventory-version") !== null`)
	if v := inventoryVersion(t, b); v != "2" || !strings.Contains(b.Text(), "Version 2 published") {
		t.Errorf("after the hand-over the page shows version %q and says %q", v, b.Text())
	}
	row := rowWith(tableRows(t, b, "inventory"), "BWC-0001")
	if holder, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](
		`Array.from(document.querySelectorAll("#inventory tbody tr")).find(r => r.cells[0].innerText === "BWC-0001").cells[2].innerText`)); holder != "officer-0815" ||
		!strings.Contains(row, "officer-4711") {
		t.Errorf("BWC-0001 after the hand-over: holder %q, row %q; want officer-0815 holding it, officer-4711 in its history", holder, row)
	}
	b.Screenshot("console-inventory.png")
	noProblems(t, b)
	if v := show(); v.Version != 2 || len(v.Cameras) != 2 || v.Cameras[0].Serial != "BWC-0001" || v.Cameras[0].AssignedTo != "officer-0815" {
		t.Fatalf("the store after the hand-over: %+v", v)
	}

	// One Chromium at a time (browser.Start waits for the run's lock):
	// the custodian signs out and the investigator signs in.
	b.Do("signing out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("message")))
	bi := b
	c.signIn(t, bi, investigatorLogin, "/inventory", "")
	if n, err := chromedp.Run(bi.Ctx, chromedp.Evaluate[int](`document.querySelectorAll("#assign-form, #retire-form, form[action^='/inventory/']").length`)); err != nil || n != 0 {
		t.Errorf("the investigator's Inventory page has %d edit form(s) (%v)", n, err)
	}
	if v := inventoryVersion(t, bi); v != "2" || rowWith(tableRows(t, bi, "inventory"), "BWC-0001", "officer-0815") == "" {
		t.Errorf("the investigator's Inventory page: version %q, rows %q", v, tableRows(t, bi, "inventory"))
	}
	tok, err := chromedp.Run(bi.Ctx, chromedp.Evaluate[string](`document.querySelector('header form input[name="csrf"]')?.value ?? ""`))
	if err != nil || tok == "" {
		t.Fatalf("the investigator's page has no CSRF token (%q, %v)", tok, err)
	}
	sid := c.session(t, bi).Value
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/inventory/assign", url.Values{"serial": {"BWC-0001"}, "to": {"investigator-self"}}},
		{"/inventory/retire", url.Values{"serial": {"CAR-0001"}}},
	} {
		tc.form.Set("csrf", tok)
		if code, body := c.request(t, "POST", tc.path, sid, tc.form); code != http.StatusForbidden {
			t.Errorf("investigator POST %s: %d %q, want 403", tc.path, code, brief(body))
		}
	}
	if v := show(); v.Version != 2 || v.Cameras[0].AssignedTo != "officer-0815" || v.Cameras[1].Retired != nil {
		t.Errorf("the store after the investigator's posts: %+v, want version 2 unchanged", v)
	}

	c.stop()
	published := c.console.published(func(ev custody.Event) string {
		return ev.Details["version"] + " " + ev.Details["change"] + " " + ev.Details["to"] + " by " + ev.Actor
	})
	if len(published) != 2 || published[1] != "2 assign officer-0815 by oidc:carl.custodian@example.test" {
		t.Errorf("INVENTORY_PUBLISHED records: %q, want version 2's by the custodian", published)
	}
	t.Logf("inventory at the web console: %v", time.Since(start).Round(time.Millisecond))
}

// Issue #17, item 3, in the web console: an investigator types the plate
// with one OCR confusion (CA I23-456 for CA 123-456) and ticks "similar
// plates": the one match is the vehicle camera's recording, showing the
// plate as read, its confidence, the ANPR log it came from with that file's
// SHA-256 and the dock host; the same plate without the tick finds nothing.
// The near form (a point, 300 m, an evening window in UTC) finds the same
// recording through the GPS log and its hash. The investigator opens the
// recording from the result: its item page shows the recording's SHA-256.
// Each search is in the console's access log as typed, from the web.
func (c *consoleWeb) plateAndPlace(t *testing.T) {
	start := time.Now()
	if c.car.ID == "" || c.anpr.ID == "" || c.gps.ID == "" {
		t.Fatalf("the vehicle camera's items: %+v %+v %+v", c.car, c.anpr, c.gps)
	}
	b := browser.Start(t, 1280, 900)
	c.signIn(t, b, investigatorLogin, "/search", "")

	// Without "similar plates" the OCR confusion finds nothing.
	b.Do("searching the plate with one OCR confusion, exactly",
		chromedp.SendKeys(chromedp.ID("plate"), "CA I23-456"),
		chromedp.SendKeys(chromedp.ID("plate-reason"), "complaint 2026-131"),
		chromedp.Click(chromedp.ID("plate-search")))
	// Each search is a navigation: wait for its URL, or the previous
	// page's elements answer the wait before the new page arrives.
	b.WaitTrue("the exact plate search's page", `location.search.includes("plate=CA+I23-456") && !location.search.includes("fuzzy=on") && document.readyState === "complete"`)
	b.Do("reading the exact plate search's count", chromedp.WaitVisible(chromedp.ID("count")))
	if txt, _ := chromedp.Run(b.Ctx, chromedp.Text(chromedp.ID("count"))); !strings.HasPrefix(txt, "0 match(es)") {
		t.Errorf("the exact search for CA I23-456 says %q, want no match", txt)
	}
	// With it, the recording, through the plate read and its file.
	b.Do("searching the plate with similar plates",
		chromedp.Click(chromedp.ID("fuzzy")),
		chromedp.Click(chromedp.ID("plate-search")))
	b.WaitTrue("the similar-plates search's page", `location.search.includes("fuzzy=on") && document.readyState === "complete"`)
	b.Do("reading the similar-plates search's matches", chromedp.WaitVisible(chromedp.ID("matches")))
	rows := tableRows(t, b, "matches")
	if len(rows) != 1 || rowWith(rows, c.car.ID, "dock-01", "CA 123-456", "confidence 0.93", "ANPR/READS.CSV", c.anpr.SHA256) == "" {
		t.Errorf("the fuzzy plate search shows:\n%s\nwant one row: %s from dock-01, read CA 123-456 (0.93) in ANPR/READS.CSV %s",
			strings.Join(rows, "\n"), c.car.ID, c.anpr.SHA256)
	}
	b.Do("scrolling to the results", chromedp.ScrollIntoView(chromedp.CSS("footer")))
	updateDocs(t, b.Screenshot("console-plate-search.png"))

	// Near the corner, on the evening of the 3rd (UTC).
	b.Do("searching near the corner",
		chromedp.SendKeys(chromedp.ID("lat"), "-33.9249"),
		chromedp.SendKeys(chromedp.ID("lon"), "18.4241"),
		chromedp.SendKeys(chromedp.ID("radius"), "300"),
		chromedp.SetValue(chromedp.ID("near-since"), "2026-12-03T18:00"),
		chromedp.SetValue(chromedp.ID("near-until"), "2026-12-03T22:00"),
		chromedp.SendKeys(chromedp.ID("near-reason"), "complaint 2026-131: the corner"),
		chromedp.Click(chromedp.ID("near-search")))
	b.WaitTrue("the near search's page", `location.search.includes("lat=") && document.readyState === "complete"`)
	b.Do("reading the near search's matches", chromedp.WaitVisible(chromedp.ID("matches")))
	if at := b.Location(); !strings.Contains(at, "lat=-33.9249") {
		t.Fatalf("after the near search the browser is at %s", at)
	}
	rows = tableRows(t, b, "matches")
	if len(rows) != 1 || rowWith(rows, c.car.ID, "dock-01", "GPS fix", "m from the point", "GPS/TRACK.NMEA", c.gps.SHA256) == "" {
		t.Errorf("the near search shows:\n%s\nwant one row: %s from dock-01 through GPS/TRACK.NMEA %s", strings.Join(rows, "\n"), c.car.ID, c.gps.SHA256)
	}
	b.Do("scrolling to the results", chromedp.ScrollIntoView(chromedp.CSS("footer")))
	b.Screenshot("console-near-search.png")

	// Open the recording from the result.
	b.Do("opening the recording from the result",
		chromedp.Click(chromedp.CSS(`#matches a.item-link`)),
		chromedp.WaitVisible(chromedp.ID("item-sha")))
	if sha, _ := chromedp.Run(b.Ctx, chromedp.Text(chromedp.ID("item-sha"))); sha != c.car.SHA256 {
		t.Errorf("the recording opened from the result shows SHA-256 %q, want %s (%s)", sha, c.car.SHA256, b.Location())
	}
	noProblems(t, b)

	// Both searches are access records, as typed, from the web.
	var evs []custody.Event
	if err := json.Unmarshal([]byte(c.console.must("access", "--json", "--actor", "oidc:ivy.investigator@example.test")), &evs); err != nil {
		t.Fatal(err)
	}
	var plate, near bool
	for _, ev := range evs {
		d := ev.Details
		if d["action"] != "find" || d["via"] != "web" {
			continue
		}
		plate = plate || (d["plate"] == "CA I23-456" && d["fuzzy"] == "true" && d["results"] == "1" && d["reason"] == "complaint 2026-131")
		near = near || (d["near"] == "-33.9249,18.4241" && d["radius"] == "300" && d["results"] == "1")
	}
	if !plate || !near {
		t.Errorf("the console's access log lacks the web searches (plate %v, near %v): %+v", plate, near, evs)
	}
	t.Logf("scenario done in %v", time.Since(start).Round(time.Millisecond))
}

// An investigator signs in at the provider's form, searches, opens the
// item, gives the reason once and plays the H.264 recording until its
// currentTime advances (no byte before the reason: 428), downloads it with
// a reason and gets exactly the recorded bytes (SHA-256), and finds both
// accesses, with their reasons and under their name, in the item's custody
// timeline.
func (c *consoleWeb) searchPlayDownload(t *testing.T) {
	start := time.Now()
	b := browser.Start(t, 1280, 900)
	c.signIn(t, b, investigatorLogin, "/search", "console-signin.png")
	sid := c.session(t, b).Value
	actor := "oidc:ivy.investigator@example.test"

	// Search by officer: the clip, linked to its item page.
	b.Do("searching by officer",
		chromedp.SendKeys(chromedp.ID("officer"), "officer-4711"),
		chromedp.SendKeys(chromedp.ID("search-reason"), "complaint 2026-118"),
		chromedp.Click(chromedp.ID("search")),
		chromedp.WaitVisible(chromedp.ID("results")))
	count, _ := chromedp.Run(b.Ctx, chromedp.Text(chromedp.ID("count")))
	if txt, _ := chromedp.Run(b.Ctx, chromedp.Text(chromedp.ID("results"))); !strings.HasPrefix(count, "1 recording(s)") || !strings.Contains(txt, c.item.ID) {
		t.Errorf("search result page says %q: %q, want the one recording %s", count, txt, c.item.ID)
	}
	b.Screenshot("console-search.png")
	phoneWidth(t, b)
	b.Do("opening the item", chromedp.Click(chromedp.CSS("a.item-link")), chromedp.WaitVisible(chromedp.ID("view-form")))
	if sha, _ := chromedp.Run(b.Ctx, chromedp.Text(chromedp.ID("item-sha"))); sha != c.item.SHA256 {
		t.Errorf("item page shows SHA-256 %q, want %s", sha, c.item.SHA256)
	}

	// No byte of the recording before its viewing is on record.
	if code, body := c.request(t, "GET", "/items/"+c.item.ID+"/media", sid, nil, "Range", "bytes=0-"); code != http.StatusPreconditionRequired {
		t.Errorf("media before a reason: %d %q, want 428", code, brief(body))
	}

	// Play: the reason once, then the player; the browser asks in ranges.
	var mu sync.Mutex
	var media []string // the console's answers to the player: status and type
	if err := chromedp.Listen(b.Ctx, func(ev any) {
		if r, ok := ev.(*network.EventResponseReceived); ok && strings.HasSuffix(r.Response.URL, "/media") {
			mu.Lock()
			media = append(media, fmt.Sprintf("%d %s", r.Response.Status, r.Response.MimeType))
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	b.Do("giving the reason to view",
		chromedp.SendKeys(chromedp.ID("view-reason"), "complaint 2026-118: review"),
		chromedp.Click(chromedp.ID("play")),
		chromedp.WaitVisible(chromedp.ID("player")))
	b.WaitTrue("the video playing past 0.5 s with decoded frames", `(() => { const v = document.getElementById("player");
		return v.currentTime > 0.5 && v.getVideoPlaybackQuality().totalVideoFrames > 0; })()`)
	state, err := chromedp.Run(b.Ctx, chromedp.Evaluate[map[string]any](`(() => { const v = document.getElementById("player");
		return {w: v.videoWidth, h: v.videoHeight, t: v.currentTime, err: v.error ? v.error.message : null}; })()`))
	if err != nil {
		t.Fatal(err)
	}
	if state["w"] != float64(320) || state["h"] != float64(240) {
		t.Errorf("video state %v, want a 320x240 picture", state)
	}
	b.Screenshot("console-play.png")
	mu.Lock()
	if len(media) == 0 || media[0] != "206 video/mp4" {
		t.Errorf("the console answered the player's requests with %q, want 206 (ranges) of video/mp4", media)
	}
	mu.Unlock()
	t.Logf("video played after %v", time.Since(start).Round(time.Millisecond))

	// The reason is asked once: back on the item page, a link to play.
	b.Do("back to the item", chromedp.Navigate(c.base+"/items/"+c.item.ID), chromedp.WaitVisible(chromedp.ID("play-link")))

	// Download with a reason.
	got := download(t, b, "downloading with a reason",
		chromedp.SendKeys(chromedp.ID("download-reason"), "complaint 2026-118: copy for the prosecutor"),
		chromedp.Click(chromedp.ID("download")))
	sum := sha256.Sum256(got)
	if hex.EncodeToString(sum[:]) != c.item.SHA256 || len(got) != len(c.clip) {
		t.Errorf("downloaded %d bytes hashing %x, want the camera's %d bytes hashing %s", len(got), sum, len(c.clip), c.item.SHA256)
	}

	// Both accesses are in the item's custody, with their reasons, under
	// the signed-in person's name, recorded by the console.
	b.Do("the item's custody", chromedp.Navigate(c.base+"/items/"+c.item.ID), chromedp.WaitVisible(chromedp.ID("custody")))
	b.Screenshot("console-item.png")
	rows := custodyRows(t, b)
	for _, want := range [][]string{
		{"ACCESSED", "hq", actor, "action=play", "reason=complaint 2026-118: review"},
		{"ACCESSED", "hq", actor, "action=retrieve", "reason=complaint 2026-118: copy for the prosecutor"},
		{"UPLOADED", "dock-01"},
	} {
		if rowWith(rows, want...) == "" {
			t.Errorf("custody timeline has no row with %q:\n%s", want, strings.Join(rows, "\n"))
		}
	}
	b.Do("scrolling to the custody", chromedp.ScrollIntoView(chromedp.ID("custody")))
	b.Screenshot("console-item-custody.png")
	noProblems(t, b)
	t.Logf("scenario done in %v", time.Since(start).Round(time.Millisecond))
}

// An investigator is offered no custodian's action and is refused one:
// the item page has no hold, classify or export form and the navigation
// no fleet health, the fleet page answers 403 in the browser, and the
// custodian's forms (hold, classify, export, verify) posted from Go with
// the investigator's own session and CSRF token answer 403 and leave
// nothing in the item's custody. A custodian, signed in next in the same
// browser after the investigator signs out, places that hold through the
// page, exports the item, opens the fleet page and runs a verification:
// the refusal is the role's, not a broken form.
func (c *consoleWeb) investigatorRefused(t *testing.T) {
	start := time.Now()
	itemPage := "/items/" + c.item.ID
	b, sid, tok := c.investigatorOn(t, itemPage)
	for _, form := range []string{"hold-form", "classify-form", "export-form"} {
		if n, err := chromedp.Run(b.Ctx, chromedp.Evaluate[int](`document.querySelectorAll("#`+form+`").length`)); err != nil || n != 0 {
			t.Errorf("the investigator's item page offers #%s (%d, %v)", form, n, err)
		}
	}
	if nav, _ := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS("header nav"))); strings.Contains(nav, "Fleet") || strings.Contains(nav, "Verify") {
		t.Errorf("the investigator's navigation offers %q", nav)
	}

	// The custodian's page, opened by address: refused, and said why.
	resp, err := chromedp.Run(b.Ctx, chromedp.NavigateResponse(c.base+"/fleet"))
	if err != nil {
		t.Fatal(err)
	}
	if msg := b.Text(); resp.Status != http.StatusForbidden || !strings.Contains(msg, "your role (investigator) may not do this") {
		t.Errorf("the investigator opening /fleet: %d, page says %q; want 403 naming the role", resp.Status, msg)
	}
	b.Screenshot("console-refused.png")

	// The custodian's actions, posted with the investigator's valid
	// session and CSRF token: refused before anything is done.
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{itemPage + "/hold", url.Values{"case": {"2026-200"}, "reason": {"hold by an investigator"}}},
		{itemPage + "/classify", url.Values{"class": {"uncategorized"}, "reason": {"classify by an investigator"}}},
		{"/export", url.Values{"id": {c.item.ID}, "reason": {"export by an investigator"}}},
		{"/verify", url.Values{"reason": {"verify by an investigator"}}},
	} {
		tc.form.Set("csrf", tok)
		if code, body := c.request(t, "POST", tc.path, sid, tc.form); code != http.StatusForbidden {
			t.Errorf("investigator POST %s: %d %q, want 403", tc.path, code, brief(body))
		}
	}
	if code, body := c.request(t, "GET", "/api/fleet", sid, nil); code != http.StatusForbidden || !strings.Contains(body, `"error"`) {
		t.Errorf("investigator GET /api/fleet: %d %q, want 403 with a JSON error", code, body)
	}
	b.Do("the item after the refusals", chromedp.Navigate(c.base+itemPage), chromedp.WaitVisible(chromedp.ID("custody")))
	for _, row := range custodyRows(t, b) {
		if strings.Contains(row, "by an investigator") {
			t.Errorf("a refused action reached the service: %s", row)
		}
	}

	// Sign out (the session ends on the server); a custodian signs in,
	// places the hold, exports the item (a complete tar of the dock host's
	// and the console's custody), opens the fleet page and verifies.
	b.Do("signing out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("message")))
	if code, _ := c.request(t, "GET", "/api/me", sid, nil); code != http.StatusUnauthorized {
		t.Errorf("the investigator's session after signing out: GET /api/me %d, want 401", code)
	}
	c.signIn(t, b, custodianLogin, itemPage, "")
	b.Do("placing a legal hold as custodian",
		chromedp.SendKeys(chromedp.ID("hold-case"), "2026-200"),
		chromedp.SendKeys(chromedp.ID("hold-reason"), "preserve for case 2026-200"),
		chromedp.Click(chromedp.ID("hold")),
		chromedp.WaitVisible(chromedp.ID("message")))
	if msg := b.Text(); !strings.Contains(msg, "held by 2026-200") {
		t.Errorf("after the custodian's hold the page says %q", msg)
	}
	b.Do("back to the item", chromedp.Click(chromedp.ID("back")), chromedp.WaitVisible(chromedp.ID("hold-form")))
	if holds, _ := chromedp.Run(b.Ctx, chromedp.Text(chromedp.ID("item-holds"))); holds != "2026-200" {
		t.Errorf("after the custodian's hold the item's holds are %q, want 2026-200", holds)
	}
	b.Screenshot("console-custodian-item.png")
	pkg := download(t, b, "the court export",
		chromedp.SendKeys(chromedp.ID("export-reason"), "court copy"),
		chromedp.Click(chromedp.ID("export")))
	tr := tar.NewReader(bytes.NewReader(pkg))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Errorf("the custodian's export: after %v: %v", names, err)
			break
		}
		names = append(names, h.Name)
	}
	if !slices.Contains(names, "hosts/dock-01/checkpoint.note") || !slices.Contains(names, "hosts/hq/checkpoint.note") {
		t.Errorf("the custodian's export holds %v; want a package of dock-01's and the console's custody", names)
	}
	b.Do("the fleet page", chromedp.Click(chromedp.CSS(`header nav a[href="/fleet"]`)), chromedp.WaitVisible(chromedp.ID("hosts")))
	if hosts, _ := chromedp.Run(b.Ctx, chromedp.Text(chromedp.ID("hosts"))); !strings.Contains(hosts, "dock-01") {
		t.Errorf("the custodian's fleet page lists %q, want dock-01", hosts)
	}
	b.Screenshot("console-fleet.png")
	b.Do("verifying as custodian",
		chromedp.Click(chromedp.CSS(`header nav a[href="/verify"]`)),
		chromedp.SendKeys(chromedp.ID("verify-reason"), "weekly check"),
		chromedp.Click(chromedp.ID("verify")),
		chromedp.WaitVisible(chromedp.ID("verify-result")))
	if res, _ := chromedp.Run(b.Ctx, chromedp.Text(chromedp.ID("verify-result"))); !strings.HasPrefix(res, "OK") {
		t.Errorf("the custodian's verification says %q", res)
	}
	b.Screenshot("console-verify.png")
	noProblems(t, b)
	t.Logf("scenario done in %v", time.Since(start).Round(time.Millisecond))
}

// A session cookie altered by one character signs nobody in: the browser
// holding it is sent to the provider's sign-in form, and from Go it gets
// 401 for the API and for a form posted with the session's valid CSRF
// token. A form sent without the CSRF token (the browser's own download
// form with its token removed, and the same from Go, or with a wrong
// token) is refused with 403 before the service is asked: no retrieval is
// recorded. The untouched cookie and the right token still work.
func (c *consoleWeb) forgeriesRefused(t *testing.T) {
	start := time.Now()
	itemPage := "/items/" + c.item.ID
	b, sid, tok := c.investigatorOn(t, itemPage)

	// The cookie, tampered with: its last character changed.
	last := sid[len(sid)-1]
	tampered := sid[:len(sid)-1] + map[bool]string{true: "B", false: "A"}[last == 'A']
	c.setSession(t, b, tampered)
	b.Do("opening the item with a tampered session cookie should reach the provider's sign-in form",
		chromedp.Navigate(c.base+itemPage), chromedp.WaitVisible(chromedp.ID("username")))
	if at := b.Location(); !strings.HasPrefix(at, c.idp.AuthorizationEndpoint()+"?") {
		t.Errorf("with a tampered cookie the browser is at %s, want the provider's form", at)
	}
	b.Screenshot("console-tampered-cookie.png")
	if code, body := c.request(t, "GET", "/api/me", tampered, nil); code != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
		t.Errorf("GET /api/me with a tampered cookie: %d %q, want 401 with a JSON error", code, body)
	}
	form := url.Values{"reason": {"tampered cookie probe"}, "csrf": {tok}}
	if code, body := c.request(t, "POST", itemPage+"/download", tampered, form); code != http.StatusUnauthorized {
		t.Errorf("download with a tampered cookie and the session's CSRF token: %d %q, want 401", code, brief(body))
	}
	if code, body := c.request(t, "GET", "/api/me", sid, nil); code != http.StatusOK || !strings.Contains(body, "ivy.investigator") {
		t.Errorf("GET /api/me with the untouched cookie: %d %q, want 200 naming the investigator", code, body)
	}

	// The untouched cookie back; the download form without its token.
	c.setSession(t, b, sid)
	b.Do("the item page again", chromedp.Navigate(c.base+itemPage), chromedp.WaitVisible(chromedp.ID("download-form")))
	if _, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](
		`(() => { document.querySelector('#download-form input[name="csrf"]').remove(); return true; })()`)); err != nil {
		t.Fatal(err)
	}
	resp, err := chromedp.RunResponse(b.Ctx,
		chromedp.SendKeys(chromedp.ID("download-reason"), "missing csrf probe"),
		chromedp.Click(chromedp.ID("download")))
	if err != nil {
		// A download instead of the refusal aborts the navigation.
		t.Fatalf("submitting the download form without its token: %v; want a 403 page (browser at %s)", err, b.Location())
	}
	if msg := b.Text(); resp.Status != http.StatusForbidden || !strings.Contains(msg, "no valid CSRF token") {
		t.Errorf("download form without its CSRF token: %d, page says %q; want 403", resp.Status, msg)
	}
	b.Screenshot("console-csrf-refused.png")
	for name, f := range map[string]url.Values{
		"no token":    {"reason": {"missing csrf probe"}},
		"wrong token": {"reason": {"missing csrf probe"}, "csrf": {tampered}},
	} {
		if code, body := c.request(t, "POST", itemPage+"/download", sid, f); code != http.StatusForbidden {
			t.Errorf("download with %s: %d %q, want 403", name, code, brief(body))
		}
	}
	b.Do("the item's custody", chromedp.Navigate(c.base+itemPage), chromedp.WaitVisible(chromedp.ID("custody")))
	for _, row := range custodyRows(t, b) {
		if strings.Contains(row, "probe") {
			t.Errorf("a refused request reached the service: %s", row)
		}
	}

	// The same form with the right token is served (and recorded).
	if code, body := c.request(t, "POST", itemPage+"/download", sid, url.Values{"reason": {"with its token"}, "csrf": {tok}}); code != http.StatusOK {
		t.Errorf("download with the session's CSRF token: %d %q, want 200", code, brief(body))
	}
	noProblems(t, b)
	t.Logf("scenario done in %v", time.Since(start).Round(time.Millisecond))
}

// An investigator downloads an item and signs out; an auditor, signed in
// next in the same browser, lands on the access log, which, filtered by
// the investigator and the action, lists that download with its reason
// and nothing else, and offers the CSV export of the same filter. The
// auditor has no search.
func (c *consoleWeb) auditorReadsAccessLog(t *testing.T) {
	start := time.Now()
	b, sid, tok := c.investigatorOn(t, "/items/"+c.item.ID)
	if code, body := c.request(t, "POST", "/items/"+c.item.ID+"/download", sid, url.Values{"reason": {"audit sample"}, "csrf": {tok}}); code != http.StatusOK {
		t.Fatalf("the investigator's download: %d %q", code, brief(body))
	}
	b.Do("signing out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("message")))
	c.signIn(t, b, auditorLogin, "/accesses", "")
	if nav, _ := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS("header nav"))); strings.Contains(nav, "Search") {
		t.Errorf("the auditor's navigation offers %q", nav)
	}
	// The unfiltered log has the same table: wait for the filtered page's
	// answer, not for the table.
	if _, err := chromedp.RunResponse(b.Ctx,
		chromedp.SendKeys(chromedp.ID("actor"), "oidc:ivy.investigator@example.test"),
		chromedp.SendKeys(chromedp.ID("action"), "retrieve"),
		chromedp.Click(chromedp.ID("filter"))); err != nil {
		t.Fatalf("filtering the access log: %v", err)
	}
	if at := b.Location(); !strings.Contains(at, "action=retrieve") {
		t.Fatalf("after filtering the browser is at %s", at)
	}
	rows := tableRows(t, b, "accesses")
	if rowWith(rows, "oidc:ivy.investigator@example.test", "retrieve", c.item.ID, "audit sample") == "" {
		t.Errorf("the access log filtered by the investigator's retrievals lacks the download:\n%s", strings.Join(rows, "\n"))
	}
	for _, r := range rows {
		if !strings.Contains(r, "oidc:ivy.investigator@example.test") || !strings.Contains(r, "retrieve") {
			t.Errorf("the filtered access log shows %q", r)
		}
	}
	if href, _ := chromedp.Run(b.Ctx, chromedp.AttributeValue(chromedp.ID("csv"), "href")); !strings.Contains(href.Value, "action=retrieve") {
		t.Errorf("the CSV link %q does not carry the filter", href.Value)
	}
	// The auditor may not open an item: its id is text, not a link to a 403.
	if n, err := chromedp.Run(b.Ctx, chromedp.Evaluate[int](`document.querySelectorAll('#accesses a[href^="/items/"]').length`)); err != nil || n != 0 {
		t.Errorf("the auditor's access log links %d items (%v), which the auditor may not open", n, err)
	}
	b.Screenshot("console-accesses.png")
	noProblems(t, b)
	t.Logf("scenario done in %v", time.Since(start).Round(time.Millisecond))
}

// phoneWidth: the search page with its results at a phone's 390×844 does
// not scroll sideways (a wide table scrolls inside itself), and the search
// button, the count and the first result's link are on the screen. The
// viewport is put back to 1280×900 after.
func phoneWidth(t *testing.T, b *browser.Browser) {
	t.Helper()
	b.Do("narrowing to a phone's 390x844", chromedp.EmulateViewport(390, 844))
	defer b.Do("widening back to 1280x900", chromedp.EmulateViewport(1280, 900))
	b.WaitTrue("the page laid out at 390 px", `window.innerWidth === 390`)
	if w := eval[float64](t, b, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("at 390x844 the search page is %v px wide: it scrolls sideways", w)
	}
	for _, sel := range []string{"#search", "#count", "#results", "#results a.item-link"} {
		if !eval[bool](t, b, `(() => { const r = document.querySelector(`+strconv.Quote(sel)+`).getBoundingClientRect(); return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth + 0.5; })()`) {
			t.Errorf("at 390x844 %s is not within the screen's width", sel)
		}
	}
	b.Screenshot("console-search-phone.png")
}
