// Package sidecar turns the files that travel with recordings (GPS logs,
// number-plate read logs, the recordings' own container headers) into typed
// facts.
//
// A parser reads one vaulted file — the caller names it by its recorded
// SHA-256 and hands over a reader on the vault copy, never on the camera — and
// yields facts through a callback, each carrying where in the file it came from
// (byte offset and, for text formats, line number). Facts are derived data: they
// can always be rebuilt by parsing the same vaulted bytes again with the same
// parser version, which is why every Summary names the parser and its version.
//
// Bad input is the normal case for sidecars (power cut mid-sentence, a card
// with flipped bits, a vendor export with a stray column). A parser therefore
// never fails on content: anything it cannot trust is counted in the Summary
// under a reason and skipped. Parse returns an error only when reading fails,
// the context is cancelled or the callback refuses a fact. Memory is bounded
// whatever the file size: lines are capped (an over-long line is a reject),
// XML tokens and nesting are capped, and MP4 payloads are skipped, not read.
package sidecar

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/evidenced/evidenced/internal/digest"
)

// Kind names a parser in a profile (see Profile).
type Kind string

// The parser kinds.
const (
	KindNMEA      Kind = "nmea"
	KindGPX       Kind = "gpx"
	KindANPRCSV   Kind = "anpr-csv"
	KindANPRJSONL Kind = "anpr-jsonl"
	KindMP4       Kind = "mp4"
)

// Kinds lists every known kind, in a stable order (for messages and docs).
func Kinds() []Kind { return []Kind{KindNMEA, KindGPX, KindANPRCSV, KindANPRJSONL, KindMP4} }

// Input is one vaulted file to parse.
type Input struct {
	// SHA256 is the file's recorded content hash; it is copied into every
	// fact's provenance and into the summary, so a fact can always be traced
	// back to the custody record of the bytes it came from.
	SHA256 digest.Sum
	// R reads the vault copy. The MP4 parser uses io.Seeker when R has it, to
	// skip media payloads without reading them.
	R io.Reader
}

// Provenance says where a fact came from.
type Provenance struct {
	Source digest.Sum // SHA-256 of the vaulted file
	Offset int64      // byte offset of the start of the sentence, record, element or box
	Line   int64      // 1-based line number; 0 for binary formats (MP4)
}

// Fact is one typed observation taken from a sidecar: a *Fix, a *PlateRead or
// a *MediaInfo.
type Fact interface {
	Prov() Provenance
}

// Fix is one GPS position at one instant.
type Fix struct {
	At       Provenance
	Time     time.Time // UTC
	Lat, Lon float64   // WGS 84 decimal degrees, south and west negative
	// Ele is the altitude in metres above mean sea level (NMEA GGA) or the
	// GPX <ele>; HasEle says whether it was present.
	Ele    float64
	HasEle bool
	// SpeedMS and Course (degrees true) come from NMEA RMC when present.
	SpeedMS   float64
	HasSpeed  bool
	Course    float64
	HasCourse bool
	// Sentence is the NMEA sentence ("GPRMC", "GNGGA") or "trkpt" for GPX.
	Sentence string
	// RolloverCorrected is set when the receiver's date was moved forward by
	// whole 1024-week GPS epochs (see NMEAOptions.CorrectWeekRollover).
	RolloverCorrected bool
}

// Prov implements Fact.
func (f *Fix) Prov() Provenance { return f.At }

// PlateRead is one number-plate read from an ANPR log (docs/ANPR-FORMAT.md).
type PlateRead struct {
	At   Provenance
	Time time.Time // UTC
	// AsRead is the plate exactly as the camera reported it.
	AsRead string
	// Plate is NormalizePlate(AsRead); empty when PlateIssue is set.
	Plate Plate
	// PlateIssue is the reason the plate could not be normalised (e.g. it
	// has non-ASCII characters); the read is kept and flagged, never mangled.
	PlateIssue Reason
	Confidence float64 // 0..1
	Region     string  // e.g. "ZA-WC"; empty if not given
	Lat, Lon   float64
	HasPos     bool
	Heading    float64 // degrees true, 0..360
	HasHeading bool
	Camera     string
	Crop       string // plate-crop image file name, relative to the log's folder; empty if none
}

