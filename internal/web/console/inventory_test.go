package console

import (
	"bytes"
	"html"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/service"
)

// withInventory gives the fake a published inventory, version 4: BWC-1
// handed from pc-1 to pc-2 on 1 December, BWC-2 held by pc-7.
func withInventory(fb *fakeBackend) {
	at := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	fb.inv = &service.InventoryView{Console: "hq", Version: 4, SHA256: strings.Repeat("ab", 32), PublishedAt: &at, Source: "_inventory/hq@v4",
		Cameras: []config.InventoryCamera{
			{Serial: "BWC-1", Kind: "body", AssignedTo: "pc-2", Assignments: []config.Assignment{{To: "pc-1"}, {To: "pc-2", From: at}}},
			{Serial: "BWC-2", Kind: "body", AssignedTo: "pc-7"},
		}}
}

// unchanged fails the test when an inventory edit reached the service:
// nothing published (the fake's store stays at version 4) and nothing
// recorded.
func unchanged(t *testing.T, fb *fakeBackend, what string) {
	t.Helper()
	if n := fb.count("AssignInventory") + fb.count("RetireInventory") + fb.count("ImportInventoryData"); n != 0 || len(fb.published) != 0 || fb.inv.Version != 4 {
		t.Errorf("%s: the service was asked %d edit(s), %d published, version %d; want none and version 4", what, n, len(fb.published), fb.inv.Version)
	}
}

// Every person who may search reads the inventory: its version, hash and
// each camera's holder and history; only a custodian gets the forms. An
// investigator or an auditor posting an edit with a valid CSRF token is
// refused (403) before the service is asked: nothing published, nothing
// recorded. The auditor does not read it.
func TestInventoryPageRoles(t *testing.T) {
	h, fb, _ := newTestHandler(t, Options{})
	withInventory(fb)
	ci, si := sessionCookieFor(h, Investigator)
	rec := do(h, ci, si, "GET", "/inventory", nil)
	body := html.UnescapeString(rec.Body.String())
	if rec.Code != http.StatusOK || !strings.Contains(body, `id="inventory-version">4<`) || !strings.Contains(body, strings.Repeat("ab", 32)) ||
		!strings.Contains(body, "pc-1 (before the history)") || !strings.Contains(body, "pc-2 from 2026-12-01 06:00:00Z") {
		t.Fatalf("investigator's inventory page: %d %s", rec.Code, clip(body))
	}
	if strings.Contains(body, "/inventory/assign") || strings.Contains(body, "/inventory/retire") || strings.Contains(body, "/inventory/import") {
		t.Errorf("the investigator's page offers the custodian's forms")
	}
	cc, sc := sessionCookieFor(h, Custodian)
	if rec := do(h, cc, sc, "GET", "/inventory", nil); !strings.Contains(rec.Body.String(), `action="/inventory/assign"`) ||
		!strings.Contains(rec.Body.String(), `action="/inventory/retire"`) {
		t.Errorf("the custodian's page has no edit forms: %s", clip(rec.Body.String()))
	}
	ca, sa := sessionCookieFor(h, Auditor)
	if rec := do(h, ca, sa, "GET", "/inventory", nil); rec.Code != http.StatusForbidden {
		t.Errorf("auditor GET /inventory: %d, want 403", rec.Code)
	}
	for _, who := range []struct {
		ck *http.Cookie
		s  *session
	}{{ci, si}, {ca, sa}} {
		for _, path := range []string{"/inventory/assign", "/inventory/retire", "/inventory/import"} {
			var rec *httptest.ResponseRecorder
			if path == "/inventory/import" {
				rec = uploadInventory(h, who.ck, who.s.csrf, "inv.csv", []byte(inventoryCSV))
			} else {
				rec = do(h, who.ck, who.s, "POST", path, url.Values{"serial": {"BWC-2"}, "to": {"pc-9"}})
			}
			if rec.Code != http.StatusForbidden {
				t.Errorf("%s POST %s: %d, want 403", who.s.roles, path, rec.Code)
			}
			unchanged(t, fb, who.s.roles.String()+" POST "+path)
		}
	}
}

// A document past three quarters of what a dock host reads is said on
// the page, above it (what the service's view warns); one below is not.
func TestInventoryPageShowsTheSizeWarning(t *testing.T) {
	h, fb, _ := newTestHandler(t, Options{})
	withInventory(fb)
	ci, si := sessionCookieFor(h, Investigator)
	if body := do(h, ci, si, "GET", "/inventory", nil).Body.String(); strings.Contains(body, `id="size-warning"`) {
		t.Errorf("a size warning on the page of a document without one: %s", clip(body))
	}
	fb.inv.Warning = "the signed inventory is 3300000 bytes, 78% of the 4194304 a dock host reads"
	body := html.UnescapeString(do(h, ci, si, "GET", "/inventory", nil).Body.String())
	if !strings.Contains(body, `id="size-warning">Nearly too large: `+fb.inv.Warning) {
		t.Errorf("the page of a document past three quarters: %s", clip(body))
	}
}

