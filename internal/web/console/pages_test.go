package console

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// do sends one request with the session's cookie (and, for a form, its
// CSRF token).
func do(h *Handler, ck *http.Cookie, s *session, method, target string, form url.Values, hdr ...string) *httptest.ResponseRecorder {
	var req *http.Request
	if method == http.MethodPost {
		if form == nil {
			form = url.Values{}
		}
		form.Set("csrf", s.csrf)
		req = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, target, nil)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	req.AddCookie(ck)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// Playing asks for a reason once per item and session: the viewing is
// put on record (Play) before the player page or any byte, a second view
// does not ask again, and the media answers the player's ranges with 206
// and exactly those bytes. Without the reason first, no byte: 428.
func TestPlayAsksOnceAndServesRanges(t *testing.T) {
	h, fb, _ := newTestHandler(t, Options{})
	ck, s := sessionCookieFor(h, Investigator)
	if rec := do(h, ck, s, "GET", "/items/item-01/media", nil, "Range", "bytes=0-"); rec.Code != http.StatusPreconditionRequired || fb.count("OpenRange") != 0 {
		t.Fatalf("media before a reason: %d, %d reads, want 428 and none", rec.Code, fb.count("OpenRange"))
	}
	if rec := do(h, ck, s, "POST", "/items/item-01/view", url.Values{"reason": {""}}); rec.Code != http.StatusBadRequest || fb.count("Play") != 0 {
		t.Fatalf("view without a reason: %d, Play %d", rec.Code, fb.count("Play"))
	}
	for range 2 {
		rec := do(h, ck, s, "POST", "/items/item-01/view", url.Values{"reason": {"case 2026-114"}})
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/items/item-01/play" {
			t.Fatalf("view: %d %q", rec.Code, rec.Header().Get("Location"))
		}
	}
	if fb.count("Play") != 1 {
		t.Errorf("two views in one session recorded %d viewings, want 1", fb.count("Play"))
	}
	if rec := do(h, ck, s, "GET", "/items/item-01/play", nil); !strings.Contains(rec.Body.String(), `<video id="player" src="/items/item-01/media"`) {
		t.Errorf("play page after the reason has no player: %s", clip(rec.Body.String()))
	}
	rec := do(h, ck, s, "GET", "/items/item-01/media", nil, "Range", "bytes=100-1123")
	if rec.Code != http.StatusPartialContent || !bytes.Equal(rec.Body.Bytes(), fb.data[100:1124]) ||
		rec.Header().Get("Content-Range") != "bytes 100-1123/65536" || rec.Header().Get("Content-Type") != "video/mp4" {
		t.Errorf("range: %d %q %q, %d bytes", rec.Code, rec.Header().Get("Content-Range"), rec.Header().Get("Content-Type"), rec.Body.Len())
	}
	rec = do(h, ck, s, "GET", "/items/item-01/media", nil)
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), fb.data) {
		t.Errorf("whole media: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	// Another session of the same person asks again.
	ck2, s2 := sessionCookieFor(h, Investigator)
	if rec := do(h, ck2, s2, "GET", "/items/item-01/media", nil); rec.Code != http.StatusPreconditionRequired {
		t.Errorf("media in a new session: %d, want 428", rec.Code)
	}
}

// A download needs a reason, streams the bytes the service hands over as
// an attachment, named by the item.
func TestDownload(t *testing.T) {
	h, fb, _ := newTestHandler(t, Options{})
	ck, s := sessionCookieFor(h, Investigator)
	if rec := do(h, ck, s, "POST", "/items/item-01/download", nil); rec.Code != http.StatusBadRequest || fb.count("Get") != 0 {
		t.Fatalf("download without a reason: %d, Get %d", rec.Code, fb.count("Get"))
	}
	rec := do(h, ck, s, "POST", "/items/item-01/download", url.Values{"reason": {"court"}})
	sum := sha256.Sum256(rec.Body.Bytes())
	if rec.Code != 200 || hex.EncodeToString(sum[:]) != fb.item.SHA256 ||
		rec.Header().Get("Content-Disposition") != `attachment; filename=item-01.mp4` {
		t.Errorf("download: %d %q sha %x", rec.Code, rec.Header().Get("Content-Disposition"), sum)
	}
}

// Parameters are checked before the service is asked: a bad one is 400
// with a message that names it.
func TestBadParameters(t *testing.T) {
	h, fb, _ := newTestHandler(t, Options{})
	ck, s := sessionCookieFor(h, Custodian|Auditor)
	for _, tc := range []struct{ target, names string }{
		{"/search?since=yesterday", "since"},
		{"/search?since=2026-11-25&until=2026-11-24", "since"},
		{"/search?state=lost", "state"},
		{"/search?page=0", "page"},
		{"/search?officer=a&vehicle=b", "officer"},
		{"/search?camera=" + url.QueryEscape("a\x00b"), "camera"},
		{"/search?camera=a&camera=b", "camera"},
		{"/search?officer=" + strings.Repeat("x", 300), "officer"},
		{"/items/UPPER", "item id"},
		{"/items/" + url.PathEscape("../etc"), "item id"},
		{"/api/items?until=2026-13-01", "until"},
		{"/accesses?item=a%2Fb", "item id"},
		{"/accesses.csv?since=x", "since"},
	} {
		before := fb.total()
		rec := do(h, ck, s, "GET", tc.target, nil)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), tc.names) {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.target, rec.Code, clip(rec.Body.String()), tc.names)
		}
		if fb.total() != before {
			t.Errorf("%s: the service was asked", tc.target)
		}
	}
	if rec := do(h, ck, s, "POST", "/items/item-01/classify", url.Values{"reason": {"r"}, "class": {"forever"}}); rec.Code != http.StatusBadRequest {
		t.Errorf("unknown class: %d", rec.Code)
	}
	if rec := do(h, ck, s, "POST", "/export", url.Values{"reason": {"r"}}); rec.Code != http.StatusBadRequest {
		t.Errorf("export without items: %d", rec.Code)
	}
}

