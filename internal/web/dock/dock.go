// Package dock is the dock page: what an officer who docked a camera reads
// on a screen beside the dock before walking away. One tile per bay (a USB
// bay position or a watched folder) with the camera, to whom it is issued
// (unless the page is configured for a public screen), and the state in
// plain words and colour. It only reads: nothing on it changes anything,
// so every route is GET (HEAD) and any other method is 405.
//
// Routes: GET / (the page, complete without script), GET /api/bays (its
// JSON), GET /api/events (Server-Sent Events: the same JSON on connect and
// on every change, which the page's small script applies), and the page's
// embedded assets under /assets/dock/.
package dock

import (
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/service"
	"github.com/evidenced/evidenced/internal/web"
)

// Source is what the page reads: the daemon's bays and its configuration
// (the inventory's assigned_to, as reloaded). *service.Service is one.
type Source interface {
	Bays() *service.Bays
	Config() *config.Config
}

// Options tune the event stream; zero values take the defaults.
type Options struct {
	// Heartbeat is how often an idle stream sends a comment, so that
	// proxies and the browser keep the connection open. Default 15s.
	Heartbeat time.Duration
	// Refresh is how often the snapshot is sent even without a change:
	// the page marks itself stale when it hears nothing for longer (a
	// half-open connection must not keep showing SAFE). Default 30s.
	Refresh time.Duration
	// MinInterval is the least time between two snapshots to one client;
	// changes in between are coalesced into the latest. Default 250ms.
	MinInterval time.Duration
	// WriteTimeout ends a stream whose client does not take a write.
	// Default 10s.
	WriteTimeout time.Duration
	// MaxStreams bounds the open event streams (the page is public):
	// more are answered 503. Default 256.
	MaxStreams int
}

func (o *Options) defaults() {
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.Refresh <= 0 {
		o.Refresh = 30 * time.Second
	}
	if o.MinInterval <= 0 {
		o.MinInterval = 250 * time.Millisecond
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = 256
	}
}

// Handler serves the dock page of one daemon.
type Handler struct {
	src     Source
	opt     config.DockPage
	o       Options
	log     *slog.Logger
	mux     *http.ServeMux
	streams atomic.Int64
	now     func() time.Time
}

//go:embed assets templates
var files embed.FS

var page = template.Must(template.ParseFS(files, "templates/page.html"))

// AssetPrefix is where the page's script and stylesheet are served.
const AssetPrefix = "/assets/dock/"

// New returns the dock page for src's bays. opt is http.dock_page.
func New(src Source, opt config.DockPage, log *slog.Logger) *Handler {
	return NewWith(src, opt, Options{}, log)
}

// NewWith is New with the event stream tuned (tests, benchmarks).
func NewWith(src Source, opt config.DockPage, o Options, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o.defaults()
	h := &Handler{src: src, opt: opt, o: o, log: log, mux: http.NewServeMux(), now: time.Now}
	assets, err := fs.Sub(files, "assets")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	// GET patterns also take HEAD; the mux answers 405 with Allow for any
	// other method on these paths, and 404 for any other path.
	h.mux.HandleFunc("GET /{$}", h.page)
	h.mux.HandleFunc("GET /api/bays", h.bays)
	h.mux.HandleFunc("GET /api/events", h.events)
	h.mux.Handle("GET "+AssetPrefix, http.StripPrefix(AssetPrefix, web.Static(assets)))
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Snapshot is what /api/bays answers now.
func (h *Handler) Snapshot() []BayView {
	return view(h.src.Bays().List(), h.src.Config(), h.opt, h.now())
}

func (h *Handler) bays(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(h.Snapshot())
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		h.log.Error("dock page: encode bays", "err", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}

// pageData is what the template renders: the page is complete without
// its script, which only keeps it live.
type pageData struct {
	Host       string
	Bays       []BayView
	ShowIssued bool
	Refresh    int64 // ms: the script's staleness limit derives from it
	WebCSS     string
	DockCSS    string
	DockJS     string
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	d := pageData{
		Host: h.src.Config().HostID, Bays: h.Snapshot(), ShowIssued: h.opt.ShowAssignedTo,
		Refresh: h.o.Refresh.Milliseconds(),
		WebCSS:  web.AssetPrefix + "base.css", DockCSS: AssetPrefix + "dock.css", DockJS: AssetPrefix + "dock.js",
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := page.Execute(w, d); err != nil {
		h.log.Warn("dock page: render", "err", err)
	}
}
