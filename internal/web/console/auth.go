package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/evidenced/evidenced/internal/service"
)

// Cookie names. Cookies are not told apart by port, so the names are the
// console's own (a provider on the same host keeps its cookies).
const (
	sessionCookie = "evidenced_session"
	loginCookie   = "evidenced_login"
)

// Bounds on what an unauthenticated client can make the console hold.
const (
	maxPending    = 10_000           // sign-ins started and not completed
	pendingTTL    = 10 * time.Minute // to complete one at the provider
	maxSessions   = 10_000
	maxViewed     = 256 // items one session may have open for playback
	maxNextLength = 2048
)

// session is one signed-in person, kept on the server: the cookie holds
// only its random id.
type session struct {
	id      string
	csrf    string
	actor   string // as the custody records name them
	name    string // as the pages greet them
	roles   Role
	expires time.Time

	mu sync.Mutex
	// viewed are the items whose viewing this session put on record
	// (with the reason), so the reason is asked once per item.
	viewed map[string]viewing
}

type viewing struct {
	f      footage
	reason string
}

// csrfOK checks the request's CSRF token (form field csrf or header
// X-CSRF-Token) against the session's, in constant time.
func (s *session) csrfOK(r *http.Request) bool {
	tok := r.Header.Get("X-CSRF-Token")
	if tok == "" {
		// Only the form body (parsed by guard), never the URL: a token
		// in a URL leaks through logs and Referer.
		tok = r.PostForm.Get("csrf")
	}
	return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.csrf)) == 1
}

func (s *session) viewing(id string) (viewing, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.viewed[id]
	return v, ok
}

func (s *session) remember(id string, v viewing) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.viewed) >= maxViewed {
		for k := range s.viewed { // forget one: its next view asks again
			delete(s.viewed, k)
			break
		}
	}
	s.viewed[id] = v
}

// sessions is the server-side session store (memory: a restart signs
// everyone out, which is the safe direction).
type sessions struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	byID    map[string]*session
	pending map[string]pendingLogin // by state
}

type pendingLogin struct {
	nonce, verifier, next string
	expires               time.Time
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, byID: map[string]*session{}, pending: map[string]pendingLogin{}}
}

// get is the request's live session, or nil.
func (ss *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byID[c.Value]
	if !ok {
		return nil
	}
	if !ss.now().Before(s.expires) {
		delete(ss.byID, c.Value)
		return nil
	}
	return s
}

// create starts a session for a person who just signed in.
func (ss *sessions) create(actor, name string, roles Role) *session {
	s := &session{id: randomToken(), csrf: randomToken(), actor: actor, name: name, roles: roles,
		expires: ss.now().Add(ss.ttl), viewed: map[string]viewing{}}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	for id, o := range ss.byID {
		if !now.Before(o.expires) {
			delete(ss.byID, id)
		}
	}
	if len(ss.byID) >= maxSessions { // end the oldest sign-in
		var oldest *session
		for _, o := range ss.byID {
			if oldest == nil || o.expires.Before(oldest.expires) {
				oldest = o
			}
		}
		delete(ss.byID, oldest.id)
	}
	ss.byID[s.id] = s
	return s
}

func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byID, id)
}

// begin remembers a sign-in started with state; false when too many are
// pending (a client starting sign-ins to fill memory).
func (ss *sessions) begin(state string, p pendingLogin) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	for k, o := range ss.pending {
		if now.After(o.expires) {
			delete(ss.pending, k)
		}
	}
	if len(ss.pending) >= maxPending {
		return false
	}
	ss.pending[state] = p
	return true
}

// take removes and returns the sign-in started with state.
func (ss *sessions) take(state string) (pendingLogin, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	p, ok := ss.pending[state]
	delete(ss.pending, state)
	if !ok || ss.now().After(p.expires) {
		return pendingLogin{}, false
	}
	return p, true
}

// limiter counts events per client address in fixed windows: sign-ins
// started or completed, so that a client cannot hammer the provider or
// guess at the callback through the console.
type limiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	start time.Time
	count map[string]int
}

