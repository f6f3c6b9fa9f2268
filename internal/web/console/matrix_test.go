package console

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/oauth2-proxy/mockoidc"
)

// allowed is the authorization matrix as issue #14 states it, written out
// by hand and independently of the route table: who may use each route.
// "public" needs no session; otherwise the letters of the roles admitted
// (I investigator, C custodian, A auditor).
var allowed = map[string]string{
	"GET /auth/login":      "public",
	"GET /auth/callback":   "public",
	"GET /auth/signed-out": "public",
	"GET /static/":         "public",

	"GET /{$}":          "ICA",
	"POST /auth/logout": "ICA",
	"GET /api/me":       "ICA",

	"GET /search":               "IC",
	"GET /api/items":            "IC",
	"GET /items/{id}":           "IC",
	"GET /api/items/{id}":       "IC",
	"POST /items/{id}/view":     "IC",
	"GET /items/{id}/play":      "IC",
	"GET /items/{id}/media":     "IC",
	"POST /items/{id}/download": "IC",
	"POST /items/{id}/hold":     "C",
	"POST /items/{id}/release":  "C",
	"POST /items/{id}/classify": "C",
	"POST /export":              "C",
	"GET /fleet":                "C",
	"GET /api/fleet":            "C",
	"POST /fleet/clear":         "C",
	"GET /inventory":            "IC",
	"POST /inventory/assign":    "C",
	"POST /inventory/retire":    "C",
	"POST /inventory/import":    "C",
	"GET /verify":               "CA",
	"POST /verify":              "CA",
	"GET /accesses":             "A",
	"GET /accesses.csv":         "A",
	"GET /api/accesses":         "A",
}

// concrete is a request path for a route pattern.
func concrete(path string) string {
	switch path {
	case "/{$}":
		return "/"
	case "/static/":
		return "/static/console.css"
	}
	return strings.ReplaceAll(path, "{id}", "item-01")
}

// TestRouteRoleMatrix walks every route the router has (its one table)
// for every role and for no session: a role the matrix does not admit is
// refused with 403 before the service is asked anything; an admitted one
// is served; without a session a page goes to the provider's
// authorization endpoint (with PKCE S256 and a nonce), the API answers
// 401 JSON, and a form post 401. A route added to the table and not to
// the matrix fails the test, and so does one the matrix lists that the
// router lacks.
func TestRouteRoleMatrix(t *testing.T) {
	h, fb, p := newTestHandler(t, Options{})
	var patterns []string
	for _, rt := range h.routes {
		patterns = append(patterns, rt.pattern())
		if _, ok := allowed[rt.pattern()]; !ok {
			t.Errorf("route %s is not in the authorization matrix: add it to allowed", rt.pattern())
		}
	}
	for k := range allowed {
		if !slices.Contains(patterns, k) {
			t.Errorf("the matrix lists %s, which the router does not have", k)
		}
	}
	authz := p.Issuer() + mockoidc.AuthorizationEndpoint
	authz = strings.TrimPrefix(authz, p.Issuer())
	roles := []struct {
		letter string
		role   Role
	}{{"", 0}, {"I", Investigator}, {"C", Custodian}, {"A", Auditor}}
	for _, rt := range h.routes {
		want := allowed[rt.pattern()]
		for _, ro := range roles {
			name := rt.pattern() + " as " + map[string]string{"": "nobody", "I": "investigator", "C": "custodian", "A": "auditor"}[ro.letter]
			form := url.Values{"reason": {"case 2026-114"}, "case": {"2026-114"}, "class": {"evidence"}, "id": {"item-01"}}
			req := httptest.NewRequest(rt.method, concrete(rt.path), nil)
			if ro.role != 0 {
				c, s := sessionCookieFor(h, ro.role)
				req.AddCookie(c)
				form.Set("csrf", s.csrf)
				// The play route needs the item viewed with a reason first.
				s.remember("item-01", viewing{f: fakeFootage{fb}, reason: "r"})
			}
			if rt.method == http.MethodPost {
				req.Body = httpBody(form)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			before := fb.total()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			code, loc := rec.Code, rec.Header().Get("Location")
			switch {
			case want == "public":
				if code == http.StatusUnauthorized || code == http.StatusForbidden {
					t.Errorf("%s: %d, want a public route served", name, code)
				}
			case ro.role == 0 && rt.api:
				var body map[string]string
				if code != http.StatusUnauthorized || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body["error"] == "" {
					t.Errorf("%s: %d %q, want 401 with a JSON error", name, code, rec.Body.String())
				}
			case ro.role == 0 && rt.method == http.MethodGet:
				u, err := url.Parse(loc)
				if code != http.StatusFound || err != nil || u.Path != authz || u.Query().Get("code_challenge_method") != "S256" ||
					u.Query().Get("nonce") == "" || u.Query().Get("state") == "" {
					t.Errorf("%s: %d Location %q, want 302 to the provider's authorization endpoint with S256, nonce and state", name, code, loc)
				}
			case ro.role == 0:
				if code != http.StatusUnauthorized {
					t.Errorf("%s: %d, want 401", name, code)
				}
			case strings.Contains(want, ro.letter):
				if code == http.StatusUnauthorized || code == http.StatusForbidden || code >= 500 || strings.HasPrefix(loc, p.Issuer()) {
					t.Errorf("%s: %d (Location %q) %s, want it served", name, code, loc, clip(rec.Body.String()))
				}
			default:
				if code != http.StatusForbidden {
					t.Errorf("%s: %d, want 403", name, code)
				}
			}
			if (ro.role == 0 || !strings.Contains(want, ro.letter)) && want != "public" && fb.total() != before {
				t.Errorf("%s: refused, but the service was asked %d time(s)", name, fb.total()-before)
			}
		}
	}
}
