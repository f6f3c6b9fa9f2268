// Package web is evidenced's HTTP listener, shared by its web front ends:
// the dock page of a dock host (package web/dock) and the web console of a
// console host (package web/console). It owns what every page must have
// whoever wrote it: TLS whenever the listener is not loopback (checked by
// config), timeouts against slow clients, security headers with a
// Content-Security-Policy that allows no inline script or style, embedded
// assets (no CDN, nothing fetched at run time), and a shutdown that ends
// long-lived event streams when the daemon stops taking new work.
//
// Like the CLI, a front end only calls internal/service: nothing here
// reaches the ledger, the vault or the store by itself.
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/evidenced/evidenced/internal/config"
)

// Timeouts of the listener. There is no WriteTimeout: event streams and
// footage downloads legitimately last long; a client that stops reading is
// bounded by the kernel's send buffer and the handler's own context.
const (
	// ReadHeaderTimeout closes a connection whose request headers do not
	// arrive in time (slowloris).
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout bounds reading a whole request; only small forms are
	// posted to evidenced.
	ReadTimeout = 30 * time.Second
	// IdleTimeout closes keep-alive connections nobody uses.
	IdleTimeout = 2 * time.Minute
	// MaxHeaderBytes: a request's headers are small.
	MaxHeaderBytes = 64 << 10
)

// Server is a bound listener, not yet serving.
type Server struct {
	ln  net.Listener
	srv *http.Server
	tls bool
	log *slog.Logger
}

// Listen binds cfg.Listen (with TLS when cfg names a certificate), so that
// a daemon that cannot serve its page fails at start rather than after it
// told systemd it is ready. h is served behind Secure and the routes every
// front end shares (see Handler).
func Listen(cfg config.HTTP, h http.Handler, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Listen == "" {
		return nil, errors.New("http.listen is not set")
	}
	var tc *tls.Config
	if cfg.TLS() {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("http.tls_cert_file/http.tls_key_file: %w", err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	} else if !config.IsLoopback(cfg.Listen) {
		// config.Validate refuses this; a Config built in code must not
		// get past it either.
		return nil, fmt.Errorf("http.listen %s is not loopback and no TLS certificate is configured", cfg.Listen)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("http.listen: %w", err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	s := &Server{ln: ln, tls: tc != nil, log: log}
	s.srv = &http.Server{
		Handler:           Handler(h),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		TLSConfig:         tc,
		// Handshake failures and broken connections from browsers are
		// routine: debug, not the operator's warning.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Addr is the bound address (the port chosen when Listen asked for 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL is the base URL of the listener, e.g. "https://127.0.0.1:8470".
func (s *Server) URL() string {
	scheme := "http"
	if s.tls {
		scheme = "https"
	}
	return scheme + "://" + s.ln.Addr().String()
}

// Close releases a listener that will not be served.
func (s *Server) Close() error { return s.ln.Close() }

// stopKey carries the stop context into every request's context.
type stopKey struct{}

// Serve serves until stop is cancelled (the daemon stops taking new work),
// then shuts down gracefully: no new connections, event streams end (see
// Stopping), requests in flight finish until work is cancelled (the drain
// deadline), when the rest are cut. It returns nil after a shutdown and the
// listener's error otherwise.
func (s *Server) Serve(stop, work context.Context) error {
	// Requests run under work: cancelled at the drain deadline, and they
	// can tell that the daemon is stopping through Stopping.
	s.srv.BaseContext = func(net.Listener) context.Context { return context.WithValue(work, stopKey{}, stop) }
	done := make(chan error, 1)
	go func() { done <- s.srv.Serve(s.ln) }()
	s.log.Info("serving web", "url", s.URL())
	select {
	case err := <-done:
		return fmt.Errorf("http: %w", err)
	case <-stop.Done():
	}
	err := s.srv.Shutdown(work)
	if err != nil {
		s.log.Warn("web requests cut at the drain deadline", "err", err)
		s.srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http: %w", err)
	}
	return nil
}

// Serve binds cfg.Listen and serves h until stop (see Server.Serve).
func Serve(stop, work context.Context, cfg config.HTTP, h http.Handler, log *slog.Logger) error {
	s, err := Listen(cfg, h, log)
	if err != nil {
		return err
	}
	return s.Serve(stop, work)
}

// Stopping is closed when the daemon stops taking new work: a handler that
// streams (Server-Sent Events) returns then, so that the shutdown does not
// wait for a kiosk that never disconnects. It is nil (never closed) for a
// request that did not come through Serve.
func Stopping(ctx context.Context) <-chan struct{} {
	if stop, ok := ctx.Value(stopKey{}).(context.Context); ok {
		return stop.Done()
	}
	return nil
}
