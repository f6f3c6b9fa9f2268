package export

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/sidecar"
)

// factsName is the package's list of the sidecar facts linked to its
// recordings: one JSON object (Fact) a line.
const factsName = "facts.jsonl"

// Fact kinds in facts.jsonl.
const (
	FactPlateRead = "plate_read"
	FactGPSFix    = "gps_fix"
)

// FactSource is a sidecar file whose facts are linked to a recording by
// the facts index's rule: the same docked camera, and the fact's time within
// the recording's span From..To (both inclusive).
type FactSource struct {
	Recording string
	Item      string       // the sidecar file's item id
	Kind      sidecar.Kind // the parser its camera's profile names
	From, To  time.Time
}

// Fact is one line of facts.jsonl: a plate read or a GPS fix, the recording
// it is linked to, and exactly where it came from (the source item, its
// SHA-256, the package file holding its bytes, the byte offset and line).
// Every field but the links (Recording, CropItem, CropFile) and Host is what the
// parser yields from that line, so a verifier re-parses the line and
// compares.
type Fact struct {
	Kind      string `json:"kind"`
	Recording string `json:"recording"`
	Source    string `json:"source"`
	SHA256    string `json:"sha256"`
	// Host is the dock host that ingested the source (and the crop): set
	// in a console's package, which holds several hosts' files; absent
	// from a dock host's, where it is the package's host.
	Host       string  `json:"host,omitempty"`
	Parser     string  `json:"parser"`
	File       string  `json:"file"`
	Offset     int64   `json:"offset"`
	Line       int64   `json:"line"`
	Time       string  `json:"time"`
	Plate      string  `json:"plate,omitempty"`
	AsRead     string  `json:"as_read,omitempty"`
	Confidence float64 `json:"confidence,omitempty"`
	Region     string  `json:"region,omitempty"`
	HasPos     bool    `json:"has_position,omitempty"`
	Lat        float64 `json:"lat,omitempty"`
	Lon        float64 `json:"lon,omitempty"`
	Heading    float64 `json:"heading,omitempty"`
	ANPRCamera string  `json:"anpr_camera,omitempty"`
	// Crop is the plate-crop image's name as the read gives it (relative to
	// the log's folder); CropItem is the item of the same dock and camera
	// whose path on the camera that name is, and CropFile its bytes in the
	// package ("" when no such item was docked).
	Crop     string `json:"crop,omitempty"`
	CropItem string `json:"crop_item,omitempty"`
	CropFile string `json:"crop_file,omitempty"`
}

// FactPlan is what the facts of an export are: the facts, and the items
// (sidecar files and crop images) whose files the package carries so each
// fact can be checked offline. GatherFacts makes it; the caller records
// the access to Items as well as to the recordings before Build.
type FactPlan struct {
	Facts []Fact
	Items []string
}

// Items is what GatherFacts reads the items from: a dock host's ledger,
// or at a console the catalog of what the trusted dock hosts recorded.
type Items interface {
	Item(ctx context.Context, id string) (custody.Item, error)
}

// CropResolver names the item of a plate-crop image: the item of the
// same dock and camera as source whose path on the camera is name,
// relative to source's folder; "" when none was docked.
type CropResolver func(ctx context.Context, source custody.Item, name string) (string, error)