// Prov implements Fact.
func (p *PlateRead) Prov() Provenance { return p.At }

// MediaInfo is what an MP4/MOV recording says about itself in its movie header.
type MediaInfo struct {
	At       Provenance // offset of the mvhd box
	Brand    string     // ftyp major brand, e.g. "isom"; empty if no ftyp came first
	Created  time.Time  // UTC; zero when the header says 0 (unset)
	Modified time.Time  // UTC; zero when unset
	// Timescale is the movie's ticks per second and DurationTicks its length
	// in those ticks; Duration is the same in time.Duration (0 if unknown).
	Timescale     uint32
	DurationTicks uint64
	Duration      time.Duration
	// MvhdVersion is 0 (32-bit times) or 1 (64-bit times).
	MvhdVersion uint8
}

// Prov implements Fact.
func (m *MediaInfo) Prov() Provenance { return m.At }

// Span is the recording's span in time, from its creation time to that
// plus its duration (both inclusive): what a plate read or GPS fix is
// linked to it by. false when the header does not say when it began (such
// a recording cannot be placed in time). The facts index and
// verify-export both take a recording's span from here.
func (m *MediaInfo) Span() (from, to time.Time, ok bool) {
	if m.Created.IsZero() {
		return time.Time{}, time.Time{}, false
	}
	return m.Created, m.Created.Add(m.Duration), true
}

// SpanFrom and SpanTo are the details of a recording's PARSED custody
// record that give its span (Span), as FormatSpan writes it: the record is
// signed, so a package without the footage still says, under signature,
// when the recording ran.
const (
	SpanFrom = "span_from"
	SpanTo   = "span_to"
)

// FormatSpan is a span as the PARSED record's details write it: RFC 3339
// with nanoseconds, UTC.
func FormatSpan(from, to time.Time) (string, string) {
	return from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano)
}

// ParseSpan reads a span FormatSpan wrote from a PARSED record's details;
// ok is false when they give none (a record written before spans were
// recorded, or a recording whose header gives none), err when they give
// one that is not in the form written.
func ParseSpan(d map[string]string) (from, to time.Time, ok bool, err error) {
	f, hasF := d[SpanFrom]
	t, hasT := d[SpanTo]
	if !hasF && !hasT {
		return time.Time{}, time.Time{}, false, nil
	}
	if from, err = time.Parse(time.RFC3339Nano, f); err != nil {
		return time.Time{}, time.Time{}, false, fmt.Errorf("%s %q: %w", SpanFrom, f, err)
	}
	if to, err = time.Parse(time.RFC3339Nano, t); err != nil {
		return time.Time{}, time.Time{}, false, fmt.Errorf("%s %q: %w", SpanTo, t, err)
	}
	if to.Before(from) {
		return time.Time{}, time.Time{}, false, fmt.Errorf("%s %s is before %s %s", SpanTo, t, SpanFrom, f)
	}
	return from, to, true, nil
}

// Reason says why a record was rejected or flagged. Reasons are stable
// identifiers (they end up in custody events and reports).
type Reason string

// Reasons shared by more than one parser; each parser adds its own.
const (
	ReasonLineTooLong Reason = "line_too_long"
	ReasonBadField    Reason = "bad_field"
	ReasonNoFix       Reason = "no_fix"
	ReasonBadTime     Reason = "bad_time"
	ReasonBadPosition Reason = "bad_position"
	ReasonNonASCII    Reason = "non_ascii"
)

