// Package oidcprovider runs a real OpenID Connect provider in the test
// process (github.com/oauth2-proxy/mockoidc: discovery, JWKS, authorize,
// token and userinfo endpoints, RS256-signed ID tokens, PKCE checked at the
// token endpoint) with a sign-in form in front of its authorization endpoint,
// so that a browser types a name and clicks "Sign in" at the provider as a
// person would at the City's own.
//
// Who is who: Start takes the accounts (login name → groups); the name typed
// into the form picks the account, and its groups go into the ID token's
// "groups" claim. A name that is not an account signs in with no groups.
//
// mockoidc's quirks, handled here or to be handled by the client:
//   - it reads client_id/client_secret from the token request's form only
//     (x/oauth2's auto-detection recovers after one failed request; a client
//     may set oauth2.AuthStyleInParams);
//   - it keeps its sessions in a map without a lock: its handlers are
//     serialised here;
//   - it allows only the scopes openid, profile, email and groups;
//   - it checks code_verifier only when the authorization request carried a
//     challenge: a client without PKCE still gets tokens, so tests assert
//     code_challenge_method=S256 in the authorization URL themselves.
package oidcprovider

import (
	"html/template"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// Provider is a running provider.
type Provider struct {
	*mockoidc.MockOIDC
	mu       sync.Mutex
	accounts map[string][]string
}

// Start runs a provider on 127.0.0.1:random until the test ends. accounts
// maps a login name (as typed into the form) to its groups.
func Start(t testing.TB, accounts map[string][]string) *Provider {
	t.Helper()
	m, err := mockoidc.NewServer(nil) // nil: mockoidc's built-in RSA key
	if err != nil {
		t.Fatalf("oidc provider: %v", err)
	}
	p := &Provider{MockOIDC: m, accounts: map[string][]string{}}
	for k, v := range accounts {
		p.accounts[k] = slices.Clone(v)
	}
	var serial sync.Mutex
	if err := m.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			serial.Lock()
			defer serial.Unlock()
			next.ServeHTTP(w, r)
		})
	}); err != nil {
		t.Fatal(err)
	}
	if err := m.AddMiddleware(p.signInPage); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatalf("oidc provider: %v", err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return p
}

// SetGroups changes an account's groups for its next sign-in.
func (p *Provider) SetGroups(login string, groups []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accounts[login] = slices.Clone(groups)
}

func (p *Provider) groups(login string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.accounts[login])
}

var signInForm = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test provider: sign in</title>
<link rel="icon" href="data:,"></head>
<body><h1>Test identity provider</h1>
<form method="get" action="{{.Action}}">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<label>User name <input id="username" name="login_name" autocomplete="off"></label>
<button id="signin" type="submit">Sign in</button>
</form></body></html>`))

// signInPage answers GET /oidc/authorize without login_name with a form that
// resubmits the authorization request plus login_name; with it, the account
// is queued and mockoidc answers (302 to redirect_uri with code and state).
func (p *Provider) signInPage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != mockoidc.AuthorizationEndpoint {
			next.ServeHTTP(w, r)
			return
		}
		q := r.URL.Query()
		name := strings.TrimSpace(q.Get("login_name"))
		if name == "" {
			type kv struct{ Name, Value string }
			var hidden []kv
			for k, vs := range q {
				for _, v := range vs {
					hidden = append(hidden, kv{k, v})
				}
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_ = signInForm.Execute(w, struct {
				Action string
				Hidden []kv
			}{mockoidc.AuthorizationEndpoint, hidden})
			return
		}
		login := strings.ToLower(strings.ReplaceAll(name, " ", "."))
		p.QueueUser(&account{
			MockUser: mockoidc.MockUser{
				Subject:           "sub-" + login,
				Email:             login + "@example.test",
				EmailVerified:     true,
				PreferredUsername: login,
				Groups:            p.groups(name),
			},
			Name: name,
		})
		q.Del("login_name")
		r.URL.RawQuery = q.Encode()
		next.ServeHTTP(w, r)
	})
}

// account adds the standard "name" claim, which mockoidc.MockUser lacks.
type account struct {
	mockoidc.MockUser
	Name string
}

type claims struct {
	*mockoidc.IDTokenClaims
	Name              string   `json:"name,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Email             string   `json:"email,omitempty"`
	EmailVerified     bool     `json:"email_verified,omitempty"`
	Groups            []string `json:"groups,omitempty"`
}

func (u *account) Claims(scope []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	c := &claims{IDTokenClaims: base}
	if slices.Contains(scope, "profile") {
		c.Name, c.PreferredUsername = u.Name, u.PreferredUsername
	}
	if slices.Contains(scope, "email") {
		c.Email, c.EmailVerified = u.Email, u.EmailVerified
	}
	if slices.Contains(scope, "groups") {
		c.Groups = u.Groups
	}
	return c, nil
}
