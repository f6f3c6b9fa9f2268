package dock

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/printable"
	"github.com/evidenced/evidenced/internal/service"
)

// States of a bay as /api/bays names them: stable words for programs; the
// page shows Label.
const (
	StateDocked         = "docked"
	StateCopying        = "copying"
	StateSafe           = "safe_to_undock"
	StateProblem        = "problem"
	StateNotInInventory = "not_in_inventory"
)

// BayView is one bay as /api/bays and the event stream carry it: a USB bay
// position or a watched folder, and the camera in it.
type BayView struct {
	// Bay is where the camera sits: the USB bay (bus-port path) or the
	// watched folder.
	Bay    string `json:"bay"`
	Camera string `json:"camera"`
	// AssignedTo is to whom the camera is issued; "" when the page is
	// configured to show only the camera, or the camera is not in the
	// inventory (always present: every bay has the contract's fields).
	AssignedTo   string `json:"assigned_to"`
	State        string `json:"state"`
	FilesDone    int    `json:"files_done"`
	FilesTotal   int    `json:"files_total"`
	BytesDone    int64  `json:"bytes_done"`
	BytesTotal   int64  `json:"bytes_total"`
	SafeToUndock bool   `json:"safe_to_undock"`
	Problem      string `json:"problem"`
	// Percent of the bytes done, whole: 100 only once safe to undock.
	Percent int `json:"percent"`
	// ETASeconds is the estimated time left while copying; null when
	// there is no estimate yet.
	ETASeconds *int64 `json:"eta_seconds"`
	// Label is the state in the plain words the page shows.
	Label string `json:"label"`
}

// BayDir and BayLeaf split Bay for the tile: a watched folder's path is
// long and only its last element tells two bays apart, so the page keeps
// that whole and cuts the directory before it from its start ("…/media/")
// when the tile is too narrow. A USB bay (no "/") is all leaf. dock.js
// splits the same way.
func (v BayView) BayDir() string {
	if i := strings.LastIndexByte(v.Bay, '/'); i > 0 && i < len(v.Bay)-1 {
		return v.Bay[:i+1]
	}
	return ""
}

// BayLeaf is Bay without BayDir.
func (v BayView) BayLeaf() string { return v.Bay[len(v.BayDir()):] }

// view turns the service's bays into what the page shows, ordered by bay
// so that tiles do not move as cameras come and go.
func view(bays []service.Bay, cfg *config.Config, opt config.DockPage, now time.Time) []BayView {
	out := make([]BayView, 0, len(bays))
	for _, b := range bays {
		// Serials, folder names and problems come from cameras: beyond
		// the HTML escaping of the page, control and direction-override
		// characters are made visible (printable), so a camera cannot
		// reorder or hide what the screen says.
		v := BayView{
			Bay: printable.Escape(b.Bay), Camera: printable.Escape(b.Camera), FilesDone: b.FilesDone, FilesTotal: b.Files,
			BytesDone: b.Done, BytesTotal: b.Bytes, Problem: printable.Escape(b.Problem),
		}
		if v.Bay == "" {
			v.Bay = printable.Escape(b.Folder)
		}
		cam, known := cfg.Camera(b.Camera)
		if known && opt.ShowAssignedTo {
			v.AssignedTo = printable.Escape(cam.AssignedTo)
		}
		switch b.State {
		case service.BayCopying:
			v.State = StateCopying
		case service.BaySafe:
			v.State, v.SafeToUndock = StateSafe, true
		case service.BayUnknown:
			v.State = StateNotInInventory
		case service.BayProblem:
			v.State = StateProblem
		default:
			v.State = StateDocked
		}
		v.Percent = percent(b)
		if left, ok := b.ETA(now); ok {
			s := int64(math.Ceil(left.Seconds()))
			v.ETASeconds = &s
		}
		v.Label = label(v)
		out = append(out, v)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Bay != out[j].Bay {
			return out[i].Bay < out[j].Bay
		}
		return out[i].Camera < out[j].Camera
	})
	return out
}

// percent is whole percent done, never 100 before the dock says safe: an
// officer must not read "100" and leave while the last file is verified.
func percent(b service.Bay) int {
	if b.State == service.BaySafe {
		return 100
	}
	if !b.HasProgress() || b.Bytes <= 0 {
		return 0
	}
	return min(99, int(math.Floor(b.Percent())))
}

// label is the state in plain words.
func label(v BayView) string {
	switch v.State {
	case StateCopying:
		s := fmt.Sprintf("copying %d %%", v.Percent)
		if v.ETASeconds != nil {
			s += " · " + eta(*v.ETASeconds)
		}
		return s
	case StateSafe:
		return "SAFE TO UNDOCK"
	case StateNotInInventory:
		return "not in inventory — call the evidence office"
	case StateProblem:
		if v.Problem == "" {
			return "problem — call the evidence office"
		}
		return "problem: " + v.Problem
	default:
		return "docked · waiting to copy"
	}
}

// eta says a time left the way a person would.
func eta(sec int64) string {
	switch {
	case sec < 60:
		return "less than a minute left"
	case sec < 3600:
		return fmt.Sprintf("about %d min left", (sec+59)/60)
	default:
		h, m := sec/3600, (sec%3600+59)/60
		if m == 60 {
			h, m = h+1, 0
		}
		return fmt.Sprintf("about %d h %d min left", h, m)
	}
}
