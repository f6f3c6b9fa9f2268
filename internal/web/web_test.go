package web

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/testutil/tlscert"
)

// Every response, whatever the front end wrote, carries the security
// headers, and the policy allows no inline script or style.
func TestSecureHeaders(t *testing.T) {
	h := Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nothing here", http.StatusNotFound)
	}))
	for _, path := range []string{"/", "/anything", "/favicon.ico", AssetPrefix + "base.css", AssetPrefix + "missing.css"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		hd := rec.Header()
		csp := hd.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'", "object-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-") {
			t.Errorf("%s: CSP %q allows unsafe-*", path, csp)
		}
		if hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("Referrer-Policy") != "no-referrer" || hd.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", path, hd)
		}
		if hd.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS over plain HTTP: a loopback page would be refused afterwards", path)
		}
	}
	req := httptest.NewRequest("GET", "https://dock/", nil)
	req.TLS = &tls.ConnectionState{}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Strict-Transport-Security") != HSTS {
		t.Errorf("HSTS over TLS: %q, want %q", rec.Header().Get("Strict-Transport-Security"), HSTS)
	}
}

// The routes every front end shares: no favicon (204, not a 404 in every
// log), the base stylesheet from the binary, revalidated by ETag, and no
// other method than GET/HEAD on assets.
func TestSharedRoutes(t *testing.T) {
	h := Handler(http.NotFoundHandler())
	get := func(method, path string, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := get("GET", "/favicon.ico"); rec.Code != http.StatusNoContent {
		t.Errorf("favicon: %d, want 204", rec.Code)
	}
	rec := get("GET", AssetPrefix+"base.css")
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/css") || !strings.Contains(rec.Body.String(), "--bg") {
		t.Fatalf("base.css: %d %q %.60q", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}
	etag := rec.Header().Get("ETag")
	if etag == "" || rec.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("base.css caching: ETag %q, Cache-Control %q", etag, rec.Header().Get("Cache-Control"))
	}
	if rec := get("GET", AssetPrefix+"base.css", "If-None-Match", etag); rec.Code != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", rec.Code)
	}
	if rec := get("POST", AssetPrefix+"base.css"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST asset: %d, want 405", rec.Code)
	}
	for _, p := range []string{AssetPrefix, AssetPrefix + "nope.js", AssetPrefix + "assets/base.css"} {
		if rec := get("GET", p); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, rec.Code)
		}
	}
}

// Serve speaks TLS when configured, ends event streams when the daemon
// stops taking work (Stopping), and returns nil after the shutdown.
func TestServeTLSAndStop(t *testing.T) {
	pair := tlscert.Write(t, t.TempDir(), "web")
	cfg := config.HTTP{Listen: "127.0.0.1:0", TLSCertFile: pair.CertFile, TLSKeyFile: pair.KeyFile}
	streaming := make(chan struct{})
	ended := make(chan struct{})
	h := http.NewServeMux()
	h.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		close(streaming)
		<-Stopping(r.Context())
		close(ended)
	})
	s, err := Listen(cfg, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL(), "https://127.0.0.1:") {
		t.Errorf("URL %s, want https", s.URL())
	}
	stop, cancelStop := context.WithCancel(context.Background())
	work, cancelWork := context.WithCancel(context.Background())
	defer cancelWork()
	served := make(chan error, 1)
	go func() { served <- s.Serve(stop, work) }()

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pair.Pool}}}
	resp, err := client.Get(s.URL() + "/favicon.ico")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("over TLS: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
	plain, err := http.Get("http://" + s.Addr().String() + "/favicon.ico")
	if err == nil && plain.StatusCode < 400 {
		t.Errorf("plain HTTP on a TLS listener answered %d", plain.StatusCode)
	}
	if err == nil {
		plain.Body.Close()
	}

	resp, err = client.Get(s.URL() + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	<-streaming
	cancelStop()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end when the daemon stopped taking work")
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve after stop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after stop")
	}
	if _, err := client.Get(s.URL() + "/favicon.ico"); err == nil {
		t.Error("still serving after stop")
	}
}

// Listen refuses what config.Validate refuses, for a Config built in code:
// plain HTTP off loopback, or a pair that does not load.
func TestListenRefuses(t *testing.T) {
	for _, cfg := range []config.HTTP{
		{Listen: "0.0.0.0:0"},
		{Listen: ":0"},
		{Listen: "127.0.0.1:0", TLSCertFile: "/nonexistent.crt", TLSKeyFile: "/nonexistent.key"},
		{},
	} {
		if s, err := Listen(cfg, http.NotFoundHandler(), nil); err == nil {
			s.Close()
			t.Errorf("Listen(%+v) served", cfg)
		}
	}
	if Stopping(context.Background()) != nil {
		t.Error("Stopping outside Serve is not nil")
	}
}
