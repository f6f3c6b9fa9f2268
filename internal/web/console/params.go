package console

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/service"
	"github.com/evidenced/evidenced/internal/vault"
)

// A parameter error is answered 400 with its message: it says which
// parameter and what is wanted.
type paramError struct{ msg string }

func (e *paramError) Error() string { return e.msg }

func badParam(format string, a ...any) error { return &paramError{fmt.Sprintf(format, a...)} }

// Limits on what a request may ask.
const (
	maxText    = 256 // a name, serial, case or reason, as the ledger takes them
	maxReason  = 1024
	maxPage    = 1_000_000
	perPage    = 50
	maxExports = 100 // items in one court export from the web
	// maxRadius bounds a search by place: "near" is a street or a suburb;
	// a wider circle is a different question (and the facts index refuses
	// one much wider).
	maxRadius = 50_000
)

// checkID validates an item id as the vault names items (2-128 of a-z
// 0-9 _ -): anything else names no item and is not passed on.
func checkID(id string) error {
	if !vault.ValidID(id) {
		return badParam("item id %q: want 2-128 characters of a-z 0-9 _ -", clip(id))
	}
	return nil
}

// clip shortens what is quoted back in a message.
func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// text reads an optional free-text parameter: at most max bytes of valid
// UTF-8 without control characters.
func text(q url.Values, name string, max int) (string, error) {
	vs := q[name]
	if len(vs) > 1 {
		return "", badParam("%s: given %d times; give it once", name, len(vs))
	}
	if len(vs) == 0 {
		return "", nil
	}
	v := strings.TrimSpace(vs[0])
	switch {
	case len(v) > max:
		return "", badParam("%s: at most %d characters", name, max)
	case !utf8.ValidString(v):
		return "", badParam("%s: not valid UTF-8", name)
	case strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", badParam("%s: control characters are not allowed", name)
	}
	return v, nil
}

