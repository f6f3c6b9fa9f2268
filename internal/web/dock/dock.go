// Package dock is the dock page: what an officer who docked a camera reads
// on a screen beside the dock before walking away. One tile per bay (a USB
// bay position or a watched folder) with the camera, to whom it is issued
// (unless the page is configured for a public screen), and the state in
// plain words and colour. It only reads: nothing on it changes anything.
//
// Routes: GET / (the page), GET /api/bays (its JSON), GET /api/events
// (Server-Sent Events behind the page), and the page's embedded assets.
package dock

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/service"
)

// Handler serves the dock page of one daemon.
type Handler struct {
	svc *service.Service
	opt config.DockPage
	log *slog.Logger
	mux *http.ServeMux
}

// New returns the dock page for svc's bays.
func New(svc *service.Service, opt config.DockPage, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{svc: svc, opt: opt, log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /api/bays", h.bays)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) bays(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(h.svc.Bays().List())
}
