package console

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/service"
)

// pageData is what every template gets.
type pageData struct {
	Title   string
	Message string
	Status  int
	User    *userView
	Data    any
}

// userView is the signed-in person as the layout shows them, with what
// their roles let the navigation offer.
type userView struct {
	Name, Roles, CSRF             string
	Read, Custody, Check, Auditor bool
}

func viewOf(s *session) *userView {
	if s == nil {
		return nil
	}
	return &userView{Name: s.name, Roles: s.roles.String(), CSRF: s.csrf,
		Read: s.roles&readers != 0, Custody: s.roles&custodians != 0, Check: s.roles&checkers != 0, Auditor: s.roles&auditors != 0}
}

var funcs = template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"bytes": func(n int64) string {
		switch {
		case n >= 1<<30:
			return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
		case n >= 1<<20:
			return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
		case n >= 1<<10:
			return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
		}
		return fmt.Sprintf("%d B", n)
	},
	"has": func(list []string, v string) bool { return slices.Contains(list, v) },
	"details": func(d map[string]string) string {
		keys := make([]string, 0, len(d))
		for k := range d {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var b strings.Builder
		for i, k := range keys {
			if i > 0 {
				b.WriteString(" · ")
			}
			b.WriteString(k + "=" + d[k])
		}
		return b.String()
	},
}

var pageNames = []string{"message", "search", "item", "play", "fleet", "verify", "accesses", "inventory"}

// parsePages parses each page with the layout around it.
func parsePages() (map[string]*template.Template, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(webFS, "web/layout.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range pageNames {
		t, err := template.Must(layout.Clone()).ParseFS(webFS, "web/"+n+".html")
		if err != nil {
			return nil, fmt.Errorf("page %s: %w", n, err)
		}
		out[n] = t
	}
	return out, nil
}

// render writes a page. A template error after the status went out can
// only be logged.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, s *session, d pageData) {
	d.User, d.Status = viewOf(s), status
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := h.pages[name].ExecuteTemplate(w, "layout.html", d); err != nil {
		h.log.Error("console: render page", "page", name, "path", r.URL.Path, "err", err)
	}
}

// fail answers an error: JSON for the API, a page otherwise.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, api bool, status int, msg string) {
	if api {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	h.render(w, r, status, "message", h.sessions.get(r), pageData{Title: http.StatusText(status), Message: msg})
}

// failErr answers a parameter's or the service's error (answerOf), as a
// page or JSON; a failure is logged with its details.
func (h *Handler) failErr(w http.ResponseWriter, r *http.Request, api bool, what string, err error) {
	status, msg := answerOf(what, err)
	if status == http.StatusInternalServerError {
		h.log.Error("console: "+what, "path", r.URL.Path, "err", err)
	}
	h.fail(w, r, api, status, msg)
}

// answerOf maps a parameter's or the service's error to an answer: the
// request was wrong (400), names nothing (404), must wait or raced another
// change (409), does not check out (500, said so), or failed (500, the
// details in the log only).
func answerOf(what string, err error) (int, string) {
	switch {
	case isParamError(err), errors.Is(err, service.ErrInvalid):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, service.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, service.ErrNotVerified):
		return http.StatusConflict, err.Error()
	case errors.Is(err, service.ErrInventoryConflict):
		return http.StatusConflict, "another publication of the inventory reached the store while yours was prepared; nothing was published: reload and try again (" + err.Error() + ")"
	case errors.Is(err, service.ErrIntegrity):
		return http.StatusInternalServerError, what + ": integrity failure: " + err.Error()
	}
	return http.StatusInternalServerError, what + " failed; the console's log says why"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// home sends each role where its work is.
