package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ANPR reasons.
const (
	ReasonBadHeader  Reason = "bad_header" // the CSV header lacks a required column
	ReasonNoHeader   Reason = "no_header"  // a line after a header that could not be used
	ReasonBadCSV     Reason = "bad_csv"    // unbalanced quotes, wrong number of fields
	ReasonBadJSON    Reason = "bad_json"   // not one JSON object of the documented fields
	ReasonBadUTF8    Reason = "bad_utf8"   // the line is not UTF-8
	ReasonBadCrop    Reason = "bad_crop"   // crop name absolute, with "..", or not clean
	ReasonBadCamera  Reason = "bad_camera" // camera missing or not a short printable name
	ReasonBadRegion  Reason = "bad_region" // region not a short code of letters, digits, '-'
	ReasonBadConf    Reason = "bad_confidence"
	ReasonBadHeading Reason = "bad_heading"
)

// ANPRFormat is the encoding of an ANPR read log (docs/ANPR-FORMAT.md).
type ANPRFormat int

// The ANPR encodings.
const (
	ANPRCSV   ANPRFormat = iota // CSV with a header line
	ANPRJSONL                   // one JSON object per line
)

// ANPR parses the project's ANPR read log (docs/ANPR-FORMAT.md) in either
// encoding. One line is one read; a read whose plate cannot be normalised (it
// has non-ASCII letters, say) is still emitted, with Plate empty and the
// reason in PlateIssue and in Summary.Flags. A position of exactly 0°, 0° is
// dropped from the read (flagged null_island) rather than trusted.
type ANPR struct {
	Format ANPRFormat
}

// anprMaxLine caps one read: the documented fields fit in a few hundred bytes.
const anprMaxLine = 4096

// Name implements Parser.
func (p *ANPR) Name() string {
	if p.Format == ANPRJSONL {
		return "anpr-jsonl"
	}
	return "anpr-csv"
}

// Version implements Parser.
func (*ANPR) Version() string { return "1" }

// anprRequired are the columns a CSV header must have.
var anprRequired = []string{"time", "plate", "confidence", "camera"}

// anprFields is one read before validation, as text, whatever the encoding.
type anprFields struct {
	time, plate, confidence, region, lat, lon, heading, camera, crop string
}

// Parse implements Parser.
func (p *ANPR) Parse(ctx context.Context, in Input, emit Emit) (sum Summary, err error) {
	sum = newSummary(p, in)
	var cols *csvColumns // nil until the CSV header
	headerBad := false
	err = eachLine(ctx, in.R, anprMaxLine, &sum, func(ln textLine) error {
		if ln.TooLong {
			sum.reject(ReasonLineTooLong)
			return nil
		}
		text := ln.Text
		if ln.Line == 1 {
			text = bytes.TrimPrefix(text, []byte("\xef\xbb\xbf")) // a BOM from spreadsheet exports
		}
		if t := bytes.TrimSpace(text); len(t) == 0 || t[0] == '#' {
			sum.Ignored++
			return nil
		}
		if !utf8.Valid(text) {
			sum.reject(ReasonBadUTF8)
			return nil
		}
		var f anprFields
		var reason Reason
		switch {
		case p.Format == ANPRJSONL:
			f, reason = jsonFields(text)
		case headerBad:
			reason = ReasonNoHeader
		case cols == nil:
			if cols, reason = csvHeader(text); reason != "" {
				headerBad = true
				sum.reject(reason)
			} else {
				sum.Ignored++
			}
			return nil
		default:
			f, reason = csvFields(text, cols)
		}
		if reason != "" {
			sum.reject(reason)
			return nil
		}
		read, flags, reason := anprRead(f)
		if reason != "" {
			sum.reject(reason)
			return nil
		}
		for _, fl := range flags {
			sum.flag(fl)
		}
		read.At = Provenance{Source: in.SHA256, Offset: ln.Offset, Line: ln.Line}
		return emitFact(&sum, emit, read)
	})
	return sum, err
}

// csvColumns is what the header says: where each named column is, and how
// many fields every record must have.
type csvColumns struct {
	index map[string]int
	width int
}

func csvHeader(line []byte) (*csvColumns, Reason) {
	names, ok := splitCSV(line)
	if !ok {
		return nil, ReasonBadHeader
	}
	cols := &csvColumns{index: make(map[string]int, len(names)), width: len(names)}
	for i, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if _, dup := cols.index[n]; dup && n != "" {
			return nil, ReasonBadHeader
		}
		cols.index[n] = i
	}
	for _, r := range anprRequired {
		if _, ok := cols.index[r]; !ok {
			return nil, ReasonBadHeader
		}
	}
	return cols, ""
}

func csvFields(line []byte, cols *csvColumns) (anprFields, Reason) {
	v, ok := splitCSV(line)
	if !ok || len(v) != cols.width {
		return anprFields{}, ReasonBadCSV
	}
	get := func(name string) string {
		if i, ok := cols.index[name]; ok {
			return strings.TrimSpace(v[i])
		}
		return ""
	}
	return anprFields{
		time: get("time"), plate: get("plate"), confidence: get("confidence"),
		region: get("region"), lat: get("lat"), lon: get("lon"), heading: get("heading"),
		camera: get("camera"), crop: get("crop"),
	}, ""
}