// Summary is what one parse did; it is the content of the parse step's
// custody record (the parser, its version, the source, counts and rejects).
type Summary struct {
	Parser  string
	Version string
	Source  digest.Sum
	// Bytes is how many bytes of the input were consumed (for MP4, including
	// skipped payloads).
	Bytes int64
	// Records is how many units were examined: lines (NMEA, ANPR), track
	// points (GPX) or boxes (MP4). Every record ends up in exactly one of
	// Facts, Ignored or Rejects, except for the ANPR header line and for MP4
	// boxes, which may yield nothing without being rejected.
	Records int64
	// Facts is how many facts were emitted.
	Facts int64
	// Ignored counts well-formed records of no interest (e.g. $GPGSV, blank
	// lines).
	Ignored int64
	// Rejects counts records that could not be trusted, by reason.
	Rejects map[Reason]int64
	// Flags counts facts emitted with a caveat, by reason (e.g. a plate read
	// kept with its non-ASCII text un-normalised).
	Flags map[Reason]int64
}

func (s *Summary) reject(r Reason) {
	if s.Rejects == nil {
		s.Rejects = map[Reason]int64{}
	}
	s.Rejects[r]++
}

func (s *Summary) flag(r Reason) {
	if s.Flags == nil {
		s.Flags = map[Reason]int64{}
	}
	s.Flags[r]++
}

// Rejected is the total of Rejects.
func (s Summary) Rejected() int64 {
	var n int64
	for _, v := range s.Rejects {
		n += v
	}
	return n
}

// String is a one-line report, reasons in a stable order.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%s %s: %d bytes, %d records, %d facts, %d ignored, %d rejected",
		s.Parser, s.Version, s.Source.Hex()[:12], s.Bytes, s.Records, s.Facts, s.Ignored, s.Rejected())
	writeCounts(&b, " rejects", s.Rejects)
	writeCounts(&b, " flags", s.Flags)
	return b.String()
}

func writeCounts(b *strings.Builder, label string, m map[Reason]int64) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	b.WriteString(label)
	for _, k := range keys {
		fmt.Fprintf(b, " %s=%d", k, m[Reason(k)])
	}
}

// Emit receives facts. Returning an error stops the parse; Parse returns it
// wrapped. Each fact is freshly allocated: the callee may keep it.
type Emit func(Fact) error

// Parser is one sidecar format.
type Parser interface {
	// Name and Version identify the parser in the summary; Version changes
	// whenever the same bytes could yield different facts.
	Name() string
	Version() string
	// Parse reads in.R to its end (or, for MP4, walks its boxes) and emits
	// facts in file order. Content problems are counted in the Summary, never
	// returned; the error is for I/O, cancellation and emit failures, and the
	// Summary is still filled up to that point.
	Parse(ctx context.Context, in Input, emit Emit) (Summary, error)
}

// New returns the parser for kind with default options.
func New(kind Kind) (Parser, error) {
	switch kind {
	case KindNMEA:
		return &NMEA{}, nil
	case KindGPX:
		return &GPX{}, nil
	case KindANPRCSV:
		return &ANPR{Format: ANPRCSV}, nil
	case KindANPRJSONL:
		return &ANPR{Format: ANPRJSONL}, nil
	case KindMP4:
		return &MP4{}, nil
	}
	return nil, fmt.Errorf("sidecar: unknown parser kind %q (known: %v)", kind, Kinds())
}

// checkEvery is how many records a parser handles between context checks.
const checkEvery = 1024

func newSummary(p Parser, in Input) Summary {
	return Summary{Parser: p.Name(), Version: p.Version(), Source: in.SHA256}
}

// emitFact counts f and hands it to emit, wrapping a refusal with where the fact came from.
func emitFact(s *Summary, emit Emit, f Fact) error {
	s.Facts++
	if err := emit(f); err != nil {
		at := f.Prov()
		return fmt.Errorf("sidecar %s: emitting fact at offset %d: %w", s.Parser, at.Offset, err)
	}
	return nil
}
