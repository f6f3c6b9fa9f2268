package service

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
	"github.com/evidenced/evidenced/internal/sdnotify"
)

// statusEvery is how often STATUS= is refreshed when systemd asks for no
// watchdog pings (the status line still tells `systemctl status` the bays
// and the queue).
const statusEvery = 30 * time.Second

// storeProbeTimeout bounds the start-up check that the object store
// answers: READY=1 waits for it, and a store that does not answer in time
// is reported as "waiting" (the uploader retries on its own).
const storeProbeTimeout = 15 * time.Second

// supervisor tells systemd (Type=notify) how the daemon is doing: READY=1
// once the ledger is open, the vault checked and the store reached (or the
// upload queue known to be waiting for it), STATUS= with the bays and the
// queue, WATCHDOG=1 from the heartbeat loop and STOPPING=1 while draining.
type supervisor struct {
	n *sdnotify.Notifier
	// every is the heartbeat period: half of WatchdogSec=, or statusEvery.
	every    time.Duration
	watchdog bool
}

func newSupervisor(s *Service) *supervisor {
	sv := &supervisor{n: sdnotify.FromEnv(), every: statusEvery}
	iv, err := sdnotify.WatchdogInterval()
	if err != nil {
		s.log.Warn("ignoring the watchdog setting", "err", err)
	}
	if iv > 0 {
		sv.every, sv.watchdog = iv, true
	}
	return sv
}

// storeState says whether the object store answered at start: "" when there
// is none configured.
func (s *Service) storeState(ctx context.Context) string {
	st, ok := s.store.(*s3store.Store)
	if !ok || st == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, storeProbeTimeout)
	defer cancel()
	if err := st.Probe(ctx); err != nil {
		s.log.Warn("object store not reachable at start; uploads wait for it", "err", err)
		return "store unreachable, uploads waiting"
	}
	return "store reachable"
}

// statusLine is the one line `systemctl status` shows: the bays and the
// upload queue.
func (s *Service) statusLine(ctx context.Context) (string, error) {
	rep, err := s.Status(ctx, true)
	if err != nil {
		return "", err
	}
	var docked, copying, problem int
	for _, b := range rep.Bays {
		docked++
		switch b.State {
		case BayCopying:
			copying++
		case BayProblem, BayUnknown:
			problem++
		}
	}
	queue := rep.Queue[custody.StateVaulted] + rep.Queue[custody.StateUploaded]
	line := fmt.Sprintf("bays: %d docked, %d copying, %d need attention; queue: %d to upload, %d to verify, %d failed",
		docked, copying, problem, rep.Queue[custody.StateVaulted], rep.Queue[custody.StateUploaded], rep.Failed)
	if s.store == nil && queue > 0 {
		line += " (no object store configured)"
	}
	return line, nil
}

// ready sends READY=1. Run calls it once the ledger and vault are open (Open),
// HOST_STARTED is recorded and the store answered or was found waiting.
func (sv *supervisor) ready(ctx context.Context, s *Service) {
	parts := []string{}
	if st := s.storeState(ctx); st != "" {
		parts = append(parts, st)
	}
	if line, err := s.statusLine(ctx); err == nil {
		parts = append(parts, line)
	}
	if err := sv.n.Ready(strings.Join(parts, "; ")); err != nil {
		s.log.Warn("tell systemd the daemon is ready", "err", err)
	}
}

// heartbeat pings the watchdog and refreshes STATUS= every sv.every until
// ctx is done. Each ping follows a fresh read of the ledger and the bays
// (beat): when that read hangs (a wedged ledger, a deadlock) the loop hangs
// with it and the pings stop, so systemd restarts the daemon; a process
// frozen outright (SIGSTOP) stops them the same way.
func (sv *supervisor) heartbeat(ctx context.Context, s *Service, beat func(context.Context) (string, error)) {
	t := time.NewTicker(sv.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		line, err := beat(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// The loop is alive but cannot read its ledger: keep pinging
			// (a restart would not help) and say so in the status.
			s.log.Error("heartbeat: read status", "err", err)
			line = "cannot read the ledger: " + err.Error()
		}
		msg := "STATUS=" + strings.ReplaceAll(line, "\n", " ")
		if sv.watchdog {
			msg = "WATCHDOG=1\n" + msg
		}
		if err := sv.n.Send(msg); err != nil {
			s.log.Warn("notify systemd", "err", err)
		}
	}
}

// stopping sends STOPPING=1 when the drain begins.
func (sv *supervisor) stopping(s *Service, timeout time.Duration) {
	if err := sv.n.Stopping(fmt.Sprintf("draining: finishing copies and uploads in flight (up to %s)", timeout)); err != nil {
		s.log.Warn("tell systemd the daemon is stopping", "err", err)
	}
}