// GatherFacts re-derives the facts each source yields within its
// recording's span, from the held copy (checked against the recorded
// SHA-256: a fact is never taken from bytes that are not the recorded
// ones), and names the crop image each plate read refers to. withHost
// names on each fact the dock host that ingested its source (a console's
// package).
func GatherFacts(ctx context.Context, l Items, src Footage, sources []FactSource, crop CropResolver, withHost bool) (*FactPlan, error) {
	plan := &FactPlan{}
	seen := map[string]bool{}
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			plan.Items = append(plan.Items, id)
		}
	}
	crops := map[string]string{}
	recs := map[string]custody.Item{}
	for _, fs := range sources {
		rec, ok := recs[fs.Recording]
		if !ok {
			var err error
			if rec, err = l.Item(ctx, fs.Recording); err != nil {
				return nil, fmt.Errorf("export: facts: recording %s: %w", fs.Recording, err)
			}
			recs[fs.Recording] = rec
		}
		it, err := l.Item(ctx, fs.Item)
		if err != nil {
			return nil, fmt.Errorf("export: facts: sidecar %s: %w", fs.Item, err)
		}
		if !sameOrigin(rec, it, withHost) {
			continue
		}
		rc, from, err := src.Open(ctx, it)
		if err != nil {
			return nil, fmt.Errorf("export: facts: sidecar %s: %w", it.ID, err)
		}
		got, err := parseFacts(ctx, rc, it, fs.Kind, func(f sidecar.Fact) (bool, error) {
			return inSpan(factTime(f), fs.From, fs.To), nil
		})
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("export: facts: sidecar %s from the %s: %w", it.ID, from, err)
		}
		if len(got) == 0 {
			continue
		}
		add(it.ID)
		for _, sf := range got {
			f, ok := factOf(fs.Recording, it, fs.Kind, sf)
			if !ok {
				continue
			}
			if withHost {
				f.Host = it.Host
			}
			if f.Crop != "" {
				key := it.ID + "\x00" + f.Crop
				id, done := crops[key]
				if !done {
					if id, err = crop(ctx, it, f.Crop); err != nil {
						return nil, fmt.Errorf("export: facts: crop %q of %s: %w", f.Crop, it.ID, err)
					}
					crops[key] = id
				}
				if id != "" {
					cit, err := l.Item(ctx, id)
					if err != nil {
						return nil, fmt.Errorf("export: facts: crop %s: %w", id, err)
					}
					f.CropItem, f.CropFile = id, footagePath(cit)
					add(id)
				}
			}
			plan.Facts = append(plan.Facts, f)
		}
	}
	// In time order, as a reader of the report follows them.
	slices.SortStableFunc(plan.Facts, func(a, b Fact) int {
		ta, _ := time.Parse(time.RFC3339Nano, a.Time)
		tb, _ := time.Parse(time.RFC3339Nano, b.Time)
		return ta.Compare(tb)
	})
	return plan, nil
}

// sameOrigin and inSpan are the rule a fact is linked to a recording by:
// its sidecar file came off the same camera as the recording (and, in a
// console's package, was ingested by the same dock host), and its time
// lies within the recording's span (sidecar.MediaInfo.Span). GatherFacts
// links by it, and verify-export re-derives every link of facts.jsonl by
// it from what it verified (the signed items, the recording's own header)
// rather than believe the link the package states.
func sameOrigin(rec, src custody.Item, withHost bool) bool {
	return rec.Camera == src.Camera && (!withHost || rec.Host == src.Host)
}

func inSpan(t, from, to time.Time) bool {
	return !t.IsZero() && !t.Before(from) && !t.After(to)
}

// parseFacts runs the kind's parser over r (the held bytes of it), keeps
// the facts keep says to, and fails unless the bytes hash to it.SHA256.
func parseFacts(ctx context.Context, r io.Reader, it custody.Item, kind sidecar.Kind, keep func(sidecar.Fact) (bool, error)) ([]sidecar.Fact, error) {
	want, err := digest.ParseHex(it.SHA256)
	if err != nil {
		return nil, fmt.Errorf("recorded sha256 %q: %w", it.SHA256, err)
	}
	p, err := sidecar.New(kind)
	if err != nil {
		return nil, err
	}
	h := digest.New()
	tr := io.TeeReader(r, h)
	var out []sidecar.Fact
	if _, err := p.Parse(ctx, sidecar.Input{SHA256: want, R: tr}, func(f sidecar.Fact) error {
		ok, err := keep(f)
		if ok {
			out = append(out, f)
		}
		return err
	}); err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return nil, err
	}
	if got := digest.FromHash(h); got != want {
		return nil, fmt.Errorf("%w: the held copy hashes to %s, not the recorded %s", ErrIntegrity, got.Hex(), want.Hex())
	}
	return out, nil
}

func factTime(f sidecar.Fact) time.Time {
	switch f := f.(type) {
	case *sidecar.PlateRead:
		return f.Time
	case *sidecar.Fix:
		return f.Time
	}
	return time.Time{}
}

