// Package console is the signed-in web UI of a fleet console (role:
// console) for investigators, custodians and auditors: search, an item's
// custody, playback in the browser, download, court export, holds and
// retention classes, fleet health, the camera inventory (read, and for
// custodians assign and retire) and the access log.
//
// It is a front end like the CLI: every page calls the same
// internal/service operation the matching command does, under the
// signed-in person's name, so every search, view and retrieval is a custody
// record exactly as it is from the command line. It reads no store and no
// ledger of its own.
//
// People sign in at the City's OpenID Connect provider (authorization code
// with PKCE S256, state and nonce); their groups map to roles
// (config.OIDCRoles); each route declares the roles it admits (routes.go),
// checked on the server before its handler runs.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/service"
	"github.com/evidenced/evidenced/internal/web"
)

//go:embed web
var webFS embed.FS

// backend is what the console asks of the service: the operations the CLI
// runs, nothing more. *service.Service provides it (serviceBackend); the
// unit tests put a recording fake in its place.
type backend interface {
	FindPage(ctx context.Context, c service.Caller, o service.FindOptions) (service.FoundPage, error)
	View(ctx context.Context, c service.Caller, id, reason string) (service.ItemView, error)
	Play(ctx context.Context, c service.Caller, id, reason string) (footage, error)
	Get(ctx context.Context, c service.Caller, o service.GetOptions, w io.Writer, started func(custody.Item)) error
	Export(ctx context.Context, c service.Caller, o service.ExportOptions, w io.Writer) (service.ExportSummary, error)
	Hold(ctx context.Context, c service.Caller, o service.HoldOptions) (service.HoldResult, error)
	Release(ctx context.Context, c service.Caller, o service.HoldOptions) (service.HoldResult, error)
	Classify(ctx context.Context, c service.Caller, o service.ClassifyOptions) (service.ClassifyResult, error)
	Verify(ctx context.Context, c service.Caller, o service.VerifyOptions) (service.VerifyReport, error)
	Accesses(ctx context.Context, c service.Caller, f service.AccessFilter) ([]custody.Event, error)
	Fleet(ctx context.Context, c service.Caller, o service.FleetOptions) (service.FleetHealth, error)
	ClearHost(ctx context.Context, c service.Caller, o service.ClearHostOptions) (service.HostClearance, error)
	ShowInventory(ctx context.Context) (service.InventoryView, error)
	AssignInventory(ctx context.Context, c service.Caller, serial, who string, effective time.Time) (service.InventoryPublication, error)
	RetireInventory(ctx context.Context, c service.Caller, serial string, effective time.Time) (service.InventoryPublication, error)
	ImportInventoryData(ctx context.Context, c service.Caller, name string, data []byte) (service.InventoryPublication, error)
	RecordAccess(ctx context.Context, c service.Caller, action, reason string, it *custody.Item, details map[string]string) error
	Classes() []string
}

// footage is a recording whose viewing is on record (service.Footage).
type footage interface {
	Item() custody.Item
	OpenRange(ctx context.Context, off, n int64) (io.ReadCloser, error)
}

// serviceBackend adapts *service.Service to backend.
type serviceBackend struct{ *service.Service }

func (b serviceBackend) Play(ctx context.Context, c service.Caller, id, reason string) (footage, error) {
	f, err := b.Service.Play(ctx, c, id, reason)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (b serviceBackend) Classes() []string {
	var names []string
	for _, c := range b.Config().Retention.Classes {
		names = append(names, c.Name)
	}
	return names
}

// Options tune the handler.
type Options struct {
	// SecureCookies marks the cookies Secure: set it when the console is
	// served over TLS (the cookies are also Secure on any request that
	// came over TLS).
	SecureCookies bool
	// LoginsPerMinute bounds the sign-ins one client address may start or
	// complete per minute (default 20).
	LoginsPerMinute int
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Handler is the console's web UI.
type Handler struct {
	b        backend
	cfg      *config.OIDC
	secret   string
	log      *slog.Logger
	opts     Options
	pages    map[string]*template.Template
	mux      *http.ServeMux
	sessions *sessions
	logins   *limiter
	routes   []route

	// The provider as its discovery document describes it, read once it
	// answers (provider).
	pmu      sync.Mutex
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// op is the provider's client configuration and ID token verifier.
type op struct {
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// provider reads the provider's discovery document the first time it is
// needed and keeps it.
func (h *Handler) provider(ctx context.Context) (op, error) {
	h.pmu.Lock()
	defer h.pmu.Unlock()
	if h.oauth != nil {
		return op{h.oauth, h.verifier}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, h.cfg.Issuer)
	if err != nil {
		return op{}, fmt.Errorf("oidc.issuer %s: read the provider's discovery document: %w", h.cfg.Issuer, err)
	}
	endpoint := p.Endpoint()
	// Most providers take the secret either way; some (and the test
	// provider) only in the form.
	endpoint.AuthStyle = oauth2.AuthStyleInParams
	h.oauth = &oauth2.Config{ClientID: h.cfg.ClientID, ClientSecret: h.secret, RedirectURL: h.cfg.RedirectURL, Endpoint: endpoint, Scopes: scopes(h.cfg.RolesClaim)}
	h.verifier = p.Verifier(&oidc.Config{ClientID: h.cfg.ClientID})
	return op{h.oauth, h.verifier}, nil
}

// New reads the client secret and the provider's discovery document, and
// returns the handler. It fails, naming the key, when the secret cannot be
// had; a provider that does not answer yet is asked again at each sign-in.
func New(ctx context.Context, svc *service.Service, cfg *config.OIDC, log *slog.Logger, opts Options) (*Handler, error) {
	return newHandler(ctx, serviceBackend{svc}, cfg, log, opts)
}

func newHandler(ctx context.Context, b backend, cfg *config.OIDC, log *slog.Logger, opts Options) (*Handler, error) {
	if cfg == nil {
		return nil, errors.New("console web UI: no oidc section in the configuration; people could not sign in")
	}
	secret, err := cfg.ClientSecret()
	if err != nil {
		return nil, err
	}
	if opts.LoginsPerMinute <= 0 {
		opts.LoginsPerMinute = 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ttl := cfg.SessionTTL.Duration
	if ttl <= 0 {
		ttl = config.DefaultSessionTTL
	}
	h := &Handler{
		b: b, cfg: cfg, log: log, opts: opts, secret: secret,
		sessions: newSessions(ttl, opts.Now),
		logins:   newLimiter(opts.LoginsPerMinute, time.Minute, opts.Now),
	}
	// A provider down when the console starts must not stop the rest of
	// the console (indexing, scrub): sign-in tries again when asked.
	if _, err := h.provider(ctx); err != nil {
		log.Warn("console: the identity provider cannot be reached yet; sign-in will try again", "issuer", cfg.Issuer, "err", err)
	}
	if h.pages, err = parsePages(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(webFS, "web/static")
	if err != nil {
		return nil, err
	}
	h.routes = h.table(web.Static(static))
	h.mux = http.NewServeMux()
	for _, rt := range h.routes {
		h.mux.Handle(rt.pattern(), h.guard(rt))
	}
	return h, nil
}

// ServeHTTP routes. The security headers (CSP and the rest) and
// /favicon.ico are the shared listener's (web.Handler), around this one.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// scopes asks for the ID token's profile and email, and for the groups
// scope when the roles come in the groups claim (the claim's usual scope;
// a provider that puts roles elsewhere sends them by its own mapping).
func scopes(claim string) []string {
	s := []string{oidc.ScopeOpenID, "profile", "email"}
	if claim == "groups" {
		s = append(s, "groups")
	}
	return s
}
