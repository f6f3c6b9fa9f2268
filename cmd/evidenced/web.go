package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/service"
	"github.com/evidenced/evidenced/internal/web"
	"github.com/evidenced/evidenced/internal/web/console"
	"github.com/evidenced/evidenced/internal/web/dock"
)

// webHandler is the one place where the web listener's front end is chosen
// by the host's role: the dock page on a dock host, the web console on a
// console host.
func webHandler(svc *service.Service, cfg *config.Config, log *slog.Logger) (http.Handler, error) {
	switch cfg.Role {
	case config.RoleConsole:
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return console.New(ctx, svc, cfg.OIDC, log, console.Options{SecureCookies: cfg.HTTP.TLS()})
	default:
		return dock.New(svc, cfg.HTTP.DockPage, log), nil
	}
}

// listenWeb binds http.listen before the daemon reports ready, so a port
// in use or a bad certificate stops the start instead of a running daemon
// without its page. It returns nil when http.listen is not set.
func listenWeb(svc *service.Service, cfg *config.Config, log *slog.Logger) (*web.Server, error) {
	if cfg.HTTP.Listen == "" {
		return nil, nil
	}
	h, err := webHandler(svc, cfg, log)
	if err != nil {
		return nil, err
	}
	return web.Listen(cfg.HTTP, h, log)
}

// serveAll runs the front ends (the control socket, the web listener) side
// by side as service.Run's one serve function. When one fails the others
// are stopped as at a shutdown, and every failure is returned.
func serveAll(fs ...func(stop, work context.Context) error) func(stop, work context.Context) error {
	return func(stop, work context.Context) error {
		stop, cancel := context.WithCancel(stop)
		defer cancel()
		var wg sync.WaitGroup
		errs := make([]error, len(fs))
		for i, f := range fs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f(stop, work); err != nil {
					errs[i] = err
					cancel()
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		return nil
	}
}