// factOf is the facts.jsonl line of one parsed fact (without the crop's
// item, which the caller links); false for what the facts index does not
// hold either (a recording's own header, a plate it could not normalise).
func factOf(recording string, src custody.Item, kind sidecar.Kind, sf sidecar.Fact) (Fact, bool) {
	at := sf.Prov()
	f := Fact{Recording: recording, Source: src.ID, SHA256: src.SHA256, Parser: string(kind), File: footagePath(src),
		Offset: at.Offset, Line: at.Line}
	switch sf := sf.(type) {
	case *sidecar.PlateRead:
		if sf.PlateIssue != "" || sf.Plate == "" || sf.Time.IsZero() {
			return Fact{}, false
		}
		f.Kind, f.Time = FactPlateRead, sf.Time.UTC().Format(time.RFC3339Nano)
		f.Plate, f.AsRead, f.Confidence, f.Region = string(sf.Plate), sf.AsRead, sf.Confidence, sf.Region
		f.HasPos, f.Lat, f.Lon, f.Heading, f.ANPRCamera, f.Crop = sf.HasPos, sf.Lat, sf.Lon, sf.Heading, sf.Camera, sf.Crop
	case *sidecar.Fix:
		f.Kind, f.Time = FactGPSFix, sf.Time.UTC().Format(time.RFC3339Nano)
		f.HasPos, f.Lat, f.Lon = true, sf.Lat, sf.Lon
	default:
		return Fact{}, false
	}
	return f, true
}

// renderFact is a facts.jsonl line: compact JSON, no HTML escaping, a
// trailing newline.
func renderFact(f Fact) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func renderFacts(fs []Fact) ([]byte, error) {
	var b bytes.Buffer
	for _, f := range fs {
		l, err := renderFact(f)
		if err != nil {
			return nil, fmt.Errorf("export: %s: %w", factsName, err)
		}
		b.Write(l)
	}
	return b.Bytes(), nil
}

// factsSection is what a package's description (package.json of a dock
// host's, fleet.json of a console's) says of its facts.
type factsSection struct {
	infoFile string   // the file that says it
	facts    string   // its "facts": facts.jsonl, or "" for none
	files    []string // its "files": the items whose held file is carried
	// hosts: each fact names the dock host that ingested its source (a
	// console's package); otherwise no fact names one.
	hosts bool
}

