package console

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/service"
)

// The Inventory page: the camera inventory this console publishes to its
// dock hosts, as the store holds it (service.ShowInventory, the CLI's
// `inventory show`), and for custodians the forms that hand a camera to
// someone else or retire it (service.AssignInventory and RetireInventory,
// the CLI's `inventory assign` and `inventory retire`) or upload a whole
// file (`inventory import`). Each edit is the
// next signed version in the store and an INVENTORY_PUBLISHED record in
// the console's ledger naming the signed-in person; the handlers only read
// the form and show the outcome.

// inventoryPage is the Inventory page's data.
type inventoryPage struct {
	// View is the document in force; nil when none could be shown (None
	// or Error says why).
	View    *service.InventoryView
	Cameras []inventoryRow
	None    string
	// Done says what the person's last edit published; Error why it was
	// not (the form's values are kept in Form to correct them).
	Done, Error string
	Form        inventoryForm
}

// inventoryRow is one camera as the page shows it: who holds it now (the
// assignment in force at the time of the page, which may differ from
// assigned_to while a hand-over is dated in the future).
type inventoryRow struct {
	config.InventoryCamera
	HolderNow  string
	RetiredNow bool
}

// inventoryForm is an edit as posted.
type inventoryForm struct {
	Action, Serial, To, Effective string
}

// inventory is GET /inventory.
func (h *Handler) inventory(w http.ResponseWriter, r *http.Request, s *session) {
	p, status := h.inventoryView(r)
	if n, err := strconv.ParseUint(r.URL.Query().Get("published"), 10, 64); err == nil && p.View != nil && p.View.Version == n {
		// After an edit (see inventoryEdit): said only when the version
		// shown is the one published, so a crafted link claims nothing.
		p.Done = fmt.Sprintf("Version %d published; the dock hosts take it at their next poll.", n)
	}
	h.render(w, r, status, "inventory", s, pageData{Title: "Inventory", Data: p})
}

// inventoryView reads the document in force for the page. None published
// is said on the page, not answered as an error: it is the state of a new
// console. status is the page's when it shows no edit's outcome.
func (h *Handler) inventoryView(r *http.Request) (p inventoryPage, status int) {
	v, err := h.b.ShowInventory(r.Context())
	switch {
	case errors.Is(err, service.ErrNotFound):
		p.None = err.Error()
		return p, http.StatusOK
	case err != nil:
		status, p.Error = answerOf("read the inventory", err)
		if status == http.StatusInternalServerError {
			h.log.Error("console: read the inventory", "path", r.URL.Path, "err", err)
		}
		return p, status
	}
	p.View = &v
	now := h.opts.Now()
	for _, c := range v.Cameras {
		who, _ := c.AssignedAt(now)
		p.Cameras = append(p.Cameras, inventoryRow{InventoryCamera: c, HolderNow: who, RetiredNow: c.RetiredAt(now)})
	}
	return p, http.StatusOK
}

func (h *Handler) inventoryAssign(w http.ResponseWriter, r *http.Request, s *session) {
	h.inventoryEdit(w, r, s, "assign")
}

func (h *Handler) inventoryRetire(w http.ResponseWriter, r *http.Request, s *session) {
	h.inventoryEdit(w, r, s, "retire")
}

