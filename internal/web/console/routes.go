package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/evidenced/evidenced/internal/service"
)

// Role is what a signed-in person may do; a person may hold several.
type Role uint8

// The console's roles (config.OIDCRoles maps the provider's groups to them).
const (
	// Investigator searches, views, plays and downloads (with a reason),
	// and reads the camera inventory.
	Investigator Role = 1 << iota
	// Custodian does what an investigator does, and verifies, holds and
	// releases, classifies, exports, watches the fleet's health and edits
	// the camera inventory (assign, retire).
	Custodian
	// Auditor reads the access log and verifies; nothing else.
	Auditor
)

// roleNames name the roles as the configuration and the pages do.
var roleNames = []struct {
	Role Role
	Name string
}{{Investigator, "investigator"}, {Custodian, "custodian"}, {Auditor, "auditor"}}

// String lists the roles held ("investigator,custodian").
func (r Role) String() string {
	var names []string
	for _, n := range roleNames {
		if r&n.Role != 0 {
			names = append(names, n.Name)
		}
	}
	return strings.Join(names, ",")
}

// maxForm bounds a form's body: reasons, cases and item ids.
const maxForm = 1 << 20

// Anyone admits every signed-in person, whatever their role.
const anyone = Investigator | Custodian | Auditor

// Who a route admits. Authorization is checked here, once, for every
// route: a handler runs only for a person holding one of its roles.
const (
	readers    = Investigator | Custodian // search, view, play, download, the inventory
	custodians = Custodian
	checkers   = Custodian | Auditor // verify
	auditors   = Auditor             // the access log
)

// route is one entry of the console's route table: the only place a path
// is registered, so that the route × role test walks every one.
type route struct {
	method, path string
	// public routes need no session (sign-in, static files); allow is
	// then unused.
	public bool
	allow  Role
	// api routes answer JSON, and 401 without a session; pages redirect
	// to the provider to sign in.
	api  bool
	page func(w http.ResponseWriter, r *http.Request, s *session)
	file http.Handler // public only
}

func (rt route) pattern() string { return rt.method + " " + rt.path }

// table is the console's route table.
func (h *Handler) table(static http.Handler) []route {
	pub := func(method, path string, f http.HandlerFunc) route {
		return route{method: method, path: path, public: true, file: f}
	}
	pg := func(method, path string, allow Role, f func(http.ResponseWriter, *http.Request, *session)) route {
		return route{method: method, path: path, allow: allow, page: f}
	}
	api := func(path string, allow Role, f func(http.ResponseWriter, *http.Request, *session)) route {
		return route{method: http.MethodGet, path: path, allow: allow, api: true, page: f}
	}
	return []route{
		pub("GET", "/auth/login", h.login),
		pub("GET", "/auth/callback", h.callback),
		pub("GET", "/auth/signed-out", h.signedOut),
		{method: "GET", path: "/static/", public: true, file: http.StripPrefix("/static/", static)},

		pg("GET", "/{$}", anyone, h.home),
		pg("POST", "/auth/logout", anyone, h.logout),
		api("/api/me", anyone, h.apiMe),

		pg("GET", "/search", readers, h.search),
		api("/api/items", readers, h.apiItems),
		pg("GET", "/items/{id}", readers, h.item),
		api("/api/items/{id}", readers, h.apiItem),
		pg("POST", "/items/{id}/view", readers, h.view),
		pg("GET", "/items/{id}/play", readers, h.play),
		pg("GET", "/items/{id}/media", readers, h.media),
		pg("POST", "/items/{id}/download", readers, h.download),

		pg("POST", "/items/{id}/hold", custodians, h.hold),
		pg("POST", "/items/{id}/release", custodians, h.release),
		pg("POST", "/items/{id}/classify", custodians, h.classify),
		pg("POST", "/export", custodians, h.export),
		pg("GET", "/fleet", custodians, h.fleet),
		api("/api/fleet", custodians, h.apiFleet),
		pg("POST", "/fleet/clear", custodians, h.fleetClear),

		// The inventory, as `inventory show` shows it (a read right, which
		// the web gives the roles that search and view); only custodians
		// hand cameras over, retire them or import a whole file.
		pg("GET", "/inventory", readers, h.inventory),
		pg("POST", "/inventory/assign", custodians, h.inventoryAssign),
		pg("POST", "/inventory/retire", custodians, h.inventoryRetire),
		pg("POST", "/inventory/import", custodians, h.inventoryImport),

		pg("GET", "/verify", checkers, h.verifyForm),
		pg("POST", "/verify", checkers, h.verify),

		pg("GET", "/accesses", auditors, h.accesses),
		pg("GET", "/accesses.csv", auditors, h.accessesCSV),
		api("/api/accesses", auditors, h.apiAccesses),
	}
}

// guard runs a route's checks in order: a session (else sign in: the
// provider for a page, 401 for the API), a role the route admits (else
// 403, recorded nowhere but the log: nothing was shown), and for anything
// but GET and HEAD the session's CSRF token (else 403).
func (h *Handler) guard(rt route) http.Handler {
	if rt.public {
		return rt.file
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		s := h.sessions.get(r)
		if s == nil {
			if rt.api || r.Method != http.MethodGet {
				h.fail(w, r, rt.api, http.StatusUnauthorized, "sign in first")
				return
			}
			h.startLogin(w, r, r.URL.RequestURI())
			return
		}
		if s.roles&rt.allow == 0 {
			h.log.Warn("console: refused by role", "actor", s.actor, "roles", s.roles.String(), "route", rt.pattern())
			h.fail(w, r, rt.api, http.StatusForbidden, "your role ("+s.roles.String()+") may not do this")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseMultipartForm(maxForm); err != nil && !errors.Is(err, http.ErrNotMultipart) {
				h.fail(w, r, rt.api, http.StatusBadRequest, "the form could not be read: "+err.Error())
				return
			}
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !s.csrfOK(r) {
			h.log.Warn("console: refused without a valid CSRF token", "actor", s.actor, "route", rt.pattern())
			h.fail(w, r, rt.api, http.StatusForbidden, "the form is stale or was not sent by this console (no valid CSRF token); reload the page and try again")
			return
		}
		rt.page(w, r, s)
	})
}

// caller is the signed-in person as the custody records name them: the
// actor is who signed in at the provider, the peer where they came from.
func caller(s *session, r *http.Request) service.Caller {
	return service.Caller{Actor: s.actor, Peer: "web:" + r.RemoteAddr}
}