// checkFacts checks facts.jsonl: every line is a fact of a source file the
// package carries (its SHA-256 the recorded one), linked to a recording of
// the package, and is exactly what re-parsing the source file yields at the
// stated offset; a crop it names is the item of the same dock and camera at
// the path the read gives. It returns the facts that checked out, for the
// report. A dock host's and a console's packages are checked alike: only
// where the items come from differs.
func (v *verifier) checkFacts(in factsSection, items []*itemData) []Fact {
	if in.facts == "" {
		if len(in.files) > 0 {
			v.problem(in.infoFile, "carries the files of %d item(s) for facts, but names no %s", len(in.files), factsName)
		}
		return nil
	}
	if in.facts != factsName {
		v.problem(in.infoFile, "facts %q, want %q", in.facts, factsName)
		return nil
	}
	v.expect[factsName] = true
	b, ok := v.read(factsName)
	if !ok {
		return nil
	}
	byID := map[string]*itemData{}
	for _, d := range items {
		byID[d.item.ID] = d
	}
	carried := map[string]bool{}
	for _, id := range in.files {
		carried[id] = true
	}
	type key struct {
		item string
		kind sidecar.Kind
	}
	// Decode every line first, so each source file is parsed once and
	// only the facts the lines name are kept (a GPS log may be large).
	type entry struct {
		n    int
		line []byte
		f    Fact
		src  *itemData
	}
	var todo []entry
	need := map[key]map[int64]bool{}
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	for i, line := range lines {
		n := i + 1
		var f Fact
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			v.problem(factsName, "line %d: %v", n, err)
			continue
		}
		if again, err := renderFact(f); err != nil || !bytes.Equal(again, line) {
			v.problem(factsName, "line %d: not in the form evidenced writes (edited?)", n)
			continue
		}
		src, ok := byID[f.Source]
		switch {
		case !ok || !carried[f.Source]:
			v.problem(factsName, "line %d: names source %q, whose file the package does not carry", n, f.Source)
			continue
		case f.SHA256 != src.item.SHA256 || f.File != footagePath(src.item):
			v.problem(factsName, "line %d: says source %s is %s (%s), its item.json says %s (%s)", n, f.Source, f.File, f.SHA256, footagePath(src.item), src.item.SHA256)
			continue
		case byID[f.Recording] == nil || carried[f.Recording]:
			v.problem(factsName, "line %d: is linked to %q, which is not a recording of this package", n, f.Recording)
			continue
		case !sameOrigin(byID[f.Recording].item, src.item, in.hosts):
			v.problem(factsName, "line %d: links the %s at %s of %s (%s) to recording %s (%s): a fact is linked only to a recording of the same camera%s",
				n, f.Kind, f.Time, f.Source, origin(src.item, in.hosts), f.Recording, origin(byID[f.Recording].item, in.hosts), map[bool]string{true: " and dock host"}[in.hosts])
			continue
		}
		k := key{f.Source, sidecar.Kind(f.Parser)}
		if need[k] == nil {
			need[k] = map[int64]bool{}
		}
		need[k][f.Offset] = true
		todo = append(todo, entry{n: n, line: line, f: f, src: src})
	}
	parsed := map[key]map[int64]sidecar.Fact{}
	spans := recordingSpans{}
	unspanned := map[string]bool{}
	var out []Fact
	for _, e := range todo {
		n, line, f, src := e.n, e.line, e.f, e.src
		k := key{f.Source, sidecar.Kind(f.Parser)}
		at, done := parsed[k]
		if !done {
			at = v.parseSource(src.item, k.kind, need[k])
			parsed[k] = at
		}
		if at == nil {
			v.problem(factsName, "line %d: %s cannot be parsed as %q", n, f.File, f.Parser)
			continue
		}
		sf, ok := at[f.Offset]
		want, ok2 := Fact{}, false
		if ok {
			want, ok2 = factOf(f.Recording, src.item, k.kind, sf)
		}
		if !ok2 {
			v.problem(factsName, "line %d: %s has no %s at offset %d (line %d): the fact is not in the source file", n, f.File, f.Kind, f.Offset, f.Line)
			continue
		}
		if in.hosts {
			want.Host = src.item.Host
		}
		if want.Crop != "" {
			want.CropItem, want.CropFile = f.CropItem, f.CropFile
			if f.CropItem != "" {
				v.checkCrop(n, src.item, want.Crop, f, byID, carried)
			}
		}
		got, _ := renderFact(want)
		if !bytes.Equal(got, line) {
			v.problem(factsName, "line %d: is not what %s says at line %d: %s", n, f.File, f.Line, factDiff(f, want))
			continue
		}
		// The fact is the file's; whether it belongs to the recording is
		// re-derived from the recording's own header when the package
		// carries it, else from the span its signed PARSED record gives,
		// never the line's word.
		sp := spans.of(v, byID[f.Recording])
		switch {
		case sp.unspanned:
			unspanned[f.Recording] = true
		case sp.why != "":
			v.problem(factsName, "line %d: links the %s at %s of %s to recording %s, %s: no fact is linked to it", n, f.Kind, f.Time, f.Source, f.Recording, sp.why)
			continue
		case !inSpan(factTime(sf), sp.from, sp.to):
			v.problem(factsName, "line %d: links the %s at %s of %s to recording %s, which spans %s to %s (%s): the fact is not within it",
				n, f.Kind, f.Time, f.Source, f.Recording, sp.from.UTC().Format(time.RFC3339Nano), sp.to.UTC().Format(time.RFC3339Nano), sp.by)
			continue
		}
		out = append(out, f)
		v.res.Facts++
	}
	if len(unspanned) > 0 {
		v.res.Notices = append(v.res.Notices, fmt.Sprintf("%s: the links to %d recording(s) whose footage the package does not carry are checked by camera%s only: "+
			"whether each fact lies within its recording's span needs the recording's header (export --footage)", factsName, len(unspanned), map[bool]string{true: " and dock host"}[in.hosts]))
	}
	return out
}