// when reads a date (YYYY-MM-DD, UTC) or an RFC 3339 time.
func when(q url.Values, name string) (time.Time, error) {
	v, err := text(q, name, 64)
	if err != nil || v == "" {
		return time.Time{}, err
	}
	for _, layout := range []string{"2006-01-02", time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, badParam("%s %q: want a date (2026-11-24) or an RFC 3339 time (2026-11-24T08:00:00Z)", name, clip(v))
}

// span reads since and until; an until given as a date includes that day.
func span(q url.Values) (since, until time.Time, err error) {
	if since, err = when(q, "since"); err != nil {
		return
	}
	if until, err = when(q, "until"); err != nil {
		return
	}
	if u := q.Get("until"); !until.IsZero() && len(strings.TrimSpace(u)) == len("2006-01-02") {
		until = until.Add(24 * time.Hour)
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		err = badParam("since %s is not before until %s", since.Format(time.RFC3339), until.Format(time.RFC3339))
	}
	return
}

func page(q url.Values) (int, error) {
	v, err := text(q, "page", 16)
	if err != nil || v == "" {
		return 1, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxPage {
		return 0, badParam("page %q: want a number from 1 to %d", clip(v), maxPage)
	}
	return n, nil
}

// search is a search as the form sends it.
type search struct {
	Officer, Vehicle, Camera, Host, Since, Until, Reason string
	States                                               []string
	Page                                                 int
	// Asked: the form was submitted (an empty form lists nothing and
	// records nothing).
	Asked bool
	// By is "plate" or "near" for a search of the sidecar facts (the plate
	// box, the near form), "" for one by the items' fields.
	By               string
	Plate            string
	Fuzzy            bool
	Lat, Lon, Radius string
	opts             service.FindOptions
}

// Search kinds (search.By).
const (
	byPlate = "plate"
	byNear  = "near"
)

var states = []custody.State{custody.StateVaulted, custody.StateUploaded, custody.StateVerified}

// parseSearch validates a search's parameters.
func parseSearch(q url.Values) (search, error) {
	var s search
	var err error
	for _, f := range []struct {
		name string
		v    *string
	}{{"officer", &s.Officer}, {"vehicle", &s.Vehicle}, {"camera", &s.Camera}, {"host", &s.Host}} {
		if *f.v, err = text(q, f.name, maxText); err != nil {
			return s, err
		}
	}
	if s.Reason, err = text(q, "reason", maxReason); err != nil {
		return s, err
	}
	if s.Officer != "" && s.Vehicle != "" {
		return s, badParam("officer and vehicle: a camera is issued to one of them; give one")
	}
	f := custody.Filter{Camera: s.Camera, AssignedTo: s.Officer + s.Vehicle}
	if f.Since, f.Until, err = span(q); err != nil {
		return s, err
	}
	s.Since, s.Until = q.Get("since"), q.Get("until")
	for _, v := range q["state"] {
		st := custody.State(v)
		ok := false
		for _, known := range states {
			ok = ok || st == known
		}
		if !ok {
			return s, badParam("state %q: want vaulted, uploaded or verified", clip(v))
		}
		f.States = append(f.States, st)
		s.States = append(s.States, v)
	}
	if s.Page, err = page(q); err != nil {
		return s, err
	}
	// The next page's cursor, checked by the service (a damaged or
	// altered one, or another search's, is a 400 with what to do).
	after, err := text(q, "after", 2048)
	if err != nil {
		return s, err
	}
	s.Asked = len(q) > 0
	s.opts = service.FindOptions{Filter: f, Reason: s.Reason, Host: s.Host, Asked: map[string]string{
		"officer": s.Officer, "vehicle": s.Vehicle, "camera": s.Camera, "since": s.Since, "until": s.Until,
		"state": strings.Join(s.States, " "), "via": "web"}, After: after}
	return s, parseFacts(q, &s)
}

// parseFacts reads the plate box (plate, fuzzy) or the near form (lat,
// lon, radius) into s: a search of the sidecar facts, bounded in time by
// since and until as at the command line. A form's field present but
// empty is a search without what it asks for, refused, not a search of
// everything.
func parseFacts(q url.Values, s *search) error {
	var err error
	_, plate := q["plate"]
	near := q.Has("lat") || q.Has("lon") || q.Has("radius")
	fuzzy, err := text(q, "fuzzy", 8)
	if err != nil {
		return err
	}
	switch fuzzy {
	case "":
	case "on", "1", "true":
		s.Fuzzy = true
	default:
		return badParam("fuzzy %q: want on or absent", clip(fuzzy))
	}
	switch {
	case plate && near:
		return badParam("plate and lat/lon/radius: a search is by plate or by place; give one")
	case s.Fuzzy && !plate:
		return badParam("fuzzy: needs a plate")
	case plate:
		if s.Plate, err = text(q, "plate", maxText); err != nil {
			return err
		}
		if s.Plate == "" {
			return badParam("plate: required; type the plate as written (CA 123-456)")
		}
		if err := service.CheckPlate(s.Plate); err != nil {
			return badParam("%s", strings.ToValidUTF8(err.Error(), "?"))
		}
		s.By, s.opts.Plate, s.opts.Fuzzy = byPlate, s.Plate, s.Fuzzy
		s.opts.Asked["plate"] = s.Plate
		if s.Fuzzy {
			s.opts.Asked["fuzzy"] = "true"
		}
	case near:
		var n service.NearOptions
		for _, c := range []struct {
			name   string
			raw    *string
			v      *float64
			lo, hi float64
			want   string
		}{
			{"lat", &s.Lat, &n.Lat, -90, 90, "decimal degrees from -90 to 90, south negative (-33.9249)"},
			{"lon", &s.Lon, &n.Lon, -180, 180, "decimal degrees from -180 to 180, west negative (18.4241)"},
			{"radius", &s.Radius, &n.Radius, 0, maxRadius, fmt.Sprintf("metres, more than 0 and at most %d", maxRadius)},
		} {
			if *c.raw, err = text(q, c.name, 32); err != nil {
				return err
			}
			v, perr := strconv.ParseFloat(*c.raw, 64)
			if *c.raw == "" || perr != nil || math.IsNaN(v) || v < c.lo || v > c.hi || (c.name == "radius" && v == 0) {
				return badParam("%s %q: want %s", c.name, clip(*c.raw), c.want)
			}
			*c.v = v
		}
		s.By, s.opts.Near = byNear, &n
		s.opts.Asked["near"] = s.Lat + "," + s.Lon
		s.opts.Asked["radius"] = s.Radius
	}
	return nil
}

// accessQuery is the access log's filter as the form sends it.
type accessQuery struct {
	Actor, Item, Action, Since, Until string
	Page                              int
	filter                            service.AccessFilter
}

func parseAccesses(q url.Values) (accessQuery, error) {
	var a accessQuery
	var err error
	if a.Actor, err = text(q, "actor", maxText); err != nil {
		return a, err
	}
	if a.Action, err = text(q, "action", 32); err != nil {
		return a, err
	}
	if a.Item, err = text(q, "item", 128); err != nil {
		return a, err
	}
	if a.Item != "" {
		if err := checkID(a.Item); err != nil {
			return a, err
		}
	}
	if a.filter.Since, a.filter.Until, err = span(q); err != nil {
		return a, err
	}
	if a.Page, err = page(q); err != nil {
		return a, err
	}
	a.Since, a.Until = q.Get("since"), q.Get("until")
	a.filter.Actor = a.Actor
	return a, nil
}

// keep is whether an access event passes the filters the service does
// not apply (item, action).
func (a accessQuery) keep(ev custody.Event) bool {
	return (a.Item == "" || ev.Item == a.Item) && (a.Action == "" || ev.Details["action"] == a.Action)
}

// reasonOf reads the reason a retrieval or change requires.
func reasonOf(form url.Values) (string, error) {
	r, err := text(form, "reason", maxReason)
	if err != nil {
		return "", err
	}
	if r == "" {
		return "", badParam("reason: required; it is recorded in the custody ledger with your name")
	}
	return r, nil
}

func isParamError(err error) bool {
	var p *paramError
	return errors.As(err, &p)
}