// The access log's CSV keeps a typed formula as text.
func TestAccessCSV(t *testing.T) {
	h, _, _ := newTestHandler(t, Options{})
	ck, s := sessionCookieFor(h, Auditor)
	rec := do(h, ck, s, "GET", "/accesses.csv?action=play", nil)
	lines := strings.Split(strings.TrimSpace(rec.Body.String()), "\n")
	if rec.Code != 200 || len(lines) != 2 || !strings.HasPrefix(lines[0], "seq,at,host,actor") || !strings.Contains(lines[1], ",'=cmd()") {
		t.Errorf("csv: %d %q", rec.Code, rec.Body.String())
	}
	if rec := do(h, ck, s, "GET", "/accesses.csv?action=retrieve", nil); strings.Count(rec.Body.String(), "\n") != 1 {
		t.Errorf("action filter kept other actions: %q", rec.Body.String())
	}
}

// The search lists what the service found, with links to the items, and
// the item page shows the custody with each record's signing host and the
// holds; custodian forms only for a custodian.
func TestSearchAndItemPages(t *testing.T) {
	h, _, _ := newTestHandler(t, Options{})
	ck, s := sessionCookieFor(h, Investigator)
	rec := do(h, ck, s, "GET", "/search?officer=officer-4711&state=verified", nil)
	if !strings.Contains(rec.Body.String(), `href="/items/item-01"`) || !strings.Contains(rec.Body.String(), "1 recording(s)") {
		t.Errorf("search page: %s", clip(rec.Body.String()))
	}
	body := do(h, ck, s, "GET", "/items/item-01", nil).Body.String()
	for _, want := range []string{"<td>dock-01</td>", "<td>hq-console</td>", "2026-114", `id="download-form"`} {
		if !strings.Contains(body, want) {
			t.Errorf("item page lacks %q", want)
		}
	}
	if strings.Contains(body, `id="hold-form"`) {
		t.Error("an investigator is offered the hold form")
	}
	ck, s = sessionCookieFor(h, Custodian)
	if body := do(h, ck, s, "GET", "/items/item-01", nil).Body.String(); !strings.Contains(body, `id="hold-form"`) {
		t.Error("a custodian is not offered the hold form")
	}
}
