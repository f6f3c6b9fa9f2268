package sidecar

import (
	"bufio"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// GPX reasons.
const (
	ReasonBadXML       Reason = "bad_xml"        // a syntax error: the rest of the file cannot be read
	ReasonNotGPX       Reason = "not_gpx"        // the root element is not <gpx>
	ReasonTokenTooLong Reason = "token_too_long" // one XML token over gpxMaxToken bytes
	ReasonTooDeep      Reason = "too_deep"       // nesting over gpxMaxDepth
	ReasonNoTime       Reason = "no_time"        // a trkpt without <time>
	gpxMaxToken               = 1 << 20
	gpxMaxDepth               = 64
	gpxMaxText                = 256 // of one <ele> or <time>, however many CharData tokens it comes in
	gpxNamespace11            = "http://www.topografix.com/GPX/1/1"
	gpxNamespace10            = "http://www.topografix.com/GPX/1/0"
)

// GPX parses GPX 1.1 track points (<trkpt lat lon><ele/><time/></trkpt>)
// with encoding/xml's streaming decoder, one token at a time; GPX 1.0 files
// and files without a namespace are read the same way. Waypoints and routes
// are not camera positions and are skipped.
//
// A trkpt without <time> is rejected (no_time): a position of unknown time
// cannot place a camera in a window. A <time> without a zone is taken as UTC,
// as the GPX schema prescribes.
//
// XML cannot be resynchronised after a syntax error, so a malformed file
// yields the points before the error and one bad_xml reject. Memory stays
// bounded: one token may not exceed gpxMaxToken bytes nor nesting gpxMaxDepth.
type GPX struct{}

// Name implements Parser.
func (*GPX) Name() string { return "gpx" }

// Version implements Parser.
func (*GPX) Version() string { return "1" }

var errTokenTooLong = errors.New("xml token too long")

// tokenGuard is the decoder's byte source: it counts bytes since the last
// token and fails once one token grows past max, so the decoder never
// buffers a gigabyte of character data or a runaway attribute.
type tokenGuard struct {
	r     *bufio.Reader
	since int64
	max   int64
	total int64
	err   error // a failure of the underlying reader (not EOF), kept apart from XML errors
}

func (g *tokenGuard) ReadByte() (byte, error) {
	if g.since >= g.max {
		return 0, errTokenTooLong
	}
	b, err := g.r.ReadByte()
	switch {
	case err == nil:
		g.since++
		g.total++
	case err != io.EOF:
		g.err = err
	}
	return b, err
}

func (g *tokenGuard) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b, err := g.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = b
	return 1, nil
}

// gpxPoint is the trkpt being read.
type gpxPoint struct {
	fix      *Fix
	depth    int // depth of the <trkpt> element
	reason   Reason
	hasTime  bool
	child    string // "ele" or "time" while inside that child
	text     strings.Builder
	openedAt Provenance
}

// Parse implements Parser.
func (p *GPX) Parse(ctx context.Context, in Input, emit Emit) (sum Summary, err error) {
	sum = newSummary(p, in)
	g := &tokenGuard{r: bufio.NewReader(in.R), max: gpxMaxToken}
	defer func() { sum.Bytes = g.total }()
	d := xml.NewDecoder(g)
	depth := 0
	var pt *gpxPoint
	// fatal ends the file: the point being read, if any, is the record
	// rejected; otherwise the failure is a record of its own.
	fatal := func(r Reason) (Summary, error) {
		if pt == nil {
			sum.Records++
		}
		sum.reject(r)
		return sum, nil
	}
	for n := 0; ; n++ {
		if n%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return sum, err
			}
		}
		off := d.InputOffset()
		line, _ := d.InputPos()
		g.since = 0
		tok, err := d.Token()
		if err == io.EOF {
			if depth != 0 || n == 0 {
				return fatal(ReasonBadXML) // truncated, or empty
			}
			return sum, nil
		}
		if err != nil {
			switch {
			case errors.Is(err, errTokenTooLong):
				return fatal(ReasonTokenTooLong)
			case g.err != nil:
				return sum, fmt.Errorf("gpx: reading at offset %d: %w", g.total, g.err)
			}
			return fatal(ReasonBadXML)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth > gpxMaxDepth {
				return fatal(ReasonTooDeep)
			}
			if depth == 1 && (t.Name.Local != "gpx" || !gpxSpace(t.Name.Space)) {
				return fatal(ReasonNotGPX)
			}
			switch {
			case pt == nil && t.Name.Local == "trkpt" && gpxSpace(t.Name.Space):
				sum.Records++
				pt = &gpxPoint{depth: depth, openedAt: Provenance{Source: in.SHA256, Offset: off, Line: int64(line)}}
				pt.fix, pt.reason = trkptAttrs(t.Attr)
			case pt != nil && depth == pt.depth+1 && gpxSpace(t.Name.Space) &&
				(t.Name.Local == "ele" || t.Name.Local == "time"):
				pt.child = t.Name.Local
				pt.text.Reset()
			}
		case xml.CharData:
			if pt != nil && pt.child != "" {
				if pt.text.Len()+len(t) > gpxMaxText {
					pt.reason = ReasonBadField // no number or date is this long
				} else {
					pt.text.Write(t)
				}
			}
		case xml.EndElement:
			depth--
			switch {
			case pt == nil:
			case depth == pt.depth: // </ele> or </time>, or another child
				if pt.child != "" {
					pt.childDone()
				}
			case depth == pt.depth-1: // </trkpt>
				done := pt
				pt = nil
				if done.reason == "" && !done.hasTime {
					done.reason = ReasonNoTime
				}
				if done.reason != "" {
					sum.reject(done.reason)
					continue
				}
				done.fix.At = done.openedAt
				done.fix.Sentence = "trkpt"
				if err := emitFact(&sum, emit, done.fix); err != nil {
					return sum, err
				}
			}
		}
	}
}

func gpxSpace(s string) bool { return s == gpxNamespace11 || s == gpxNamespace10 || s == "" }

// childDone takes the text of a finished <ele> or <time>.
func (pt *gpxPoint) childDone() {
	v := strings.TrimSpace(pt.text.String())
	child := pt.child
	pt.child = ""
	if pt.reason != "" {
		return
	}
	switch child {
	case "ele":
		e, ok := finite(v)
		if !ok {
			pt.reason = ReasonBadField
			return
		}
		pt.fix.Ele, pt.fix.HasEle = e, true
	case "time":
		t, ok := parseTimestamp(v, true) // no zone: UTC per GPX
		switch {
		case !ok:
			pt.reason = ReasonBadTime
		case t.Before(plausibleSince):
			pt.reason = ReasonImplausibleDate
		default:
			pt.fix.Time, pt.hasTime = t, true
		}
	}
}

// trkptAttrs reads lat and lon (required, decimal degrees).
func trkptAttrs(attrs []xml.Attr) (*Fix, Reason) {
	var lat, lon string
	var haveLat, haveLon bool
	for _, a := range attrs {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "lat":
			lat, haveLat = a.Value, true
		case "lon":
			lon, haveLon = a.Value, true
		}
	}
	if !haveLat || !haveLon {
		return nil, ReasonBadPosition
	}
	la, ok1 := finite(strings.TrimSpace(lat))
	lo, ok2 := finite(strings.TrimSpace(lon))
	if !ok1 || !ok2 || math.Abs(la) > 90 || math.Abs(lo) > 180 {
		return nil, ReasonBadPosition
	}
	if la == 0 && lo == 0 {
		return nil, ReasonNullIsland
	}
	return &Fix{Lat: la, Lon: lo}, ""
}