// An edit without the session's CSRF token (none, or another session's)
// is refused before the service is asked.
func TestInventoryEditNeedsCSRF(t *testing.T) {
	h, fb, _ := newTestHandler(t, Options{})
	withInventory(fb)
	ck, _ := sessionCookieFor(h, Custodian)
	_, other := sessionCookieFor(h, Custodian)
	for _, tok := range []string{"", other.csrf} {
		if rec := uploadInventory(h, ck, tok, "inv.csv", []byte(inventoryCSV)); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "CSRF") {
			t.Errorf("upload with token %q: %d, want 403 naming the CSRF token", tok, rec.Code)
		}
		unchanged(t, fb, "an upload without the session's token")
		for _, path := range []string{"/inventory/assign", "/inventory/retire"} {
			form := url.Values{"serial": {"BWC-2"}, "to": {"pc-9"}}
			if tok != "" {
				form.Set("csrf", tok)
			}
			req := httptest.NewRequest("POST", path, httpBody(form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := serve(h, ck, req)
			if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "CSRF") {
				t.Errorf("POST %s with token %q: %d, want 403 naming the CSRF token", path, tok, rec.Code)
			}
			unchanged(t, fb, "POST "+path+" without the session's token")
		}
	}
}

// A custodian's hand-over and retirement go to the service under their own
// name and from the web, then back to the page (303), which shows the
// version published and the new holder.
func TestInventoryEditPublishes(t *testing.T) {
	h, fb, _ := newTestHandler(t, Options{})
	withInventory(fb)
	ck, s := sessionCookieFor(h, Custodian)
	rec := do(h, ck, s, "POST", "/inventory/assign", url.Values{"serial": {"BWC-2"}, "to": {"pc-9"}, "effective": {""}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/inventory?published=5" {
		t.Fatalf("assign: %d %q %s", rec.Code, rec.Header().Get("Location"), clip(rec.Body.String()))
	}
	if len(fb.published) != 1 || fb.published[0].Caller.Actor != s.actor || !strings.HasPrefix(fb.published[0].Caller.Peer, "web:") ||
		fb.published[0].Change["to"] != "pc-9" {
		t.Fatalf("published %+v, want one assign to pc-9 by %s from the web", fb.published, s.actor)
	}
	rec = do(h, ck, s, "GET", "/inventory?published=5", nil)
	body := rec.Body.String()
	if !strings.Contains(body, "Version 5 published") || !strings.Contains(body, `<td class="holder">pc-9</td>`) {
		t.Errorf("the page after the hand-over: %s", clip(body))
	}
	// A link claiming another version says nothing.
	if rec := do(h, ck, s, "GET", "/inventory?published=99", nil); strings.Contains(rec.Body.String(), "published;") {
		t.Errorf("a crafted published=99 is shown as done")
	}
	rec = do(h, ck, s, "POST", "/inventory/retire", url.Values{"serial": {"BWC-1"}, "effective": {"2026-12-05T08:00"}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/inventory?published=6" || len(fb.published) != 2 ||
		fb.inv.Cameras[0].Retired == nil || !fb.inv.Cameras[0].Retired.Equal(time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("retire: %d %q, %+v", rec.Code, rec.Header().Get("Location"), fb.inv.Cameras[0])
	}
}

// What the person got wrong is shown on the page with the form as posted,
// 400 or 409, never a 500: an unknown serial, an effective time before the
// camera's last entry, a time that does not parse, a missing field, a
// publication that raced this one ("reload and try again"). A failure of
// the console itself is a 500 whose details stay in the log.
func TestInventoryEditErrors(t *testing.T) {
	h, fb, _ := newTestHandler(t, Options{})
	withInventory(fb)
	ck, s := sessionCookieFor(h, Custodian)
	for _, tc := range []struct {
		path       string
		form       url.Values
		status     int
		says, kept string
		asked      bool
	}{
		{"/inventory/assign", url.Values{"serial": {"BWC-404"}, "to": {"pc-9"}}, 400, "camera BWC-404 is not in the inventory", `value="BWC-404"`, true},
		{"/inventory/assign", url.Values{"serial": {"BWC-1"}, "to": {"pc-9"}, "effective": {"2026-11-30"}}, 400, "is not after its last assignment", `value="2026-11-30"`, true},
		{"/inventory/assign", url.Values{"serial": {"BWC-1"}, "to": {"pc-9"}, "effective": {"yesterday"}}, 400, "effective", `value="pc-9"`, false},
		{"/inventory/assign", url.Values{"serial": {"BWC-1"}}, 400, "to: required", `value="BWC-1"`, false},
		{"/inventory/retire", url.Values{"serial": {""}}, 400, "serial: required", "", false},
		{"/inventory/assign", url.Values{"serial": {"CONFLICT"}, "to": {"pc-9"}}, 409, "reload and try again", `value="CONFLICT"`, true},
		{"/inventory/retire", url.Values{"serial": {"CONFLICT"}}, 409, "reload and try again", `value="CONFLICT"`, true},
		{"/inventory/retire", url.Values{"serial": {"BROKEN"}}, 500, "retire failed; the console's log says why", "", true},
	} {
		before := fb.count("AssignInventory") + fb.count("RetireInventory")
		rec := do(h, ck, s, "POST", tc.path, tc.form)
		body := html.UnescapeString(rec.Body.String())
		name := tc.path + " " + tc.form.Encode()
		if rec.Code != tc.status || !strings.Contains(body, `id="message">`) || !strings.Contains(body, tc.says) || !strings.Contains(body, tc.kept) {
			t.Errorf("%s: %d, want %d saying %q and keeping %q: %s", name, rec.Code, tc.status, tc.says, tc.kept, clip(body))
		}
		if !strings.Contains(body, `id="inventory-version">4<`) {
			t.Errorf("%s: the page does not show the inventory in force with the error", name)
		}
		if asked := fb.count("AssignInventory")+fb.count("RetireInventory") != before; asked != tc.asked {
			t.Errorf("%s: service asked %v, want %v", name, asked, tc.asked)
		}
		if tc.status == 500 && strings.Contains(body, "connection reset") {
			t.Errorf("%s: the page shows the console's failure's details", name)
		}
	}
	if len(fb.published) != 0 || fb.inv.Version != 4 {
		t.Errorf("refused edits published %+v", fb.published)
	}
}

// With nothing published the page says so (200) and how to publish.
func TestInventoryNonePublished(t *testing.T) {
	h, _, _ := newTestHandler(t, Options{})
	ck, s := sessionCookieFor(h, Custodian)
	rec := do(h, ck, s, "GET", "/inventory", nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `id="none"`) || !strings.Contains(rec.Body.String(), "evidenced inventory import") {
		t.Errorf("no inventory: %d %s", rec.Code, clip(rec.Body.String()))
	}
}

// inventoryCSV is a whole inventory as a custodian uploads it.
const inventoryCSV = "serial,kind,assigned_to\r\nBWC-1,body,pc-1\r\nBWC-3,vehicle,car-3\r\n"

// uploadInventory posts file as the import form does (multipart), with
// the CSRF token tok ("" for none).
func uploadInventory(h *Handler, ck *http.Cookie, tok, name string, file []byte) *httptest.ResponseRecorder {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if tok != "" {
		_ = mw.WriteField("csrf", tok)
	}
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = fw.Write(file)
	_ = mw.Close()
	req := httptest.NewRequest("POST", "/inventory/import", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return serve(h, ck, req)
}

// A custodian uploads a whole inventory: published as the next version
// under their name, recorded as an upload with the file's name; a file
// that does not parse, one over the size limit and a post without a file
// are shown on the page (400) and publish nothing. With none published
// yet, the page offers the import alone.
func TestInventoryImportUpload(t *testing.T) {
	h, fb, _ := newTestHandler(t, Options{})
	ck, s := sessionCookieFor(h, Custodian)
	rec := do(h, ck, s, "GET", "/inventory", nil)
	if body := rec.Body.String(); !strings.Contains(body, `action="/inventory/import"`) || strings.Contains(body, `action="/inventory/assign"`) {
		t.Errorf("the page with nothing published should offer the import only: %s", clip(body))
	}
	for _, tc := range []struct {
		name string
		file []byte
		says string
	}{
		{"inv.csv", []byte("serial,kind\nBWC-1\n"), "inv.csv"},
		{"big.csv", bytes.Repeat([]byte("x"), maxUpload+1), "larger than 512 KiB"},
		{strings.Repeat("n", 300) + ".csv", []byte(inventoryCSV), "file name: at most 256 characters"},
		{"junk.csv", []byte("serial,kind," + strings.Repeat("j", 400<<10) + "\n"), "…"},
	} {
		rec := uploadInventory(h, ck, s.csrf, tc.name, tc.file)
		if body := html.UnescapeString(rec.Body.String()); rec.Code != http.StatusBadRequest || !strings.Contains(body, tc.says) || len(body) > 32<<10 {
			t.Errorf("upload %q: %d, want 400 saying %q: %s", tc.name, rec.Code, tc.says, brief(body))
		}
	}
	if rec := do(h, ck, s, "POST", "/inventory/import", url.Values{}); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "choose one file") {
		t.Errorf("import without a file: %d %s", rec.Code, clip(rec.Body.String()))
	}
	if len(fb.published) != 0 || fb.inv != nil {
		t.Fatalf("refused uploads published %+v", fb.published)
	}
	rec = uploadInventory(h, ck, s.csrf, "fleet.csv", []byte(inventoryCSV))
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/inventory?published=1" {
		t.Fatalf("upload: %d %q %s", rec.Code, rec.Header().Get("Location"), clip(rec.Body.String()))
	}
	if len(fb.published) != 1 || fb.published[0].Caller.Actor != s.actor || fb.published[0].Change["file"] != "upload:fleet.csv" || len(fb.inv.Cameras) != 2 {
		t.Errorf("published %+v, cameras %+v", fb.published, fb.inv)
	}
}

// brief is a page's message, for a failure.
func brief(body string) string {
	_, msg, _ := strings.Cut(body, `id="message">`)
	msg, _, _ = strings.Cut(msg, "<")
	return msg
}