func newLimiter(max int, window time.Duration, now func() time.Time) *limiter {
	return &limiter{max: max, window: window, now: now, count: map[string]int{}}
}

func (l *limiter) allow(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := l.now(); now.Sub(l.start) >= l.window {
		l.start, l.count = now, map[string]int{}
	}
	l.count[host]++
	return l.count[host] <= l.max
}

func (h *Handler) secure(r *http.Request) bool { return h.opts.SecureCookies || r.TLS != nil }

// startLogin sends the browser to the provider's authorization endpoint
// with a fresh state (bound to this browser by a cookie), nonce and PKCE
// S256 challenge; next is where to return after signing in.
func (h *Handler) startLogin(w http.ResponseWriter, r *http.Request, next string) {
	if !h.logins.allow(r) {
		h.log.Warn("console: sign-in rate limit", "peer", r.RemoteAddr)
		w.Header().Set("Retry-After", "60")
		h.fail(w, r, false, http.StatusTooManyRequests, "too many sign-in attempts from your address; wait a minute")
		return
	}
	if !localPath(next) {
		next = "/"
	}
	o, err := h.provider(r.Context())
	if err != nil {
		h.log.Error("console: sign-in", "err", err)
		h.fail(w, r, false, http.StatusServiceUnavailable, "the identity provider cannot be reached; try again shortly")
		return
	}
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	if !h.sessions.begin(state, pendingLogin{nonce: nonce, verifier: verifier, next: next, expires: h.opts.Now().Add(pendingTTL)}) {
		h.log.Warn("console: too many sign-ins pending", "peer", r.RemoteAddr)
		h.fail(w, r, false, http.StatusServiceUnavailable, "too many sign-ins in progress; try again in a few minutes")
		return
	}
	// SameSite=Lax, not Strict: the callback is a top-level navigation
	// from the provider's site, and a Strict cookie is not sent on it.
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: state, Path: "/auth/callback", MaxAge: int(pendingTTL.Seconds()),
		HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, o.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// localPath accepts a path on this console only: not another site
// ("//evil", "/\evil", "https://…").
func localPath(p string) bool {
	return len(p) <= maxNextLength && strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "/\\") &&
		!strings.ContainsAny(p, "\r\n")
}

// login is GET /auth/login[?next=/path].
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	h.startLogin(w, r, r.URL.Query().Get("next"))
}

// callback is where the provider returns the browser: the state must be
// the one this browser started, the code is exchanged with the PKCE
// verifier, and the ID token's signature, issuer, audience, expiry and
// nonce are checked before anyone is signed in.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	if !h.logins.allow(r) {
		w.Header().Set("Retry-After", "60")
		h.fail(w, r, false, http.StatusTooManyRequests, "too many sign-in attempts from your address; wait a minute")
		return
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		h.log.Warn("console: sign-in refused by the provider", "error", e, "peer", r.RemoteAddr)
		h.fail(w, r, false, http.StatusUnauthorized, "the identity provider did not sign you in ("+e+")")
		return
	}
	state := q.Get("state")
	c, err := r.Cookie(loginCookie)
	if err != nil || state == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		h.fail(w, r, false, http.StatusBadRequest, "sign-in failed: this browser did not start that sign-in; start again")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/auth/callback", MaxAge: -1,
		HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
	p, ok := h.sessions.take(state)
	if !ok {
		h.fail(w, r, false, http.StatusBadRequest, "sign-in failed: it took too long or was already used; start again")
		return
	}
	o, err := h.provider(r.Context())
	if err != nil {
		h.log.Error("console: sign-in", "err", err)
		h.fail(w, r, false, http.StatusServiceUnavailable, "the identity provider cannot be reached; try again shortly")
		return
	}
	id, err := o.exchange(r.Context(), q.Get("code"), p, h.cfg.RolesClaim)
	if err != nil {
		// The error names what failed, never the code or a token.
		h.log.Warn("console: sign-in failed", "err", err, "peer", r.RemoteAddr)
		h.fail(w, r, false, http.StatusUnauthorized, "sign-in failed; start again")
		return
	}
	roles := h.rolesOf(id.groups)
	c0 := service.Caller{Actor: id.actor, Peer: "web:" + r.RemoteAddr}
	if roles == 0 {
		// Refused, and on record: who tried, with which groups.
		err := h.b.RecordAccess(r.Context(), c0, "sign-in", "", nil, map[string]string{
			"outcome": "refused", "error": "no console role for the groups in " + h.cfg.RolesClaim, "groups": strings.Join(id.groups, " ")})
		h.log.Warn("console: sign-in refused: no role", "actor", id.actor, "groups", strings.Join(id.groups, " "), "record_err", err)
		h.fail(w, r, false, http.StatusForbidden, "you are signed in at the identity provider as "+id.actor+", but none of your groups gives a role at this console; ask the evidence office")
		return
	}
	if err := h.b.RecordAccess(r.Context(), c0, "sign-in", "", nil, map[string]string{"roles": roles.String()}); err != nil {
		h.log.Error("console: record a sign-in", "actor", id.actor, "err", err)
		h.fail(w, r, false, http.StatusInternalServerError, "your sign-in could not be recorded in the custody ledger, so it is refused")
		return
	}
	s := h.sessions.create(id.actor, id.name, roles)
	h.log.Info("console: signed in", "actor", id.actor, "roles", roles.String(), "peer", r.RemoteAddr)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.id, Path: "/", MaxAge: int(h.sessions.ttl.Seconds()),
		HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, p.next, http.StatusSeeOther)
}

