package console

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/evidenced/evidenced/internal/service"
)

// FuzzParams: any query string either parses into a search and an access
// filter the service can take, or is a parameter error (400); it never
// panics and never reaches the service as a 5xx.
func FuzzParams(f *testing.F) {
	for _, s := range []string{"", "officer=a", "since=2026-01-01&until=2026-02-01", "state=verified&state=lost", "page=99999999999",
		"camera=%00", "item=../x", "until=2026-11-24T08:00:00Z", "officer=a&vehicle=b", "since=2026-02-30",
		"plate=CA+123-456&fuzzy=on", "plate=%D0%A1A1", "plate=&fuzzy=on", "fuzzy=1", "lat=-33.9&lon=18.4&radius=300",
		"lat=91&lon=0&radius=1", "lat=0&lon=0&radius=1e400", "lat=-0&lon=-180&radius=50000", "lat=1&lon=1&radius=5&plate=X1",
		"lat=0x1p-2&lon=1_0&radius=5", "lat=1&lon=1&radius=5&since=2026-12-03T22:00&until=2026-12-03T21:00"} {
		f.Add(s)
	}
	h, _, _ := newTestHandler(f, Options{})
	ck, _ := sessionCookieFor(h, Investigator|Custodian|Auditor)
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		if sr, err := parseSearch(q); err != nil {
			if !isParamError(err) {
				t.Fatalf("parseSearch(%q): %v is not a parameter error", raw, err)
			}
		} else if f := sr.opts.Filter; !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
			t.Fatalf("parseSearch(%q): since %v not before until %v", raw, f.Since, f.Until)
		} else if err := factsSearchOK(sr.opts); err != "" {
			t.Fatalf("parseSearch(%q): %s", raw, err)
		}
		if _, err := parseAccesses(q); err != nil && !isParamError(err) {
			t.Fatalf("parseAccesses(%q): %v is not a parameter error", raw, err)
		}
		for _, path := range []string{"/search?", "/api/items?", "/accesses?", "/accesses.csv?"} {
			req := httptest.NewRequest("GET", "/", nil)
			req.URL.Path, req.URL.RawQuery = path[:len(path)-1], raw
			req.AddCookie(ck)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
				t.Fatalf("GET %s%s: %d %s", path, raw, rec.Code, clip(rec.Body.String()))
			}
		}
	})
}

// FuzzItemID: an id path segment is served only when it is a valid item
// id; anything else is 400 or 404, never passed to the service.
func FuzzItemID(f *testing.F) {
	for _, s := range []string{"item-01", "A", "..", "a/b", "%2e%2e", "x\x00", "item-01/extra"} {
		f.Add(s)
	}
	h, fb, _ := newTestHandler(f, Options{})
	ck, _ := sessionCookieFor(h, Investigator)
	f.Fuzz(func(t *testing.T, id string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.URL.Path = "/items/" + id
		req.AddCookie(ck)
		before := fb.count("View")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		asked := fb.count("View") > before
		if asked && checkID(id) != nil {
			t.Fatalf("item id %q reached the service", id)
		}
		if rec.Code >= 500 {
			t.Fatalf("item id %q: %d", id, rec.Code)
		}
	})
}

// factsSearchOK is what a search of the sidecar facts must be when it
// reaches the service: a plate the service takes, fuzzy only with one, a
// position on the globe and a radius within bounds, never both kinds.
func factsSearchOK(o service.FindOptions) string {
	switch n := o.Near; {
	case o.Plate != "" && n != nil:
		return "both a plate and a place"
	case o.Fuzzy && o.Plate == "":
		return "fuzzy without a plate"
	case o.Plate != "" && service.CheckPlate(o.Plate) != nil:
		return fmt.Sprintf("plate %q passed: %v", o.Plate, service.CheckPlate(o.Plate))
	case n != nil && !(math.Abs(n.Lat) <= 90 && math.Abs(n.Lon) <= 180 && n.Radius > 0 && n.Radius <= maxRadius):
		return fmt.Sprintf("near %+v passed", *n)
	}
	return ""
}