func (h *Handler) home(w http.ResponseWriter, r *http.Request, s *session) {
	to := "/search"
	if s.roles&readers == 0 {
		to = "/accesses"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (h *Handler) apiMe(w http.ResponseWriter, _ *http.Request, s *session) {
	writeJSON(w, http.StatusOK, map[string]any{"actor": s.actor, "name": s.name, "roles": strings.Split(s.roles.String(), ","), "csrf": s.csrf})
}

// searchResult is one page of a search.
type searchResult struct {
	search
	// Items are the recordings found; after a search by plate or place
	// each carries the fact that matched it (Match).
	Items      []service.Found
	Total      int
	Prev, Next string
	// Cursor asks for the page after this one (the API's "next").
	Cursor          string
	AllStates       []custody.State
	From, To, Pages int
}

func (h *Handler) find(r *http.Request, s *session) (searchResult, error) {
	q, err := parseSearch(r.URL.Query())
	res := searchResult{search: q, AllStates: states}
	if err != nil || !q.Asked {
		return res, err
	}
	// The service (at a console, its index) reads the page only; the
	// total comes with it. The next page is asked for after this one's
	// cursor (read from where this page ends); a page by number, as the
	// previous link and a typed URL ask, is counted from the start.
	o := q.opts
	o.Limit, o.MaxScan = perPage, maxScan
	if o.After == "" {
		o.Offset = (q.Page - 1) * perPage
	}
	p, err := h.b.FindPage(r.Context(), caller(s, r), o)
	if err != nil {
		return res, err
	}
	res.Total, res.Cursor = p.Total, p.Next
	res.Pages = (p.Total + perPage - 1) / perPage
	res.Page = p.Offset/perPage + 1
	hi := p.Offset + len(p.Items)
	res.Items, res.From, res.To = p.Items, p.Offset+1, hi
	link := func(page int, after string) string {
		v := r.URL.Query()
		v.Set("page", strconv.Itoa(page))
		v.Del("after")
		if after != "" {
			v.Set("after", after)
		}
		return "/search?" + v.Encode()
	}
	if res.Page > 1 {
		res.Prev = link(res.Page-1, "")
	}
	if p.Next != "" {
		res.Next = link(res.Page+1, p.Next)
	} else if hi < p.Total {
		res.Next = link(res.Page+1, "")
	}
	return res, nil
}

// maxScan bounds what one search at the console may read when no index
// answers it (a state including verified without an officer, camera or
// time; a time range alone): 50,000 recordings, under a second of CPU;
// past it the person is asked to narrow the search.
const maxScan = 50_000

func (h *Handler) search(w http.ResponseWriter, r *http.Request, s *session) {
	res, err := h.find(r, s)
	if err != nil {
		h.failErr(w, r, false, "search", err)
		return
	}
	h.render(w, r, http.StatusOK, "search", s, pageData{Title: "Search", Data: res})
}

func (h *Handler) apiItems(w http.ResponseWriter, r *http.Request, s *session) {
	res, err := h.find(r, s)
	if err != nil {
		h.failErr(w, r, true, "search", err)
		return
	}
	if res.Items == nil {
		res.Items = []service.Found{}
	}
	writeItems(w, itemsAnswer{Items: res.Items, Next: res.Cursor, Page: res.Page, PerPage: perPage, Total: res.Total})
}

// itemsAnswer is GET /api/items's answer: one page, the cursor of the
// next ("next": pass it as after=), the page's number and size, and the
// total. A struct, not a map: encoding a map sorts its keys and boxes
// every value, for each of the console's searches.
type itemsAnswer struct {
	Items   []service.Found `json:"items"`
	Next    string          `json:"next,omitempty"`
	Page    int             `json:"page"`
	PerPage int             `json:"per_page"`
	Total   int             `json:"total"`
}

// itemPage is the item page's data.
type itemPage struct {
	Item    custody.Item
	Others  []custody.Item // the same item as further hosts recorded it
	Events  []custody.Event
	Holds   []string
	Classes []string
	Viewed  bool
}

func (h *Handler) itemView(r *http.Request, s *session) (itemPage, error) {
	id := r.PathValue("id")
	if err := checkID(id); err != nil {
		return itemPage{}, err
	}
	v, err := h.b.View(r.Context(), caller(s, r), id, "")
	if err != nil {
		return itemPage{}, err
	}
	if len(v.Items) == 0 {
		return itemPage{}, fmt.Errorf("item %s: the service returned its custody but not the item", id)
	}
	_, viewed := s.viewing(id)
	return itemPage{Item: v.Items[0], Others: v.Items[1:], Events: v.Events, Holds: v.Holds, Classes: h.b.Classes(), Viewed: viewed}, nil
}

func (h *Handler) item(w http.ResponseWriter, r *http.Request, s *session) {
	p, err := h.itemView(r, s)
	if err != nil {
		h.failErr(w, r, false, "view the item", err)
		return
	}
	h.render(w, r, http.StatusOK, "item", s, pageData{Title: "Item " + p.Item.ID, Data: p})
}

func (h *Handler) apiItem(w http.ResponseWriter, r *http.Request, s *session) {
	p, err := h.itemView(r, s)
	if err != nil {
		h.failErr(w, r, true, "view the item", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"item": p.Item, "hosts": append([]custody.Item{p.Item}, p.Others...), "custody": p.Events, "holds": p.Holds})
}

// view is POST /items/{id}/view: the reason for watching the item, asked
// once per item and session; the viewing is on record (and anchored)
// before the player is shown or any byte is served.
func (h *Handler) view(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	reason, err := reasonOf(r.PostForm)
	if err == nil {
		err = checkID(id)
	}
	if err != nil {
		h.failErr(w, r, false, "play", err)
		return
	}
	if _, ok := s.viewing(id); !ok {
		f, err := h.b.Play(r.Context(), caller(s, r), id, reason)
		if err != nil {
			h.failErr(w, r, false, "play", err)
			return
		}
		s.remember(id, viewing{f: f, reason: reason})
	}
	http.Redirect(w, r, "/items/"+id+"/play", http.StatusSeeOther)
}

type playPage struct {
	ID     string
	Item   custody.Item
	Reason string
	Viewed bool
}

func (h *Handler) play(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if err := checkID(id); err != nil {
		h.failErr(w, r, false, "play", err)
		return
	}
	v, ok := s.viewing(id)
	p := playPage{ID: id, Viewed: ok, Reason: v.reason}
	if ok {
		p.Item = v.f.Item()
	}
	h.render(w, r, http.StatusOK, "play", s, pageData{Title: "Play " + id, Data: p})
}

// contentType is the recording's media type from its file name (Go's
// table lacks the video types, and nosniff forbids guessing).
func contentType(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".mp4", ".m4v":
		return "video/mp4"
	case ".mov":
		return "video/quicktime"
	case ".webm":
		return "video/webm"
	case ".wav":
		return "audio/wav"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	}
	return "application/octet-stream"
}

// media serves the recording to the player, in the ranges it asks for,
// read by the console from the store: the browser gets bytes, never a
// store URL or credential. Only a viewing this session put on record
// is served (428 otherwise: ask for the reason first).
func (h *Handler) media(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if err := checkID(id); err != nil {
		h.failErr(w, r, false, "play", err)
		return
	}
	v, ok := s.viewing(id)
	if !ok {
		h.fail(w, r, false, http.StatusPreconditionRequired, "say why you view this item first (the play page asks)")
		return
	}
	it := v.f.Item()
	w.Header().Set("Content-Type", contentType(it.SourcePath))
	w.Header().Set("Cache-Control", "private, no-store")
	w.Header().Set("Content-Disposition", "inline")
	rs := &rangeReader{ctx: r.Context(), f: v.f, size: it.Size}
	defer rs.Close()
	http.ServeContent(w, r, "", time.Time{}, rs)
	if rs.err != nil {
		h.log.Warn("console: play: read from the store", "item", id, "actor", s.actor, "err", rs.err)
	}
}

// download is POST /items/{id}/download: service.Get records the
// retrieval and anchors it before the first byte; the file is hashed as it
// streams, and a mismatch at the end breaks the connection so the browser
// keeps no complete-looking file.
func (h *Handler) download(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	reason, err := reasonOf(r.PostForm)
	if err == nil {
		err = checkID(id)
	}
	if err != nil {
		h.failErr(w, r, false, "download", err)
		return
	}
	started := false
	err = h.b.Get(r.Context(), caller(s, r), service.GetOptions{ID: id, Reason: reason, Out: "web download", InDaemon: true}, w, func(it custody.Item) {
		started = true
		name := it.ID + path.Ext(it.SourcePath)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
		w.Header().Set("Content-Length", strconv.FormatInt(it.Size, 10))
		w.Header().Set("X-Evidence-SHA256", it.SHA256)
	})
	switch {
	case err == nil:
	case !started:
		h.failErr(w, r, false, "download", err)
	default:
		h.log.Error("console: download failed while streaming", "item", id, "actor", s.actor, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// attachment sets download headers on its first write: until the service
// writes, an error can still be answered as a page.
type attachment struct {
	w       http.ResponseWriter
	name    string
	written bool
}

func (a *attachment) Write(p []byte) (int, error) {
	if !a.written {
		a.written = true
		a.w.Header().Set("Content-Type", "application/x-tar")
		a.w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": a.name}))
	}
	return a.w.Write(p)
}

// export is POST /export: the court export package (service.Export's tar)
// as a download. The web console runs on a console, whose package proves
// the custody and carries no footage (the recording is downloaded on its
// own and checked against the SHA-256 the package proves).
func (h *Handler) export(w http.ResponseWriter, r *http.Request, s *session) {
	reason, err := reasonOf(r.PostForm)
	ids := r.PostForm["id"]
	if err == nil && (len(ids) == 0 || len(ids) > maxExports) {
		err = badParam("id: give 1 to %d items", maxExports)
	}
	for _, id := range ids {
		if err == nil {
			err = checkID(id)
		}
	}
	if err != nil {
		h.failErr(w, r, false, "export", err)
		return
	}
	a := &attachment{w: w, name: "evidence-export-" + time.Now().UTC().Format("20060102T150405Z") + ".tar"}
	_, err = h.b.Export(r.Context(), caller(s, r), service.ExportOptions{IDs: ids, Reason: reason, Out: "web download", InDaemon: true}, a)
	switch {
	case err == nil:
	case !a.written:
		h.failErr(w, r, false, "export", err)
	default:
		h.log.Error("console: export failed while streaming", "actor", s.actor, "err", err)
		panic(http.ErrAbortHandler)
	}
}

func (h *Handler) holdOrRelease(w http.ResponseWriter, r *http.Request, s *session, on bool) {
	id := r.PathValue("id")
	what := map[bool]string{true: "hold", false: "release"}[on]
	reason, err := reasonOf(r.PostForm)
	var kase string
	if err == nil {
		kase, err = text(r.PostForm, "case", maxText)
	}
	if err == nil && kase == "" {
		err = badParam("case: required")
	}
	if err == nil {
		err = checkID(id)
	}
	if err != nil {
		h.failErr(w, r, false, what, err)
		return
	}
	o := service.HoldOptions{ID: id, Case: kase, Reason: reason}
	var res service.HoldResult
	if on {
		res, err = h.b.Hold(r.Context(), caller(s, r), o)
	} else {
		res, err = h.b.Release(r.Context(), caller(s, r), o)
	}
	if err != nil {
		h.failErr(w, r, false, what, err)
		return
	}
	msg := fmt.Sprintf("Item %s: held by %s.", id, strings.Join(res.HeldBy, ", "))
	if !res.On() {
		msg = fmt.Sprintf("Item %s: no case holds it now.", id)
	}
	h.done(w, r, s, id, msg)
}

func (h *Handler) hold(w http.ResponseWriter, r *http.Request, s *session) {
	h.holdOrRelease(w, r, s, true)
}
func (h *Handler) release(w http.ResponseWriter, r *http.Request, s *session) {
	h.holdOrRelease(w, r, s, false)
}

func (h *Handler) classify(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	reason, err := reasonOf(r.PostForm)
	var class string
	if err == nil {
		class, err = text(r.PostForm, "class", maxText)
	}
	if err == nil && !slices.Contains(h.b.Classes(), class) {
		err = badParam("class %q: not one of the configured retention classes", clip(class))
	}
	if err == nil {
		err = checkID(id)
	}
	if err != nil {
		h.failErr(w, r, false, "classify", err)
		return
	}
	res, err := h.b.Classify(r.Context(), caller(s, r), service.ClassifyOptions{ID: id, Class: class, Reason: reason})
	if err != nil {
		h.failErr(w, r, false, "classify", err)
		return
	}
	h.done(w, r, s, id, fmt.Sprintf("Item %s: class %s (was %s), retained until %s.", id, res.Class, res.OldClass, res.Until.UTC().Format(time.RFC3339)))
}

// done shows what a change did, with the way back to the item.
func (h *Handler) done(w http.ResponseWriter, r *http.Request, s *session, id, msg string) {
	h.render(w, r, http.StatusOK, "message", s, pageData{Title: "Done", Message: msg, Data: "/items/" + id})
}

func (h *Handler) fleetHealth(r *http.Request, s *session) (service.FleetHealth, error) {
	return h.b.Fleet(r.Context(), caller(s, r), service.FleetOptions{})
}

func (h *Handler) fleet(w http.ResponseWriter, r *http.Request, s *session) {
	f, err := h.fleetHealth(r, s)
	if err != nil {
		h.failErr(w, r, false, "fleet", err)
		return
	}
	h.render(w, r, http.StatusOK, "fleet", s, pageData{Title: "Fleet health", Data: f})
}

// fleetClear lifts a dock host's broken or withheld flag (the CLI's
// `fleet clear HOST --reason TEXT`): the service re-checks the host's
// history and refuses while it does not verify.
func (h *Handler) fleetClear(w http.ResponseWriter, r *http.Request, s *session) {
	reason, err := reasonOf(r.PostForm)
	var host string
	if err == nil {
		host, err = text(r.PostForm, "host", maxText)
	}
	if err == nil && host == "" {
		err = badParam("host: required")
	}
	if err != nil {
		h.failErr(w, r, false, "fleet clear", err)
		return
	}
	res, err := h.b.ClearHost(r.Context(), caller(s, r), service.ClearHostOptions{Host: host, Reason: reason})
	if errors.Is(err, service.ErrIntegrity) {
		// The history still does not verify: the flag stays, and why is
		// the custodian's to read, not a fault of the console.
		h.fail(w, r, false, http.StatusConflict, "not cleared: "+err.Error())
		return
	}
	if err != nil {
		h.failErr(w, r, false, "fleet clear", err)
		return
	}
	h.render(w, r, http.StatusOK, "message", s, pageData{Title: "Done", Data: "/fleet",
		Message: fmt.Sprintf("%s cleared: its anchored history verifies up to checkpoint %d; recorded as HOST_CLEARED.", res.Host, res.Checkpoint)})
}

func (h *Handler) apiFleet(w http.ResponseWriter, r *http.Request, s *session) {
	f, err := h.fleetHealth(r, s)
	if err != nil {
		h.failErr(w, r, true, "fleet", err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (h *Handler) verifyForm(w http.ResponseWriter, r *http.Request, s *session) {
	h.render(w, r, http.StatusOK, "verify", s, pageData{Title: "Verify"})
}

func (h *Handler) verify(w http.ResponseWriter, r *http.Request, s *session) {
	reason, err := text(r.PostForm, "reason", maxReason)
	if err != nil {
		h.failErr(w, r, false, "verify", err)
		return
	}
	rep, err := h.b.Verify(r.Context(), caller(s, r), service.VerifyOptions{Reason: reason})
	if err != nil && rep.Events == 0 {
		h.failErr(w, r, false, "verify", err)
		return
	}
	h.render(w, r, http.StatusOK, "verify", s, pageData{Title: "Verify", Data: rep})
}

type accessPage struct {
	accessQuery
	Events     []custody.Event
	Total      int
	Prev, Next string
	CSV        string
}

func (h *Handler) accessList(r *http.Request, s *session) (accessQuery, []custody.Event, error) {
	q, err := parseAccesses(r.URL.Query())
	if err != nil {
		return q, nil, err
	}
	evs, err := h.b.Accesses(r.Context(), caller(s, r), q.filter)
	if err != nil {
		return q, nil, err
	}
	evs = slices.DeleteFunc(evs, func(ev custody.Event) bool { return !q.keep(ev) })
	slices.Reverse(evs) // newest first
	return q, evs, nil
}

func (h *Handler) accesses(w http.ResponseWriter, r *http.Request, s *session) {
	q, evs, err := h.accessList(r, s)
	if err != nil {
		h.failErr(w, r, false, "access log", err)
		return
	}
	p := accessPage{accessQuery: q, Total: len(evs)}
	lo := min((q.Page-1)*perPage, len(evs))
	hi := min(lo+perPage, len(evs))
	p.Events = evs[lo:hi]
	v := r.URL.Query()
	v.Del("page")
	p.CSV = "/accesses.csv?" + v.Encode()
	if q.Page > 1 {
		v.Set("page", strconv.Itoa(q.Page-1))
		p.Prev = "/accesses?" + v.Encode()
	}
	if hi < len(evs) {
		v.Set("page", strconv.Itoa(q.Page+1))
		p.Next = "/accesses?" + v.Encode()
	}
	h.render(w, r, http.StatusOK, "accesses", s, pageData{Title: "Access log", Data: p})
}

// csvColumns are the access log's CSV columns.
var csvColumns = []string{"seq", "at", "host", "actor", "on_behalf_of", "peer", "action", "item", "camera", "reason", "outcome", "error"}

func (h *Handler) accessesCSV(w http.ResponseWriter, r *http.Request, s *session) {
	_, evs, err := h.accessList(r, s)
	if err != nil {
		h.failErr(w, r, false, "access log", err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": "accesses.csv"}))
	writeAccessCSV(w, evs)
}

func writeAccessCSV(w io.Writer, evs []custody.Event) {
	cw := csv.NewWriter(w)
	_ = cw.Write(csvColumns)
	for _, ev := range evs {
		d := ev.Details
		_ = cw.Write([]string{strconv.FormatUint(ev.Seq, 10), ev.At.UTC().Format(time.RFC3339Nano), cell(ev.Host), cell(ev.Actor),
			cell(d["on_behalf_of"]), cell(d["peer"]), cell(d["action"]), cell(ev.Item), cell(ev.Camera), cell(d["reason"]), cell(d["outcome"]), cell(d["error"])})
	}
	cw.Flush()
}

// cell keeps a spreadsheet from reading a value as a formula (a reason
// typed as "=HYPERLINK(…)" stays text).
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (h *Handler) apiAccesses(w http.ResponseWriter, r *http.Request, s *session) {
	_, evs, err := h.accessList(r, s)
	if err != nil {
		h.failErr(w, r, true, "access log", err)
		return
	}
	if evs == nil {
		evs = []custody.Event{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"accesses": evs})
}
