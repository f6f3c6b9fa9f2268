package service

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/evidenced/evidenced/internal/config"
)

// Reload re-reads the configuration file the daemon started with (SIGHUP,
// `systemctl reload`). A file that does not load or validate is refused:
// the error is logged and returned, and the configuration in force stays.
// Otherwise the reloadable keys (config.Reloadable: the camera inventory,
// the retention classes, the upload bandwidth and its windows, the log
// level) take effect for what starts next: a dock in progress finishes with
// the camera entry it started with, an upload in progress with the class it
// looked up. Changes to any other key are logged as needing a restart and
// are not applied.
func (s *Service) Reload() error {
	next, err := config.Load(s.config.Path)
	if err != nil {
		s.log.Error("configuration reload refused; the configuration in force stays", "path", s.config.Path, "err", err)
		return fmt.Errorf("reload %s: %w", s.config.Path, err)
	}
	restart := s.config.RestartNeeded(next)
	if liveLimiter(s.config) == nil && liveLimiter(next) != nil {
		// The store was built without a limiter (no cap at start).
		restart = append(restart, "upload.bandwidth (no cap was set at start)")
	}
	s.config.Reload(next)
	if s.level != nil {
		var l slog.Level
		if err := l.UnmarshalText([]byte(next.LogLevel)); err == nil {
			s.level.Set(l)
		}
	}
	s.log.Info("configuration reloaded", "path", next.Path, "cameras", len(next.Cameras),
		"retention_classes", len(next.Retention.Classes), "log_level", next.LogLevel)
	if len(restart) > 0 {
		s.log.Warn("changed keys take effect only after a restart", "keys", strings.Join(restart, ","))
	}
	return nil
}