type identity struct {
	actor, name string
	groups      []string
}

func (o op) exchange(ctx context.Context, code string, p pendingLogin, rolesClaim string) (identity, error) {
	if code == "" {
		return identity{}, errors.New("the provider sent no code")
	}
	tok, err := o.oauth.Exchange(ctx, code, oauth2.VerifierOption(p.verifier))
	if err != nil {
		return identity{}, fmt.Errorf("token exchange: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		return identity{}, errors.New("the token response has no id_token")
	}
	idt, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return identity{}, fmt.Errorf("id token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(p.nonce)) != 1 {
		return identity{}, errors.New("id token: the nonce is not this sign-in's")
	}
	var std struct {
		Name              string `json:"name"`
		PreferredUsername string `json:"preferred_username"`
		Email             string `json:"email"`
	}
	var all map[string]any
	if err := idt.Claims(&std); err != nil {
		return identity{}, fmt.Errorf("id token claims: %w", err)
	}
	if err := idt.Claims(&all); err != nil {
		return identity{}, fmt.Errorf("id token claims: %w", err)
	}
	// The actor is the account's stable name at the provider: an email or
	// user name when there is one, else the subject.
	actor := "oidc:" + firstOf(std.Email, std.PreferredUsername, idt.Subject)
	return identity{actor: actor, name: firstOf(std.Name, std.PreferredUsername, std.Email, idt.Subject), groups: claimStrings(all[rolesClaim])}, nil
}

// claimStrings reads a groups claim: a list of strings, or one string.
func claimStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// rolesOf maps the provider's groups to the console's roles.
func (h *Handler) rolesOf(groups []string) Role {
	var r Role
	for _, m := range []struct {
		role   Role
		groups []string
	}{{Investigator, h.cfg.Roles.Investigator}, {Custodian, h.cfg.Roles.Custodian}, {Auditor, h.cfg.Roles.Auditor}} {
		for _, g := range groups {
			if slices.Contains(m.groups, g) {
				r |= m.role
			}
		}
	}
	return r
}

// logout is POST /auth/logout: the session ends on the server, whatever
// the browser keeps.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request, s *session) {
	h.sessions.end(s.id)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
	h.log.Info("console: signed out", "actor", s.actor)
	http.Redirect(w, r, "/auth/signed-out", http.StatusSeeOther)
}

func (h *Handler) signedOut(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "message", nil, pageData{Title: "Signed out", Message: "You are signed out of the evidence console."})
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
