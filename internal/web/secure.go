package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// CSP is the Content-Security-Policy of every response. Scripts and styles
// come only from this origin's files: no inline script, no inline style
// attribute, no eval, so text a camera or a user provided cannot run even
// where escaping was forgotten. No framing (clickjacking), no <base> that
// redirects relative URLs, forms post only here.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"media-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// HSTS is sent over TLS only: a browser that learnt it over a loopback
// plain-HTTP page would refuse that page afterwards.
const HSTS = "max-age=31536000"

// Secure sets the security headers on every response of h.
func Secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", CSP)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if r.TLS != nil {
			hd.Set("Strict-Transport-Security", HSTS)
		}
		h.ServeHTTP(w, r)
	})
}

//go:embed assets
var shared embed.FS

// AssetPrefix is where the shared assets are served (assets/ of this
// package): the base stylesheet every page links.
const AssetPrefix = "/assets/web/"

// Handler is h behind Secure, with the routes every front end shares:
// /favicon.ico answers 204 (browsers ask for it; there is none) and
// AssetPrefix serves the shared assets. Listen serves through it, so a
// front end cannot leave them out.
func Handler(h http.Handler) http.Handler {
	sub, err := fs.Sub(shared, "assets")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle(AssetPrefix, http.StripPrefix(AssetPrefix, Static(sub)))
	mux.Handle("/", h)
	return Secure(mux)
}

// Static serves the files of fsys (an embedded tree) for GET and HEAD.
// Each response carries an ETag of its content and asks the browser to
// revalidate, so a kiosk picks up a new version's files without a cache
// flush. Directories are not listed.
func Static(fsys fs.FS) http.Handler {
	type file struct {
		body        []byte
		etag, ctype string
	}
	files := map[string]file{}
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		files[p] = file{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: ct}
		return nil
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		f, ok := files[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.ctype)
		h.Set("ETag", f.etag)
		h.Set("Cache-Control", "no-cache")
		if r.Header.Get("If-None-Match") == f.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Length", strconv.Itoa(len(f.body)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(f.body)
		}
	})
}
