package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const oidcSection = `oidc:
  issuer: https://login.example.org/realms/city
  client_id: evidenced
  client_secret_file: oidc-secret
  redirect_url: https://evidence.example.org/auth/callback
  roles: {investigator: [inv], custodian: [cust], auditor: [aud]}
`

func TestOIDCDefaultsAndPaths(t *testing.T) {
	c := mustParse(t, consoleMinimal+oidcSection)
	o := c.OIDC
	if o == nil || o.RolesClaim != "groups" || o.SessionTTL.Duration != DefaultSessionTTL {
		t.Fatalf("oidc defaults: %+v", o)
	}
	if o.ClientSecretFile != "/etc/evidenced/oidc-secret" {
		t.Errorf("client_secret_file not resolved against the config's directory: %s", o.ClientSecretFile)
	}
}

func TestOIDCInvalid(t *testing.T) {
	cases := []struct{ name, yml, key string }{
		{"on a dock", minimal + oidcSection, "oidc"},
		{"web UI without sign-in", consoleMinimal + "http: {listen: 127.0.0.1:8470}\n", "oidc"},
		{"plain http issuer", consoleMinimal + strings.Replace(oidcSection, "https://login", "http://login", 1), "oidc.issuer"},
		{"issuer trailing slash", consoleMinimal + strings.Replace(oidcSection, "realms/city", "realms/city/", 1), "oidc.issuer"},
		{"no client id", consoleMinimal + strings.Replace(oidcSection, "  client_id: evidenced\n", "", 1), "oidc.client_id"},
		{"no secret file", consoleMinimal + strings.Replace(oidcSection, "  client_secret_file: oidc-secret\n", "", 1), "oidc.client_secret_file"},
		{"redirect elsewhere", consoleMinimal + strings.Replace(oidcSection, "/auth/callback", "/cb", 1), "oidc.redirect_url"},
		{"no roles", consoleMinimal + strings.Replace(oidcSection, "  roles: {investigator: [inv], custodian: [cust], auditor: [aud]}\n", "", 1), "oidc.roles"},
		{"empty group", consoleMinimal + strings.Replace(oidcSection, "[cust]", "['']", 1), "oidc.roles.custodian[0]"},
		{"empty claim", consoleMinimal + oidcSection + "  roles_claim: ''\n", "oidc.roles_claim"},
		{"ttl too long", consoleMinimal + oidcSection + "  session_ttl: 48h\n", "oidc.session_ttl"},
		{"unknown key", consoleMinimal + oidcSection + "  client_secret: s3cret\n", "oidc.client_secret"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yml), "/etc/evidenced/evidenced.yaml")
			if err == nil {
				t.Fatal("accepted")
			}
			for _, fe := range fieldErrors(err) {
				if fe.Key == tc.key {
					return
				}
			}
			t.Errorf("no error for key %s: %v", tc.key, err)
		})
	}
	// http is accepted to loopback (a provider on this machine).
	mustParse(t, consoleMinimal+strings.Replace(oidcSection, "https://login.example.org", "http://127.0.0.1:8080", 1))
}

// The secret is read only from a file other users cannot read.
func TestOIDCClientSecretFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "secret")
	if err := os.WriteFile(f, []byte("s3cret\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	o := &OIDC{ClientSecretFile: f}
	if s, err := o.ClientSecret(); err != nil || s != "s3cret" {
		t.Fatalf("ClientSecret = %q, %v", s, err)
	}
	if err := os.Chmod(f, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := o.ClientSecret(); err == nil || !strings.Contains(err.Error(), "other users") {
		t.Errorf("world-readable secret file: %v, want refused", err)
	}
	if _, err := (&OIDC{ClientSecretFile: filepath.Join(dir, "missing")}).ClientSecret(); err == nil {
		t.Error("missing secret file accepted")
	}
	if err := os.WriteFile(f, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := o.ClientSecret(); err == nil {
		t.Error("empty secret accepted")
	}
}