// origin names where an item came from, as the link rule (sameOrigin)
// compares it.
func origin(it custody.Item, withHost bool) string {
	if withHost {
		return fmt.Sprintf("camera %s of %s", it.Camera, it.Host)
	}
	return "camera " + it.Camera
}

// recordingSpan is a recording's span as its own header in the package
// says: held is false when the package does not carry its footage (or
// carries other bytes, named by the item check); why says why a carried
// recording gives no span.
type recordingSpan struct {
	held     bool
	from, to time.Time
	why      string
}

// linkSpan is the span a recording's facts are checked against: its
// header's when the package carries its footage, else the one its signed
// PARSED record gives (by names which); unspanned when the package has
// neither (a ledger from before PARSED records gave spans); why, when set,
// says why no fact can be linked to it.
type linkSpan struct {
	from, to  time.Time
	by        string
	why       string
	unspanned bool
}

// recordingSpans works out each recording's linkSpan once.
type recordingSpans map[string]linkSpan

func (rs recordingSpans) of(v *verifier, d *itemData) linkSpan {
	if sp, ok := rs[d.item.ID]; ok {
		return sp
	}
	sp := v.linkSpan(d)
	rs[d.item.ID] = sp
	return sp
}

func (v *verifier) linkSpan(d *itemData) linkSpan {
	head := v.recordingSpan(d.item)
	signed := signedSpan(d)
	fmtSpan := func(from, to time.Time) string {
		f, t := sidecar.FormatSpan(from, to)
		return f + " to " + t
	}
	switch {
	case head.held && head.why != "":
		return linkSpan{why: "whose header gives no span (" + head.why + ")"}
	case head.held:
		if signed.ok && (!signed.from.Equal(head.from) || !signed.to.Equal(head.to)) {
			v.problem(factsName, "recording %s: its PARSED record (seq %d) gives the span %s, its header in %s gives %s: the signed record and the footage disagree",
				d.item.ID, signed.seq, fmtSpan(signed.from, signed.to), footagePath(d.item), fmtSpan(head.from, head.to))
		}
		return linkSpan{from: head.from, to: head.to, by: "as its header in " + footagePath(d.item) + " says"}
	case signed.why != "":
		return linkSpan{why: "whose PARSED record " + signed.why}
	case signed.ok:
		return linkSpan{from: signed.from, to: signed.to, by: fmt.Sprintf("as its PARSED record (seq %d) says", signed.seq)}
	}
	return linkSpan{unspanned: true}
}

// signedSpan is the span the recording's PARSED records in the package give
// (sidecar.ParseSpan). It reads only d.events: the records decoded from the
// package's record files, each checked against its signature or its
// host's checkpoint (a failure there is a problem of its own), never the
// text of custody.json. why is set when a record gives a span not in the
// form written, or two give different spans.
type parsedSpan struct {
	from, to time.Time
	seq      uint64
	ok       bool
	why      string
}

func signedSpan(d *itemData) parsedSpan {
	var out parsedSpan
	for _, ev := range d.events {
		if ev.Type != custody.Parsed || ev.Item != d.item.ID || ev.SHA256 != d.item.SHA256 {
			continue
		}
		from, to, ok, err := sidecar.ParseSpan(ev.Details)
		switch {
		case err != nil:
			return parsedSpan{why: fmt.Sprintf("(seq %d) gives no readable span: %v", ev.Seq, err)}
		case !ok:
			continue
		case !out.ok:
			out = parsedSpan{from: from, to: to, seq: ev.Seq, ok: true}
		case !from.Equal(out.from) || !to.Equal(out.to):
			return parsedSpan{why: fmt.Sprintf("(seq %d) gives a span other than record seq %d's", ev.Seq, out.seq)}
		}
	}
	return out
}

