package console

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// signIn walks the authorization-code flow from a console page through
// the real provider's form and back, as a browser would, and returns the
// client (holding the cookies) and the final response.
func signIn(t *testing.T, srv *httptest.Server, login, page string) (*http.Client, *http.Response, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(srv.URL + page)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	authURL := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.Contains(authURL, "code_challenge_method=S256") || !strings.Contains(authURL, "nonce=") {
		t.Fatalf("GET %s without a session: %d Location %q, want a redirect to the provider with PKCE S256 and a nonce", page, resp.StatusCode, authURL)
	}
	resp, err = c.Get(authURL + "&login_name=" + url.QueryEscape(login))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cb := resp.Header.Get("Location")
	if !strings.HasPrefix(cb, srv.URL+"/auth/callback?") {
		t.Fatalf("the provider sent the browser to %q, want the console's callback", cb)
	}
	resp, err = c.Get(cb)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return c, resp, string(body)
}

// startServer serves a test handler whose redirect URL is its own.
func startServer(t *testing.T, opts Options) (*httptest.Server, *Handler, *fakeBackend) {
	t.Helper()
	h, fb, p := newTestHandler(t, opts)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	// The redirect URL is known only once the server listens.
	o, err := h.provider(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	o.oauth.RedirectURL = srv.URL + "/auth/callback"
	_ = p
	return srv, h, fb
}

// A person signs in at the provider and lands where they were going, with
// a session cookie that is HttpOnly and SameSite=Lax; the sign-in is
// recorded with their roles.
func TestSignIn(t *testing.T) {
	srv, _, fb := startServer(t, Options{})
	c, resp, _ := signIn(t, srv, "cora", "/fleet")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/fleet" {
		t.Fatalf("callback: %d Location %q, want 303 to /fleet", resp.StatusCode, resp.Header.Get("Location"))
	}
	var sc *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			sc = ck
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Value == "" {
		t.Fatalf("session cookie %+v, want HttpOnly, SameSite=Lax", sc)
	}
	me, err := c.Get(srv.URL + "/api/me")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(me.Body)
	me.Body.Close()
	if me.StatusCode != 200 || !strings.Contains(string(b), `"oidc:cora@example.test"`) || !strings.Contains(string(b), `"custodian"`) {
		t.Fatalf("/api/me after sign-in: %d %s", me.StatusCode, b)
	}
	if len(fb.records) != 1 || fb.records[0]["action"] != "sign-in" || fb.records[0]["roles"] != "custodian" {
		t.Errorf("records %v, want one sign-in with roles custodian", fb.records)
	}
	// The fleet page she came for shows a camera that never docked as such.
	fl, err := c.Get(srv.URL + "/fleet")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(fl.Body)
	fl.Body.Close()
	if fl.StatusCode != 200 || !strings.Contains(string(b), "<td>BWC-9</td><td>officer-9</td><td>never docked (listed since 2023-11-14 22:13:20Z)</td><td></td><td>—</td><td>—</td>") ||
		!strings.Contains(string(b), "<td>docked</td><td>dock-01</td><td>2023-11-14 22:13:20Z</td><td>3</td>") {
		t.Errorf("/fleet: %d\n%s", fl.StatusCode, b)
	}
}

// A person whose groups give no role is refused with 403, gets no
// session, and the refusal is recorded with their groups.
func TestSignInWithoutRoleRefused(t *testing.T) {
	srv, _, fb := startServer(t, Options{})
	c, resp, body := signIn(t, srv, "nemo", "/search")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "none of your groups") {
		t.Fatalf("callback for a person without a role: %d %q, want 403", resp.StatusCode, clip(body))
	}
	me, _ := c.Get(srv.URL + "/api/me")
	me.Body.Close()
	if me.StatusCode != http.StatusUnauthorized {
		t.Errorf("/api/me after a refused sign-in: %d, want 401", me.StatusCode)
	}
	if len(fb.records) != 1 || fb.records[0]["outcome"] != "refused" || fb.records[0]["groups"] != "staff" {
		t.Errorf("records %v, want the refusal with the groups", fb.records)
	}
}

// A callback whose state another browser started is refused (login
// CSRF: a victim's browser must not be signed in as someone else by a
// link carrying that someone's code): the state is bound to the browser
// that started the sign-in by a cookie.
func TestCallbackStateBoundToBrowser(t *testing.T) {
	srv, _, _ := startServer(t, Options{})
	client := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	follow := func(c *http.Client, u string) *http.Response {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	attacker, victim := client(), client()
	authURL := follow(attacker, srv.URL+"/search").Header.Get("Location")
	cb := follow(attacker, authURL+"&login_name=cora").Header.Get("Location")
	follow(victim, srv.URL+"/search") // the victim has a sign-in of its own under way
	if resp := follow(victim, cb); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("another browser's callback: %d, want 400", resp.StatusCode)
	}
	if resp := follow(attacker, cb); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the browser that started it: %d, want 303", resp.StatusCode)
	}
}

