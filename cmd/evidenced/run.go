package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/control"
	"github.com/evidenced/evidenced/internal/service"
)

func runCommand() *command {
	return &command{
		name: "run", summary: "run the daemon: watch for docked cameras, ingest, upload, verify (at a console: index the fleet's custody, audit, scrub)",
		setup:  func(fs *flag.FlagSet) runner { return nil },
		daemon: runDaemon,
	}
}

// runDaemon is `evidenced run`. The first signal stops intake and drains
// within shutdown_timeout; the second cancels at once. Exit 0 after a drain.
func runDaemon(intake, hard context.Context, cfg *config.Config, stderr io.Writer) error {
	// Every string and error a log line carries (serials, file names, USB
	// descriptors, what a client sent) is escaped (service.DaemonLogger):
	// no terminal control reaches the journal or the console.
	// SIGHUP (systemctl reload) re-reads the config. Caught from here on,
	// so one sent while the ledger is being opened is not fatal (Go's
	// default for SIGHUP is to exit); it is handled once the service is up.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	level := new(slog.LevelVar)
	level.Set(parseLevel(cfg.LogLevel))
	log := service.DaemonLogger(stderr, level)
	// The daemon waits longer for the ledger lock than a CLI command: a
	// command that was working locally when the daemon started finishes first.
	svc, err := service.Open(hard, cfg, log, service.Options{LockTimeout: 60 * time.Second, LogLevel: level})
	if err != nil {
		return err
	}
	defer svc.Close()
	// Reload logs what it applied or why it refused the file.
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		for {
			select {
			case <-hup:
				_ = svc.Reload()
			case <-stopped:
				return
			}
		}
	}()
	// The web listener (http.listen) is bound before the control socket
	// and both before Run tells systemd the daemon is ready.
	ws, err := listenWeb(svc, cfg, log)
	if err != nil {
		return err
	}
	closeWeb := func() {
		if ws != nil {
			ws.Close()
		}
	}
	ctl := cfg.Control
	srv, err := control.Listen(cfg.SocketPath(), daemonHandler(svc, control.Groups{Read: ctl.ReadGroup, Write: ctl.WriteGroup, Retrieve: ctl.RetrieveGroup}), log)
	if err != nil {
		closeWeb()
		return err
	}
	if g := ctl.SocketGroup(); g != "" {
		if err := srv.ShareWithGroup(g); err != nil {
			closeWeb()
			return err
		}
		if ctl.RetrieveGroup == "" {
			// Said at start because readers who used get or export before
			// retrieval was its own right are now refused.
			log.Info("control.retrieve_group is not set: only root and the daemon's user may get or export through the socket", "socket_group", g)
		}
	}
	serve := []func(stop, work context.Context) error{srv.Serve}
	if ws != nil {
		serve = append(serve, ws.Serve)
	}
	log.Info("evidenced running", "host", cfg.HostID, "role", cfg.Role, "version", service.Version, "watch", strings.Join(cfg.Sources.Watch, ","),
		"object_store", cfg.ObjectStore != nil, "socket", cfg.SocketPath(), "http", cfg.HTTP.Listen)
	if err := svc.Run(intake, hard, serveAll(serve...)); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	log.Info("evidenced stopped")
	return nil
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}
