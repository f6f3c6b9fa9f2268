package config

import (
	"crypto/tls"
	"net"
	"os"
	"strconv"
)

// HTTP is the web listener: the dock page on a dock host, the console's
// web UI on a console host (see package web).
type HTTP struct {
	// Listen is host:port, e.g. "127.0.0.1:8470". Empty (the default): no
	// web listener. On any address but loopback TLS is required: a dock
	// page names officers, a console serves footage.
	Listen string `yaml:"listen"`
	// TLSCertFile and TLSKeyFile are a PEM certificate (chain) and its
	// private key. Both or neither; required unless Listen is loopback.
	// Read at start: a renewed certificate takes a restart.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// DockPage tunes the dock page (role dock).
	DockPage DockPage `yaml:"dock_page"`
}

// DockPage tunes what the dock page shows. The page is often on a screen
// in a public part of a station.
type DockPage struct {
	// ShowAssignedTo shows to whom each camera is issued (the inventory's
	// assigned_to) beside its serial. Default true; false shows only the
	// camera's serial, for a screen the public can read.
	ShowAssignedTo bool `yaml:"show_assigned_to"`
}

// TLS reports whether the web listener serves HTTPS.
func (h HTTP) TLS() bool { return h.TLSCertFile != "" || h.TLSKeyFile != "" }

// IsLoopback reports whether a listen address (host:port) binds only the
// loopback interface: 127.0.0.0/8, ::1 or localhost. An empty host binds
// every interface and is not loopback.
func IsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// listen checks a host:port the daemon binds as written. It reports
// whether the address is usable.
func (v *validator) listen(key, addr, example string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(key, "must be host:port (e.g. %s), got %q: %v", example, addr, err)
		return false
	}
	ok := true
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.add(key, "port must be 1-65535, got %q", port)
		ok = false
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		v.add(key, "host must be an IP address or localhost (a name may resolve to another interface), got %q", host)
		ok = false
	}
	return ok
}

// http checks the http section. TLS is checked here, at start, by loading
// the pair: a daemon that would serve officers' names in clear text, or
// fail its first handshake, does not start.
func (v *validator) http(h HTTP) {
	if h.TLSCertFile != "" {
		v.absPath("http.tls_cert_file", h.TLSCertFile)
	}
	if h.TLSKeyFile != "" {
		v.absPath("http.tls_key_file", h.TLSKeyFile)
	}
	if h.Listen == "" {
		if h.TLS() {
			v.add("http.listen", "required when http.tls_cert_file or http.tls_key_file is set")
		}
		return
	}
	if !v.listen("http.listen", h.Listen, "127.0.0.1:8470") {
		return
	}
	switch {
	case h.TLSCertFile == "" && h.TLSKeyFile == "":
		if !IsLoopback(h.Listen) {
			v.add("http.tls_cert_file", "required: http.listen %s is not a loopback address, and the web listener serves only HTTPS off loopback (set http.tls_cert_file and http.tls_key_file)", h.Listen)
		}
	case h.TLSCertFile == "":
		v.add("http.tls_cert_file", "required with http.tls_key_file")
	case h.TLSKeyFile == "":
		v.add("http.tls_key_file", "required with http.tls_cert_file")
	default:
		v.tlsPair(h.TLSCertFile, h.TLSKeyFile)
	}
}

// tlsPair loads the certificate and key as the listener will.
func (v *validator) tlsPair(certFile, keyFile string) {
	bad := false
	for _, f := range []struct{ key, path string }{{"http.tls_cert_file", certFile}, {"http.tls_key_file", keyFile}} {
		if _, err := os.ReadFile(f.path); err != nil {
			v.add(f.key, "cannot be read: %v", err)
			bad = true
		}
	}
	if bad {
		return
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		v.add("http.tls_cert_file", "with http.tls_key_file is not a usable TLS certificate and key: %v", err)
	}
}
