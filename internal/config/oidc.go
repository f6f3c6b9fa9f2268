package config

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// OIDC is how people sign in to a console's web UI: an OpenID Connect
// provider (the City's own accounts), the client registered there, and
// which of the provider's groups make a person an investigator, a
// custodian or an auditor. Console role only.
type OIDC struct {
	// Issuer is the provider's issuer URL; its discovery document is read
	// from Issuer + "/.well-known/openid-configuration".
	Issuer string `yaml:"issuer"`
	// ClientID is the console's client id at the provider.
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the client secret (one line), readable by the
	// daemon only: never in the config, which is shown and copied around.
	ClientSecretFile string `yaml:"client_secret_file"`
	// RedirectURL is the console's /auth/callback as the browser reaches
	// it, registered at the provider.
	RedirectURL string `yaml:"redirect_url"`
	// RolesClaim is the ID token claim that lists the person's groups
	// (default groups).
	RolesClaim string `yaml:"roles_claim"`
	// Roles maps each console role to the provider's groups that grant it.
	// A person in none of them is refused.
	Roles OIDCRoles `yaml:"roles"`
	// SessionTTL is how long a sign-in lasts before the person signs in
	// again (default 8h, at most 24h).
	SessionTTL Duration `yaml:"session_ttl"`
}

// OIDCRoles lists, per role, the groups that grant it.
type OIDCRoles struct {
	Investigator []string `yaml:"investigator"`
	Custodian    []string `yaml:"custodian"`
	Auditor      []string `yaml:"auditor"`
}

// OIDC defaults and bounds.
const (
	DefaultRolesClaim = "groups"
	DefaultSessionTTL = 8 * time.Hour
	maxSessionTTL     = 24 * time.Hour
	minSessionTTL     = time.Minute
)

// defaultOIDC is what an oidc section starts from.
func defaultOIDC() *OIDC {
	return &OIDC{RolesClaim: DefaultRolesClaim, SessionTTL: Duration{DefaultSessionTTL}}
}

// ClientSecret reads the client secret from its file, refusing a file
// other users may read: the secret lets anyone sign people in as this
// console.
func (o *OIDC) ClientSecret() (string, error) {
	f, err := os.Open(o.ClientSecretFile)
	if err != nil {
		return "", fmt.Errorf("oidc.client_secret_file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("oidc.client_secret_file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("oidc.client_secret_file %s: not a regular file", o.ClientSecretFile)
	}
	if p := st.Mode().Perm(); p&0o007 != 0 {
		return "", fmt.Errorf("oidc.client_secret_file %s: other users may access it (mode %04o); chmod o-rwx it", o.ClientSecretFile, p)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", fmt.Errorf("oidc.client_secret_file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("oidc.client_secret_file %s: empty", o.ClientSecretFile)
	}
	return s, nil
}

// oidc checks the oidc section: a console's only, complete, the secret
// kept from other users, and URLs a browser can be sent to.
func (v *validator) oidc(c *Config) {
	o := c.OIDC
	if o == nil {
		if c.Role == RoleConsole && c.HTTP.Listen != "" {
			v.add("oidc", "required with http.listen at a console: people sign in to its web UI at the City's OpenID Connect provider")
		}
		return
	}
	if c.Role != RoleConsole {
		v.add("oidc", "set, but role is %s: only a console has a signed-in web UI", c.Role)
		return
	}
	if v.webURL("oidc.issuer", o.Issuer) && strings.HasSuffix(o.Issuer, "/") {
		v.add("oidc.issuer", "%q: write it as the provider states it, without a trailing /", o.Issuer)
	}
	if strings.TrimSpace(o.ClientID) == "" {
		v.add("oidc.client_id", "required: the console's client id at the provider")
	}
	// The file itself is read, and its mode checked, when the web UI
	// starts (ClientSecret): a config is checked on hosts without it.
	v.absPath("oidc.client_secret_file", o.ClientSecretFile)
	if v.webURL("oidc.redirect_url", o.RedirectURL) {
		if u, _ := url.Parse(o.RedirectURL); u.Path != "/auth/callback" {
			v.add("oidc.redirect_url", "%q: the console's callback is /auth/callback", o.RedirectURL)
		}
	}
	if strings.TrimSpace(o.RolesClaim) == "" {
		v.add("oidc.roles_claim", "required: the ID token claim that lists the groups (often groups)")
	}
	n := 0
	for _, r := range []struct {
		key    string
		groups []string
	}{{"oidc.roles.investigator", o.Roles.Investigator}, {"oidc.roles.custodian", o.Roles.Custodian}, {"oidc.roles.auditor", o.Roles.Auditor}} {
		for i, g := range r.groups {
			if strings.TrimSpace(g) == "" {
				v.add(fmt.Sprintf("%s[%d]", r.key, i), "empty group name")
			}
			n++
		}
	}
	if n == 0 {
		v.add("oidc.roles", "required: map at least one of investigator, custodian, auditor to the provider's groups; nobody could sign in")
	}
	if d := o.SessionTTL.Duration; d < minSessionTTL || d > maxSessionTTL {
		v.add("oidc.session_ttl", "must be between %s and %s, got %s", minSessionTTL, maxSessionTTL, o.SessionTTL)
	}
}

// webURL checks an absolute URL a browser is sent to: https, or http only
// to this machine (a test provider, a console browsed on loopback).
func (v *validator) webURL(key, s string) bool {
	u, err := url.Parse(s)
	switch {
	case s == "":
		v.add(key, "required")
	case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		v.add(key, "%q must be an absolute URL (https://host/path) without user, query or fragment", s)
	case u.Scheme == "https":
		return true
	case u.Scheme == "http" && loopbackHost(u.Hostname()):
		return true
	default:
		v.add(key, "%q must be https (plain http only to localhost or a loopback address)", s)
	}
	return false
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