// splitCSV splits one RFC 4180 record that lies on one line: fields separated
// by commas, a field either bare (no quotes) or wholly quoted with "" for a
// quote. A record spanning lines is not part of the format.
func splitCSV(line []byte) ([]string, bool) {
	var out []string
	for {
		if len(line) > 0 && line[0] == '"' {
			var b strings.Builder
			i := 1
			for {
				if i >= len(line) {
					return nil, false // unterminated quote
				}
				if line[i] == '"' {
					if i+1 < len(line) && line[i+1] == '"' {
						b.WriteByte('"')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(line[i])
				i++
			}
			out = append(out, b.String())
			line = line[i:]
			if len(line) == 0 {
				return out, true
			}
			if line[0] != ',' {
				return nil, false // text after a closing quote
			}
			line = line[1:]
			continue
		}
		i := bytes.IndexByte(line, ',')
		field := line
		if i >= 0 {
			field = line[:i]
		}
		if bytes.IndexByte(field, '"') >= 0 {
			return nil, false // a quote inside a bare field
		}
		out = append(out, string(field))
		if i < 0 {
			return out, true
		}
		line = line[i+1:]
	}
}

// anprJSON is one JSON-lines read. Numbers stay numbers (json.Number) so both
// encodings go through the same validation; null or absent optional fields
// are empty.
type anprJSON struct {
	Time       string       `json:"time"`
	Plate      string       `json:"plate"`
	Confidence *json.Number `json:"confidence"`
	Region     string       `json:"region"`
	Lat        *json.Number `json:"lat"`
	Lon        *json.Number `json:"lon"`
	Heading    *json.Number `json:"heading"`
	Camera     string       `json:"camera"`
	Crop       string       `json:"crop"`
}

func jsonFields(line []byte) (anprFields, Reason) {
	var j anprJSON
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&j); err != nil {
		return anprFields{}, ReasonBadJSON
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return anprFields{}, ReasonBadJSON // more than one value on the line
	}
	num := func(n *json.Number) string {
		if n == nil {
			return ""
		}
		return n.String()
	}
	return anprFields{
		time: j.Time, plate: j.Plate, confidence: num(j.Confidence), region: j.Region,
		lat: num(j.Lat), lon: num(j.Lon), heading: num(j.Heading), camera: j.Camera, crop: j.Crop,
	}, ""
}

// anprRead validates one read: a reject reason, or the read and its flags.
func anprRead(f anprFields) (*PlateRead, []Reason, Reason) {
	t, ok := parseTimestamp(f.time, false)
	if !ok {
		return nil, nil, ReasonBadTime
	}
	if t.Before(plausibleSince) {
		return nil, nil, ReasonImplausibleDate
	}
	r := &PlateRead{Time: t, AsRead: f.plate, Region: f.region, Camera: f.camera, Crop: f.crop}
	conf, ok := finite(f.confidence)
	if !ok || conf < 0 || conf > 1 {
		return nil, nil, ReasonBadConf
	}
	r.Confidence = conf
	if !validCamera(f.camera) {
		return nil, nil, ReasonBadCamera
	}
	if !validRegion(f.region) {
		return nil, nil, ReasonBadRegion
	}
	if f.crop != "" && !validCrop(f.crop) {
		return nil, nil, ReasonBadCrop
	}
	if f.heading != "" {
		h, ok := finite(f.heading)
		if !ok || h < 0 || h > 360 {
			return nil, nil, ReasonBadHeading
		}
		r.Heading, r.HasHeading = h, true
	}
	var flags []Reason
	switch {
	case f.lat == "" && f.lon == "":
	case f.lat == "" || f.lon == "":
		return nil, nil, ReasonBadPosition
	default:
		la, ok1 := finite(f.lat)
		lo, ok2 := finite(f.lon)
		if !ok1 || !ok2 || math.Abs(la) > 90 || math.Abs(lo) > 180 {
			return nil, nil, ReasonBadPosition
		}
		if la == 0 && lo == 0 {
			flags = append(flags, ReasonNullIsland)
		} else {
			r.Lat, r.Lon, r.HasPos = la, lo, true
		}
	}
	plate, err := NormalizePlate(f.plate)
	if err != nil {
		var pe *PlateError
		errors.As(err, &pe)
		if pe.Reason == ReasonPlateEmpty {
			return nil, nil, ReasonPlateEmpty
		}
		// Kept as read, flagged: the read happened; only its key is unknown.
		r.PlateIssue = pe.Reason
		return r, append(flags, pe.Reason), ""
	}
	r.Plate = plate
	return r, flags, ""
}

// finite parses a decimal number (no NaN, no infinities).
func finite(s string) (float64, bool) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

func validCamera(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return false
		}
	}
	return true
}

func validRegion(s string) bool {
	if len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validCrop accepts a clean relative slash path inside the log's folder.
func validCrop(s string) bool {
	if len(s) > 255 || strings.HasPrefix(s, "/") || strings.ContainsAny(s, "\\\x00") ||
		path.Clean(s) != s || s == "." || s == ".." || strings.HasPrefix(s, "../") {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