func (v *verifier) recordingSpan(it custody.Item) recordingSpan {
	name := footagePath(it)
	if !v.files[name] || v.sums[name] != it.SHA256 {
		return recordingSpan{}
	}
	sp := recordingSpan{held: true}
	p, err := sidecar.New(sidecar.KindMP4)
	if err != nil {
		sp.why = err.Error()
		return sp
	}
	fh, err := os.Open(filepath.Join(v.dir, filepath.FromSlash(name)))
	if err != nil {
		sp.why = err.Error()
		return sp
	}
	defer fh.Close()
	sum, _ := digest.ParseHex(it.SHA256)
	var info *sidecar.MediaInfo
	if _, err := p.Parse(v.ctx, sidecar.Input{SHA256: sum, R: fh}, func(f sidecar.Fact) error {
		if m, ok := f.(*sidecar.MediaInfo); ok && info == nil {
			info = m
		}
		return nil
	}); err != nil {
		sp.why = fmt.Sprintf("%s cannot be parsed as %s: %v", name, sidecar.KindMP4, err)
		return sp
	}
	var ok bool
	if info != nil {
		sp.from, sp.to, ok = info.Span()
	}
	if !ok {
		sp.why = name + " does not say when it began"
	}
	return sp
}

// checkCrop: the crop a read names is the item of the same dock and camera
// at the path the read gives, relative to the log's folder, and its file is
// in the package.
func (v *verifier) checkCrop(n int, src custody.Item, name string, f Fact, byID map[string]*itemData, carried map[string]bool) {
	c, ok := byID[f.CropItem]
	switch {
	case !ok || !carried[f.CropItem]:
		v.problem(factsName, "line %d: names crop item %q, whose file the package does not carry", n, f.CropItem)
	case c.item.SourcePath != path.Join(path.Dir(src.SourcePath), name) || c.item.Camera != src.Camera || c.item.DockSeq != src.DockSeq ||
		c.item.Host != src.Host:
		v.problem(factsName, "line %d: crop item %s is %s of camera %s (dock record %d of %s), not %q beside %s of camera %s (dock record %d of %s)",
			n, f.CropItem, c.item.SourcePath, c.item.Camera, c.item.DockSeq, c.item.Host, name, src.SourcePath, src.Camera, src.DockSeq, src.Host)
	case f.CropFile != footagePath(c.item):
		v.problem(factsName, "line %d: crop file %q, want %q", n, f.CropFile, footagePath(c.item))
	}
}

// parseSource parses a source file of the package and returns its facts by
// offset (those in need); nil when it cannot be (an unknown parser, an unreadable file).
// A file that does not hash to its recorded SHA-256 is already named by
// the item check; its facts are still compared, so an edited line is named
// too.
func (v *verifier) parseSource(it custody.Item, kind sidecar.Kind, need map[int64]bool) map[int64]sidecar.Fact {
	p, err := sidecar.New(kind)
	if err != nil {
		return nil
	}
	name := footagePath(it)
	fh, err := os.Open(filepath.Join(v.dir, filepath.FromSlash(name)))
	if err != nil {
		return nil
	}
	defer fh.Close()
	sum, _ := digest.ParseHex(it.SHA256)
	out := map[int64]sidecar.Fact{}
	if _, err := p.Parse(v.ctx, sidecar.Input{SHA256: sum, R: fh}, func(f sidecar.Fact) error {
		if at := f.Prov().Offset; need[at] {
			out[at] = f
		}
		return nil
	}); err != nil {
		v.problem(name, "cannot be parsed as %s: %v", kind, err)
		return nil
	}
	return out
}

// factDiff names the first field of a fact that differs from the file's.
func factDiff(got, want Fact) string {
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	var gm, wm map[string]any
	_ = json.Unmarshal(gb, &gm)
	_ = json.Unmarshal(wb, &wm)
	var keys []string
	for k := range gm {
		keys = append(keys, k)
	}
	for k := range wm {
		if _, ok := gm[k]; !ok {
			keys = append(keys, k)
		}
	}
	var diffs []string
	for _, k := range sortedUnique(keys) {
		if fmt.Sprint(gm[k]) != fmt.Sprint(wm[k]) {
			diffs = append(diffs, fmt.Sprintf("%s is %v, the file says %v", k, orNone(gm[k]), orNone(wm[k])))
		}
	}
	return strings.Join(diffs, "; ")
}

func orNone(v any) any {
	if v == nil {
		return "(none)"
	}
	return v
}

func sortedUnique(ss []string) []string {
	m := map[string]bool{}
	for _, s := range ss {
		m[s] = true
	}
	return sortedSet(m)
}
