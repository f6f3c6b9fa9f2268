package dock

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/evidenced/evidenced/internal/web"
)

// events is the Server-Sent Events stream behind the page: the full
// snapshot on connect, again after every change (at most every
// MinInterval, coalesced to the latest: a slow client skips states, it
// never queues them, and the tracker never waits for it), again every
// Refresh, and a comment every Heartbeat. It ends when the client goes,
// when a write does not complete within WriteTimeout, or when the daemon
// stops taking new work.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	if n := h.streams.Add(1); n > int64(h.o.MaxStreams) {
		h.streams.Add(-1)
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many dock page connections", http.StatusServiceUnavailable)
		return
	}
	defer h.streams.Add(-1)
	changed, cancel := h.src.Bays().Subscribe()
	defer cancel()

	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // a reverse proxy must not buffer the stream
	w.WriteHeader(http.StatusOK)

	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(h.o.WriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	var last time.Time
	send := func() bool {
		last = time.Now()
		b, err := json.Marshal(h.Snapshot())
		if err != nil {
			h.log.Error("dock page: encode bays", "err", err)
			return false
		}
		return write(fmt.Appendf(nil, "event: bays\ndata: %s\n\n", b))
	}
	// retry: how soon the browser reconnects after the daemon restarts.
	if !write([]byte("retry: 2000\n\n")) || !send() {
		return
	}
	heartbeat := time.NewTicker(h.o.Heartbeat)
	defer heartbeat.Stop()
	refresh := time.NewTicker(h.o.Refresh)
	defer refresh.Stop()
	var pending <-chan time.Time // set while a change waits for MinInterval
	for {
		ok := true
		select {
		case <-r.Context().Done():
			return
		case <-web.Stopping(r.Context()):
			return
		case <-changed:
			if pending != nil {
				continue // the coming send takes this change too
			}
			if wait := h.o.MinInterval - time.Since(last); wait > 0 {
				pending = time.After(wait)
				continue
			}
			ok = send()
		case <-pending:
			pending = nil
			ok = send()
		case <-refresh.C:
			ok = send()
		case <-heartbeat.C:
			ok = write([]byte(": heartbeat\n\n"))
		}
		if !ok {
			return
		}
	}
}
