package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidenced/evidenced/internal/testutil/tlscert"
)

// The web listener is off unless http.listen is set; the dock page shows
// to whom a camera is issued unless told not to.
func TestHTTPDefaults(t *testing.T) {
	c := mustParse(t, minimal)
	if c.HTTP.Listen != "" || c.HTTP.TLS() {
		t.Errorf("http defaults to %+v, want off", c.HTTP)
	}
	if !c.HTTP.DockPage.ShowAssignedTo {
		t.Error("http.dock_page.show_assigned_to defaults to false, want true")
	}
	c = mustParse(t, minimal+"http: {listen: \"127.0.0.1:8470\", dock_page: {show_assigned_to: false}}\n")
	if c.HTTP.DockPage.ShowAssignedTo || c.HTTP.Listen != "127.0.0.1:8470" {
		t.Errorf("http parsed as %+v", c.HTTP)
	}
}

// Off loopback the listener serves only HTTPS, with a pair that loads;
// every refusal names the key to fix.
func TestHTTPTLSRule(t *testing.T) {
	dir := t.TempDir()
	good := tlscert.Write(t, dir, "good")
	other := tlscert.Write(t, dir, "other")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	httpSec := func(listen, cert, key string) string {
		return fmt.Sprintf("http: {listen: %q, tls_cert_file: %q, tls_key_file: %q}\n", listen, cert, key)
	}
	for _, ok := range []string{
		httpSec("127.0.0.1:8470", "", ""),
		httpSec("127.0.0.2:8470", "", ""),
		httpSec("[::1]:8470", "", ""),
		httpSec("localhost:8470", "", ""),
		httpSec("0.0.0.0:8443", good.CertFile, good.KeyFile),
		httpSec(":8443", good.CertFile, good.KeyFile),
		httpSec("127.0.0.1:8443", good.CertFile, good.KeyFile),
	} {
		if _, err := Parse([]byte(minimal+ok), "/etc/evidenced/evidenced.yaml"); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []struct{ yml, key, says string }{
		{httpSec("0.0.0.0:8470", "", ""), "http.tls_cert_file", "not a loopback address"},
		{httpSec(":8470", "", ""), "http.tls_cert_file", "not a loopback address"},
		{httpSec("192.0.2.7:8470", "", ""), "http.tls_cert_file", "not a loopback address"},
		{httpSec("0.0.0.0:8443", good.CertFile, ""), "http.tls_key_file", "required with http.tls_cert_file"},
		{httpSec("0.0.0.0:8443", "", good.KeyFile), "http.tls_cert_file", "required with http.tls_key_file"},
		{httpSec("0.0.0.0:8443", missing, good.KeyFile), "http.tls_cert_file", "cannot be read"},
		{httpSec("0.0.0.0:8443", good.CertFile, missing), "http.tls_key_file", "cannot be read"},
		{httpSec("0.0.0.0:8443", garbage, good.KeyFile), "http.tls_cert_file", "not a usable TLS certificate"},
		{httpSec("0.0.0.0:8443", good.CertFile, other.KeyFile), "http.tls_cert_file", "not a usable TLS certificate"},
		{httpSec("", good.CertFile, good.KeyFile), "http.listen", "required when"},
		{httpSec("dock.example:8470", "", ""), "http.listen", "IP address or localhost"},
		{httpSec("127.0.0.1", "", ""), "http.listen", "host:port"},
		{httpSec("127.0.0.1:0", "", ""), "http.listen", "1-65535"},
	} {
		_, err := Parse([]byte(minimal+bad.yml), "/etc/evidenced/evidenced.yaml")
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want invalid", bad.yml, err)
			continue
		}
		var named bool
		for _, fe := range fieldErrors(err) {
			named = named || (fe.Key == bad.key && strings.Contains(fe.Msg, bad.says))
		}
		if !named {
			t.Errorf("%s: got %v, want %s: ...%s...", bad.yml, err, bad.key, bad.says)
		}
	}
}

// Relative TLS paths are relative to the config file, like every path.
func TestHTTPTLSPathsRelative(t *testing.T) {
	dir := t.TempDir()
	tlscert.Write(t, dir, "web")
	c, err := Parse([]byte(minimal+"http: {listen: \"0.0.0.0:8443\", tls_cert_file: web.crt, tls_key_file: web.key}\n"), filepath.Join(dir, "evidenced.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.TLSCertFile != filepath.Join(dir, "web.crt") || c.HTTP.TLSKeyFile != filepath.Join(dir, "web.key") {
		t.Errorf("paths %q %q not resolved against %s", c.HTTP.TLSCertFile, c.HTTP.TLSKeyFile, dir)
	}
}