// inventoryEdit is POST /inventory/assign and /inventory/retire: the form
// read, the service's operation run under the signed-in person's name,
// then the page again (inventoryDone). An edit the
// service refuses (an unknown serial, an effective time not after the last
// entry, a retired camera, another publication meanwhile) is shown on the
// page with the form as posted, answered 400 or 409: the person's to
// correct, never a 500.
func (h *Handler) inventoryEdit(w http.ResponseWriter, r *http.Request, s *session, action string) {
	f := inventoryForm{Action: action}
	serial, err := text(r.PostForm, "serial", maxText)
	f.Serial = serial
	var to string
	if err == nil && action == "assign" {
		to, err = text(r.PostForm, "to", maxText)
		f.To = to
	}
	var effective time.Time
	if err == nil {
		f.Effective = r.PostForm.Get("effective")
		effective, err = when(r.PostForm, "effective")
	}
	switch {
	case err != nil:
	case serial == "":
		err = badParam("serial: required")
	case action == "assign" && to == "":
		err = badParam("to: required (who the camera is handed to)")
	}
	var pub service.InventoryPublication
	if err == nil {
		if action == "assign" {
			pub, err = h.b.AssignInventory(r.Context(), caller(s, r), serial, to, effective)
		} else {
			pub, err = h.b.RetireInventory(r.Context(), caller(s, r), serial, effective)
		}
	}
	h.inventoryDone(w, r, s, f, pub, err)
}

// maxUpload bounds an uploaded inventory file: 450 cameras with their
// histories are ~50 KiB. The request around it is bounded by maxForm.
const maxUpload = 512 << 10

// maxMessage bounds what an error shows on the page.
const maxMessage = 2048

// inventoryImport is POST /inventory/import: a CSV, YAML or JSON file
// uploaded (multipart, at most maxUpload), merged into the version in
// force and published as the next one, as `inventory import FILE` does
// (service.ImportInventoryData: histories, retirements and the cameras the
// file leaves out are kept);
// the ledger records it as "upload:" and the file's name.
func (h *Handler) inventoryImport(w http.ResponseWriter, r *http.Request, s *session) {
	f := inventoryForm{Action: "import"}
	name, data, err := upload(r, "file", maxUpload)
	var pub service.InventoryPublication
	if err == nil {
		pub, err = h.b.ImportInventoryData(r.Context(), caller(s, r), "upload:"+name, data)
	}
	h.inventoryDone(w, r, s, f, pub, err)
}

// upload reads the one file posted in field: its base name (checked as
// text) and its contents, at most max bytes.
func upload(r *http.Request, field string, max int64) (string, []byte, error) {
	if r.MultipartForm == nil || len(r.MultipartForm.File[field]) != 1 {
		return "", nil, badParam("%s: choose one file to upload", field)
	}
	fh := r.MultipartForm.File[field][0]
	name, err := text(url.Values{"file name": {path.Base(fh.Filename)}}, "file name", maxText)
	if err != nil {
		return "", nil, err
	}
	rd, err := fh.Open()
	if err != nil {
		return "", nil, fmt.Errorf("open the uploaded %s: %w", clip(name), err)
	}
	defer rd.Close()
	data, err := io.ReadAll(io.LimitReader(rd, max+1))
	switch {
	case err != nil:
		return "", nil, fmt.Errorf("read the uploaded %s: %w", clip(name), err)
	case int64(len(data)) > max:
		return "", nil, badParam("%s: %s is larger than %d KiB", field, clip(name), max>>10)
	}
	return name, data, nil
}

// inventoryDone answers an edit: the page again after a publication (303,
// so a reload does not post twice), else the page with what went wrong.
func (h *Handler) inventoryDone(w http.ResponseWriter, r *http.Request, s *session, f inventoryForm, pub service.InventoryPublication, err error) {
	action := f.Action
	if err != nil {
		status, msg := answerOf(action, err)
		if len(msg) > maxMessage {
			// A file's parse error may quote a line of it.
			msg = strings.ToValidUTF8(msg[:maxMessage], "") + "…"
		}
		if status == http.StatusInternalServerError {
			h.log.Error("console: inventory "+action, "actor", s.actor, "err", err)
		}
		p, _ := h.inventoryView(r)
		p.Error, p.Form = msg, f
		h.render(w, r, status, "inventory", s, pageData{Title: "Inventory", Data: p})
		return
	}
	http.Redirect(w, r, "/inventory?published="+strconv.FormatUint(pub.Version, 10), http.StatusSeeOther)
}