// A session cookie altered by one character is no session; neither is an
// expired one; logging out ends the session on the server.
func TestSessionCookieTamperExpiryLogout(t *testing.T) {
	now := time.Now()
	h, _, _ := newTestHandler(t, Options{Now: func() time.Time { return now }})
	c, s := sessionCookieFor(h, Custodian)
	get := func(ck *http.Cookie) int {
		req := httptest.NewRequest("GET", "/api/me", nil)
		req.AddCookie(ck)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if got := get(c); got != 200 {
		t.Fatalf("valid session: %d", got)
	}
	tampered := *c
	last := byte('A')
	if c.Value[len(c.Value)-1] == 'A' {
		last = 'B'
	}
	tampered.Value = c.Value[:len(c.Value)-1] + string(last)
	if got := get(&tampered); got != http.StatusUnauthorized {
		t.Errorf("tampered session cookie: %d, want 401", got)
	}
	now = now.Add(2 * time.Hour) // the TTL is 1h
	if got := get(c); got != http.StatusUnauthorized {
		t.Errorf("expired session: %d, want 401", got)
	}
	c, s = sessionCookieFor(h, Custodian)
	req := httptest.NewRequest("POST", "/auth/logout", httpBody(url.Values{"csrf": {s.csrf}}))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(c)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("logout: %d", rec.Code)
	}
	if got := get(c); got != http.StatusUnauthorized {
		t.Errorf("after logout the old cookie still works: %d", got)
	}
}

// A state-changing request without the session's CSRF token, or with
// another session's, is refused before the service is asked; with it,
// it is served.
func TestCSRFRequired(t *testing.T) {
	h, fb, _ := newTestHandler(t, Options{})
	c, s := sessionCookieFor(h, Custodian)
	_, other := sessionCookieFor(h, Custodian)
	for _, tc := range []struct {
		name, token, header string
		want                int
	}{{"none", "", "", 403}, {"another session's", other.csrf, "", 403}, {"in the form", s.csrf, "", 200}, {"in the header", "", s.csrf, 200}} {
		form := url.Values{"case": {"2026-1"}, "reason": {"court order"}}
		if tc.token != "" {
			form.Set("csrf", tc.token)
		}
		req := httptest.NewRequest("POST", "/items/item-01/hold", httpBody(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tc.header != "" {
			req.Header.Set("X-CSRF-Token", tc.header)
		}
		req.AddCookie(c)
		before := fb.count("Hold")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("CSRF token %s: %d, want %d", tc.name, rec.Code, tc.want)
		}
		if held := fb.count("Hold") - before; (tc.want == 200) != (held == 1) {
			t.Errorf("CSRF token %s: the service held %d time(s)", tc.name, held)
		}
	}
}

// Sign-ins are limited per client address: past the limit, 429.
func TestLoginRateLimited(t *testing.T) {
	h, _, _ := newTestHandler(t, Options{LoginsPerMinute: 3})
	var codes []int
	for range 5 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/auth/login", nil))
		codes = append(codes, rec.Code)
	}
	if codes[2] != http.StatusFound || codes[3] != http.StatusTooManyRequests || codes[4] != http.StatusTooManyRequests {
		t.Errorf("five sign-ins with a limit of 3: %v, want 302 ×3 then 429", codes)
	}
	// Another address is not held back.
	req := httptest.NewRequest("GET", "/auth/login", nil)
	req.RemoteAddr = "192.0.2.9:1234"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusFound {
		t.Errorf("another address: %d, want 302", rec.Code)
	}
}

// next after sign-in stays on the console.
func TestLocalPath(t *testing.T) {
	for p, want := range map[string]bool{"/search?x=1": true, "/": true, "//evil.example": false, "/\\evil": false, "https://evil": false, "": false, "/a\r\nSet-Cookie: x": false} {
		if localPath(p) != want {
			t.Errorf("localPath(%q) = %v, want %v", p, !want, want)
		}
	}
}

// The fleet page offers a clear for a flagged host only; the clear asks
// the service with the host and the reason, shows what it accepted, and
// shows a refusal (the history still does not verify) as 409, not as the
// console's fault; without a reason the service is not asked.
func TestFleetClear(t *testing.T) {
	h, fb, _ := newTestHandler(t, Options{})
	c, s := sessionCookieFor(h, Custodian)
	req := httptest.NewRequest("GET", "/fleet", nil)
	req.AddCookie(c)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if body := rec.Body.String(); rec.Code != 200 || strings.Count(body, `action="/fleet/clear"`) != 1 || !strings.Contains(body, `name="host" value="dock-02"`) {
		t.Errorf("fleet page: %d, want one clear form, for dock-02\n%s", rec.Code, body)
	}
	for _, tc := range []struct {
		host, reason string
		want         int
		says         string
		asked        int
	}{
		{"dock-02", "stray object removed", 200, "dock-02 cleared: its anchored history verifies up to checkpoint 11", 1},
		{"dock-01", "looked", 409, "not cleared: dock-01: integrity failure", 1},
		{"dock-02", "", 400, "reason: required", 0},
		{"", "looked", 400, "host: required", 0},
	} {
		req := httptest.NewRequest("POST", "/fleet/clear", httpBody(url.Values{"csrf": {s.csrf}, "host": {tc.host}, "reason": {tc.reason}}))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(c)
		before := fb.count("ClearHost")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.says) || fb.count("ClearHost")-before != tc.asked {
			t.Errorf("clear %q %q: %d, asked %d time(s), want %d saying %q\n%s", tc.host, tc.reason, rec.Code, fb.count("ClearHost")-before, tc.want, tc.says, rec.Body.String())
		}
	}
}
