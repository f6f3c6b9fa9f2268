package console

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/service"
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
	return serve(h, ck, req)
}

// serve answers req, sent with the session cookie ck.
func serve(h *Handler, ck *http.Cookie, req *http.Request) *httptest.ResponseRecorder {
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
		{"/search?plate=" + url.QueryEscape("CA 12З-456"), "not a plate"},
		{"/search?plate=" + url.QueryEscape("CA\x1b[2J"), "plate"},
		{"/search?plate=CA%2F123", "not a plate"},
		{"/search?plate=", "plate: required"},
		{"/search?plate=CA123456&since=2026-12-04&until=2026-12-03", "since"},
		{"/search?plate=CA123456&fuzzy=maybe", "fuzzy"},
		{"/search?fuzzy=on", "fuzzy: needs a plate"},
		{"/search?plate=CA123456&lat=1&lon=1&radius=5", "by plate or by place"},
		{"/search?lat=91&lon=18.4&radius=300", "lat"},
		{"/search?lat=-90.5&lon=18.4&radius=300", "lat"},
		{"/search?lat=-33.9&lon=180.01&radius=300", "lon"},
		{"/search?lat=-33.9&lon=NaN&radius=300", "lon"},
		{"/search?lat=-33.9&lon=18.4", "radius"},
		{"/search?lat=-33.9&lon=18.4&radius=0", "radius"},
		{"/search?lat=-33.9&lon=18.4&radius=-5", "radius"},
		{"/search?lat=-33.9&lon=18.4&radius=1e9", "radius"},
		{"/search?lat=-33.9&lon=18.4&radius=Inf", "radius"},
		{"/search?lat=north&lon=18.4&radius=300", "lat"},
		{"/search?lat=-33.9&lon=18.4&radius=300&since=2026-12-03T22:00&until=2026-12-03T21:00", "since"},
		{"/api/items?lon=18.4&radius=300", "lat"},
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

// The plate box and the near form ask the service what the command line
// asks (find --plate P --fuzzy, find --near LAT,LON --radius M with the
// window), with the reason and the search as typed for the access record;
// the page shows each match with the fact (the plate as read and its
// confidence, or the GPS fix and its distance), the sidecar file it came
// from with its SHA-256, the host, and links to the recording and to the
// file. The API answers the same with the match in JSON.
func TestPlateAndNearSearch(t *testing.T) {
	h, fb, _ := newTestHandler(t, Options{})
	ck, s := sessionCookieFor(h, Investigator)
	rec := do(h, ck, s, "GET", "/search?plate="+url.QueryEscape("ca i23-456")+"&fuzzy=on&since=2026-12-01&until=2026-12-03&reason=complaint+7", nil)
	body := rec.Body.String()
	plateSHA := sidecarSource("ANPR/READS.CSV").SHA256
	for _, want := range []string{`id="matches"`, "1 match(es)", "plate ca i23-456 and similar plates", "<b>CA 123-456</b> (CA123456), confidence 0.93",
		"0.25 edit(s)", ">ANPR/READS.CSV</a>, line 2", plateSHA, `<td class="nowrap">dock-01</td>`, `href="/items/item-01"`,
		`href="/items/sidecar-anpr-reads-csv"`, `id="fuzzy" checked`, `value="complaint 7"`} {
		if !strings.Contains(body, want) {
			t.Errorf("plate search page lacks %q: %d %s", want, rec.Code, clip(body))
		}
	}
	if len(fb.finds) != 1 {
		t.Fatalf("the service was asked %d time(s), want once", len(fb.finds))
	}
	o := fb.finds[0]
	if o.Plate != "ca i23-456" || !o.Fuzzy || o.Near != nil || o.Reason != "complaint 7" ||
		!o.Filter.Since.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) || !o.Filter.Until.Equal(time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)) ||
		o.Asked["plate"] != "ca i23-456" || o.Asked["fuzzy"] != "true" || o.Asked["via"] != "web" {
		t.Errorf("plate search asked the service %+v", o)
	}

	rec = do(h, ck, s, "GET", "/search?lat=-33.9249&lon=18.4241&radius=300&since=2026-12-03T21:00&until=2026-12-03T22:00&reason=corner", nil)
	body = rec.Body.String()
	for _, want := range []string{`id="matches"`, "within 300 m of -33.9249, 18.4241", "GPS fix at -33.925100, 18.424100, 22 m from the point (4 fix(es) inside)",
		">GPS/TRACK.NMEA</a>, line 3", sidecarSource("GPS/TRACK.NMEA").SHA256, `href="/items/item-01"`, `value="2026-12-03T21:00"`} {
		if !strings.Contains(body, want) {
			t.Errorf("near search page lacks %q: %d %s", want, rec.Code, clip(body))
		}
	}
	o = fb.finds[1]
	if o.Near == nil || o.Near.Lat != -33.9249 || o.Near.Lon != 18.4241 || o.Near.Radius != 300 || o.Plate != "" || o.Reason != "corner" ||
		!o.Filter.Since.Equal(time.Date(2026, 12, 3, 21, 0, 0, 0, time.UTC)) || !o.Filter.Until.Equal(time.Date(2026, 12, 3, 22, 0, 0, 0, time.UTC)) ||
		o.Asked["near"] != "-33.9249,18.4241" || o.Asked["radius"] != "300" || o.Asked["via"] != "web" {
		t.Errorf("near search asked the service %+v (near %+v)", o, o.Near)
	}

	rec = do(h, ck, s, "GET", "/api/items?plate=CA123456", nil)
	var api struct {
		Items []struct {
			ID    string `json:"id"`
			Match struct {
				Kind   string `json:"kind"`
				Source struct {
					SHA256 string `json:"sha256"`
				} `json:"source"`
				Plate struct {
					AsRead string `json:"as_read"`
				} `json:"plate"`
			} `json:"match"`
		} `json:"items"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &api); err != nil || len(api.Items) != 1 || api.Items[0].ID != "item-01" ||
		api.Items[0].Match.Kind != service.HitPlateRead || api.Items[0].Match.Source.SHA256 != plateSHA || api.Items[0].Match.Plate.AsRead != "CA 123-456" {
		t.Errorf("/api/items by plate: %d %s (%v)", rec.Code, rec.Body.String(), err)
	}
}

// The console asks the service for the page shown, not for every match:
// page 2 of a search is offset 50, limit 50, and the page, the API and the
// pager show the service's total and the page it returned (51–100 of
// 120), with a next link while there is more and none on the last page.
func TestSearchAsksForThePageShown(t *testing.T) {
	h, fb, _ := newTestHandler(t, Options{})
	for i := range 120 {
		it := fb.item
		it.ID = fmt.Sprintf("item-%03d", i+1)
		fb.list = append(fb.list, it)
	}
	ck, s := sessionCookieFor(h, Investigator)
	body := do(h, ck, s, "GET", "/search?officer=officer-4711&page=2", nil).Body.String()
	if o := fb.finds[len(fb.finds)-1]; o.Offset != 50 || o.Limit != 50 {
		t.Errorf("page 2 asked the service for offset %d, limit %d; want 50, 50", o.Offset, o.Limit)
	}
	for _, want := range []string{"120 recording(s), 51–100 shown", `href="/items/item-051"`, `href="/items/item-100"`, `id="next"`, `id="prev"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page 2 lacks %q: %s", want, clip(body))
		}
	}
	if strings.Contains(body, `href="/items/item-050"`) || strings.Contains(body, `href="/items/item-101"`) {
		t.Errorf("page 2 shows items of another page: %s", clip(body))
	}
	rec := do(h, ck, s, "GET", "/api/items?officer=officer-4711&page=3", nil)
	var api struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
		Total, Page int
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &api); err != nil || api.Total != 120 || api.Page != 3 || len(api.Items) != 20 ||
		api.Items[0].ID != "item-101" || api.Items[19].ID != "item-120" {
		t.Errorf("/api/items page 3: %d %s (%v)", rec.Code, clip(rec.Body.String()), err)
	}
	if body := do(h, ck, s, "GET", "/search?officer=officer-4711&page=3", nil).Body.String(); strings.Contains(body, `id="next"`) ||
		!strings.Contains(body, "120 recording(s), 101–120 shown") {
		t.Errorf("the last page: %s", clip(body))
	}

	// Page 2's next link asks for the page after its cursor, not for
	// offset 100; the API says the cursor as "next".
	next := regexp.MustCompile(`href="([^"]*)" id="next"`).FindStringSubmatch(body)
	if next == nil {
		t.Fatalf("page 2 has no next link: %s", clip(body))
	}
	u, err := url.Parse(html.UnescapeString(next[1]))
	if err != nil || u.Query().Get("after") != "at-100" || u.Query().Get("page") != "3" {
		t.Fatalf("page 2's next link %q: want after=at-100 (the service's cursor), page=3 (%v)", next[1], err)
	}
	body = do(h, ck, s, "GET", u.String(), nil).Body.String()
	if o := fb.finds[len(fb.finds)-1]; o.After != "at-100" || o.Offset != 0 || o.Limit != 50 {
		t.Errorf("the next link asked the service for after %q, offset %d, limit %d; want at-100, 0, 50", o.After, o.Offset, o.Limit)
	}
	if !strings.Contains(body, "120 recording(s), 101–120 shown") || !strings.Contains(body, `href="/items/item-101"`) || strings.Contains(body, `id="next"`) {
		t.Errorf("the page after page 2's cursor: %s", clip(body))
	}
	var cur struct{ Next string }
	rec = do(h, ck, s, "GET", "/api/items?officer=officer-4711", nil)
	if err := json.Unmarshal(rec.Body.Bytes(), &cur); err != nil || cur.Next != "at-50" {
		t.Errorf("/api/items page 1: next %q, want at-50: %s (%v)", cur.Next, clip(rec.Body.String()), err)
	}
	rec = do(h, ck, s, "GET", "/api/items?officer=officer-4711&after=at-x", nil)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "cursor is damaged or was altered") {
		t.Errorf("a tampered cursor: %d %s, want 400 saying so", rec.Code, rec.Body.String())
	}
}
