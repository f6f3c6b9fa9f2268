package export

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/sidecar"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/testutil/sidecarfile"
)

// carFixture is a signed ledger holding one dock of a vehicle camera: a
// recording from 19:00 to 19:15, its ANPR log (a read at 19:07:09 naming a
// crop image, one at 20:30 outside the recording) and the crop, a GPS
// log (two fixes inside the recording, one after it), and a later
// recording (20:00 to 20:15); and a dock of another camera with a
// recording from 19:00 to 19:15.
type carFixture struct {
	l                    *custody.Ledger
	rec, csv, crop, nmea custody.Item
	later, other         custody.Item
	files                memFootage
	from, to             time.Time
}

const carCSV = "time,plate,confidence,region,lat,lon,heading,camera,crop\n" +
	"2026-12-03T21:07:09.120+02:00,CA 123-456,0.93,ZA-WC,-33.9249,18.4241,90,VEH-017,crops/a.jpg\n" +
	"2026-12-03T20:30:00Z,CA 999-999,0.80,ZA-WC,,,,VEH-017,\n"

func newCarFixture(t *testing.T) *carFixture {
	t.Helper()
	l, err := custody.Open(filepath.Join(t.TempDir(), "ledger.db"), custody.Options{Host: host, Signer: newKey(t), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ctx := context.Background()
	start := time.Date(2026, 12, 3, 19, 0, 0, 0, time.UTC)
	f := &carFixture{l: l, files: memFootage{}, from: start, to: start.Add(15 * time.Minute)}
	dock, err := l.Append(ctx, custody.Event{Type: custody.Docked, Actor: "evidenced@" + host, Camera: "CAR-0001", At: start.Add(time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var track bytes.Buffer
	for _, m := range []int{3, 7, 40} {
		track.WriteString(sidecarfile.RMC(start.Add(time.Duration(m)*time.Minute), -33.9249, 18.4241+float64(m)*0.0001) + "\r\n")
	}
	addOf := func(camera string, dock custody.Event) func(src string, b []byte) custody.Item {
		return func(src string, b []byte) custody.Item {
			sum := digest.Bytes(b).Hex()
			it := custody.Item{
				ID: sum[:24], Camera: camera, Kind: "vehicle", SourcePath: src, Size: int64(len(b)), SHA256: sum,
				RecordedAt: start, IngestedAt: start.Add(time.Hour), State: custody.StateVaulted, RetentionClass: "uncategorized", DockSeq: dock.Seq,
			}
			d := map[string]string{"source_path": src, "size": itoa(len(b)), "dock_seq": itoa(int(dock.Seq))}
			if _, err := l.Append(ctx, custody.Event{Type: custody.Copied, Actor: "evidenced@" + host, Camera: camera, Item: it.ID, SHA256: sum, Details: d}, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Append(ctx, custody.Event{Type: custody.Vaulted, Actor: "evidenced@" + host, Camera: camera}, &it); err != nil {
				t.Fatal(err)
			}
			f.files[it.ID] = b
			return it
		}
	}
	add := addOf("CAR-0001", dock)
	f.rec = add("DCIM/VID_0001.MP4", sidecarfile.MP4(f.from, f.to.Sub(f.from), bytes.Repeat([]byte("frame"), 300)))
	f.csv = add("ANPR/READS.CSV", []byte(carCSV))
	f.crop = add("ANPR/crops/a.jpg", []byte("\xff\xd8\xff\xe0 crop"))
	f.nmea = add("GPS/TRACK.NMEA", track.Bytes())
	f.later = add("DCIM/VID_0002.MP4", sidecarfile.MP4(start.Add(time.Hour), 15*time.Minute, bytes.Repeat([]byte("later"), 300)))
	dock2, err := l.Append(ctx, custody.Event{Type: custody.Docked, Actor: "evidenced@" + host, Camera: "CAR-0002", At: start.Add(time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.other = addOf("CAR-0002", dock2)("DCIM/VID_0001.MP4", sidecarfile.MP4(f.from, f.to.Sub(f.from), bytes.Repeat([]byte("other"), 300)))
	return f
}

// resolveCrop finds the crop as the service does: the item of the same
// dock and camera at the path beside the log.
func (f *carFixture) resolveCrop(ctx context.Context, src custody.Item, name string) (string, error) {
	want := path.Join(path.Dir(src.SourcePath), name)
	var id string
	err := f.l.Items(ctx, custody.Filter{Camera: src.Camera}, func(it custody.Item) error {
		if it.DockSeq == src.DockSeq && it.SourcePath == want {
			id = it.ID
		}
		return nil
	})
	return id, err
}

// build gathers the recording's facts and writes the package to a new
// directory.
func (f *carFixture) build(t *testing.T) (string, *FactPlan) {
	t.Helper()
	plan := f.gather(t)
	return f.write(t, plan, false, f.rec.ID), plan
}

// gather gathers the recording's facts as the exporter does.
func (f *carFixture) gather(t *testing.T) *FactPlan {
	t.Helper()
	plan, err := GatherFacts(context.Background(), f.l, f.files, []FactSource{
		{Recording: f.rec.ID, Item: f.csv.ID, Kind: sidecar.KindANPRCSV, From: f.from, To: f.to},
		{Recording: f.rec.ID, Item: f.nmea.ID, Kind: sidecar.KindNMEA, From: f.from, To: f.to},
	}, f.resolveCrop, false)
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// write builds the package of ids with plan's facts in a new directory.
func (f *carFixture) write(t *testing.T, plan *FactPlan, footage bool, ids ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pkg")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(context.Background(), f.l, f.files, NewDirSink(dir), Options{
		IDs: ids, Facts: plan, Footage: footage, ExportedBy: "custodian-1", Reason: "case 2026/200", Tool: "evidenced test",
		Now: time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC),
	}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A recording's export carries the plate read and GPS fixes within its
// span (not those outside it), each naming its source file, hash and line,
// and the CSV, the NMEA log and the crop with their custody; it verifies.
func TestExportCarriesFacts(t *testing.T) {
	f := newCarFixture(t)
	dir, plan := f.build(t)
	if len(plan.Facts) != 3 {
		t.Fatalf("facts: %+v, want the read at 19:07:09 and the fixes at 19:03 and 19:07", plan.Facts)
	}
	read := plan.Facts[2] // after the fixes at 19:03 and 19:07:00
	if read.Kind != FactPlateRead || read.Plate != "CA123456" || read.AsRead != "CA 123-456" || read.Line != 2 || read.Source != f.csv.ID ||
		read.SHA256 != f.csv.SHA256 || read.CropItem != f.crop.ID || read.Time != "2026-12-03T19:07:09.12Z" || read.Recording != f.rec.ID {
		t.Errorf("plate read: %+v", read)
	}
	for _, fx := range plan.Facts[:2] {
		if fx.Kind != FactGPSFix || fx.Source != f.nmea.ID || fx.Time > "2026-12-03T19:15:00Z" {
			t.Errorf("fix: %+v", fx)
		}
	}
	r := mustVerify(t, dir)
	if !r.OK() || r.Facts != 3 || r.Items != 4 || r.Carried != 3 || r.Footage != 0 {
		t.Fatalf("verify: ok %v, %d facts, %d items, %d files, %d footage: %v", r.OK(), r.Facts, r.Items, r.Carried, r.Footage, r.Problems)
	}
	for _, it := range []custody.Item{f.csv, f.crop, f.nmea} {
		b, err := os.ReadFile(filepath.Join(dir, footagePath(it)))
		if err != nil || !bytes.Equal(b, f.files[it.ID]) {
			t.Errorf("%s: %v", footagePath(it), err)
		}
		if _, err := os.Stat(filepath.Join(dir, itemDir(it.ID), "custody.json")); err != nil {
			t.Errorf("%s has no custody in the package: %v", it.SourcePath, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, footagePath(f.rec))); err == nil {
		t.Errorf("the recording's footage is in a package exported without footage")
	}
	report, _ := os.ReadFile(filepath.Join(dir, reportName))
	verifyMD, _ := os.ReadFile(filepath.Join(dir, verifyName))
	if !strings.Contains(string(report), "plate CA123456 read as “CA 123-456”") || !strings.Contains(string(verifyMD), "sed -n '2p' "+footagePath(f.csv)) {
		t.Errorf("report.html / VERIFY.md do not name the plate read:\n%s", verifyMD)
	}
}

// Every way of changing what the package says a file said is named on
// facts.jsonl (or on the file), even with the manifest recomputed.
func TestVerifyRefusesEditedFacts(t *testing.T) {
	f := newCarFixture(t)
	dir, _ := f.build(t)
	for name, c := range map[string]struct {
		file string
		edit func([]byte) []byte
		on   string
		want string
	}{
		"plate edited":      {factsName, replace(`"plate":"CA123456","as_read":"CA 123-456"`, `"plate":"CA123457","as_read":"CA 123-457"`), factsName, "line 3: is not what"},
		"time edited":       {factsName, replace(`19:07:09.12Z`, `19:08:09.12Z`), factsName, "time is 2026-12-03T19:08:09.12Z"},
		"fix moved":         {factsName, onLine(FactGPSFix, `"lat":-33.9249`, `"lat":-33.9248`), factsName, "line 1: is not what"},
		"fact added":        {factsName, addFact(`"line":2`, `"line":3`, `"offset":`), factsName, "has no plate_read at offset 957"},
		"recording unnamed": {factsName, replace(`"recording":"`, `"recording":"0`), factsName, "not a recording of this package"},
		"crop replaced":     {footagePath(f.crop), replace("crop", "fake"), footagePath(f.crop), "not the file that came off the camera"},
		"crop relinked":     {factsName, replace(`"crop_item":"`+f.crop.ID, `"crop_item":"`+f.nmea.ID), factsName, "crop item"},
		"csv line edited":   {footagePath(f.csv), replace("CA 123-456", "CA 123-457"), factsName, "as_read is CA 123-456, the file says CA 123-457"},
	} {
		t.Run(name, func(t *testing.T) {
			d := copyDir(t, dir)
			editFile(t, filepath.Join(d, c.file), c.edit)
			rehash(t, d)
			r := mustVerify(t, d)
			if !problemOn(r, c.on, c.want) {
				t.Errorf("problems %v, want one on %s saying %q", r.Problems, c.on, c.want)
			}
		})
	}
}

// A genuine fact (its line re-parses exactly from its hashed source file)
// re-linked to another recording of the package is named on its line of
// facts.jsonl: to a recording of another camera, or of the same camera but
// whose span (from its own header) does not hold the fact's time. The
// package is otherwise what the exporter writes for that plan (manifest,
// report.html and VERIFY.md consistent with it), as anyone with the tool
// and the genuine files could make it. Without the recordings' footage the
// span cannot be read: the camera is still checked, and a notice says the
// time was not.
func TestVerifyRederivesFactLinks(t *testing.T) {
	f := newCarFixture(t)
	ids := []string{f.rec.ID, f.later.ID, f.other.ID}
	for _, footage := range []bool{true, false} {
		genuine := mustVerify(t, f.write(t, f.gather(t), footage, ids...))
		if !genuine.OK() || genuine.Facts != 3 {
			t.Fatalf("footage %v: the genuine package: %d facts, problems %v", footage, genuine.Facts, genuine.Problems)
		}
		if noted := slices.ContainsFunc(genuine.Notices, func(s string) bool { return strings.Contains(s, "checked by camera only") }); noted == footage {
			t.Errorf("footage %v: notices %v", footage, genuine.Notices)
		}
	}
	for name, c := range map[string]struct {
		to      custody.Item
		footage bool
		want    string // "" when the package verifies
	}{
		"another camera":               {f.other, true, "(camera CAR-0001) to recording " + f.other.ID + " (camera CAR-0002): a fact is linked only to a recording of the same camera"},
		"another camera, no footage":   {f.other, false, "a fact is linked only to a recording of the same camera"},
		"outside the span":             {f.later, true, "to recording " + f.later.ID + ", which spans 2026-12-03T20:00:00Z to 2026-12-03T20:15:00Z (as its header in " + footagePath(f.later) + " says): the fact is not within it"},
		"outside the span, no footage": {f.later, false, ""},
	} {
		t.Run(name, func(t *testing.T) {
			plan := f.gather(t)
			i := slices.IndexFunc(plan.Facts, func(x Fact) bool { return x.Kind == FactPlateRead })
			plan.Facts[i].Recording = c.to.ID
			r := mustVerify(t, f.write(t, plan, c.footage, ids...))
			if c.want == "" {
				if !r.OK() || !slices.ContainsFunc(r.Notices, func(s string) bool { return strings.Contains(s, "checked by camera only") }) {
					t.Errorf("problems %v notices %v, want no problem and the notice that the time was not checked", r.Problems, r.Notices)
				}
				return
			}
			if r.OK() || !problemOn(r, factsName, fmt.Sprintf("line %d: links the plate_read at 2026-12-03T19:07:09.12Z of %s", i+1, f.csv.ID)) || !problemOn(r, factsName, c.want) {
				t.Errorf("problems %v, want one on line %d of %s saying %q", r.Problems, i+1, factsName, c.want)
			}
		})
	}
}

// parsed appends a PARSED record to each recording's custody, as the facts
// step writes it: with the span its header gives (span_from, span_to) when
// spanned, without (a ledger from before spans were recorded) otherwise.
// spans overrides a recording's span (a record that lies).
func (f *carFixture) parsed(t *testing.T, spanned bool, spans map[string][2]time.Time) {
	t.Helper()
	for _, it := range []custody.Item{f.rec, f.later, f.other} {
		sp, ok := spans[it.ID]
		if !ok {
			var info *sidecar.MediaInfo
			p, _ := sidecar.New(sidecar.KindMP4)
			sum, _ := digest.ParseHex(it.SHA256)
			if _, err := p.Parse(context.Background(), sidecar.Input{SHA256: sum, R: bytes.NewReader(f.files[it.ID])}, func(x sidecar.Fact) error {
				if m, ok := x.(*sidecar.MediaInfo); ok && info == nil {
					info = m
				}
				return nil
			}); err != nil || info == nil {
				t.Fatalf("%s: %v", it.ID, err)
			}
			sp[0], sp[1], _ = info.Span()
		}
		d := map[string]string{"kind": "mp4", "parser": "mp4", "parser_version": "1"}
		if spanned {
			d[sidecar.SpanFrom], d[sidecar.SpanTo] = sidecar.FormatSpan(sp[0], sp[1])
		}
		if _, err := f.l.Append(context.Background(), custody.Event{Type: custody.Parsed, Actor: "evidenced@" + host, Camera: it.Camera, Item: it.ID, SHA256: it.SHA256, Details: d}, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// Without the footage, a fact's link to a recording is checked by time
// against the span the recording's signed PARSED record gives: a genuine
// read re-linked to a later recording of the same camera (and dock host)
// fails on its line; the genuine package passes with no notice. A PARSED
// record without a span (an older ledger) leaves the notice that the time
// was not checked. With the footage, a PARSED span the header contradicts
// is a problem naming both.
func TestVerifyChecksSignedSpan(t *testing.T) {
	relinked := func(t *testing.T, f *carFixture, to custody.Item, footage bool) (*Result, int) {
		plan := f.gather(t)
		i := slices.IndexFunc(plan.Facts, func(x Fact) bool { return x.Kind == FactPlateRead })
		plan.Facts[i].Recording = to.ID
		return mustVerify(t, f.write(t, plan, footage, f.rec.ID, f.later.ID, f.other.ID)), i + 1
	}
	notice := func(r *Result) bool {
		return slices.ContainsFunc(r.Notices, func(s string) bool { return strings.Contains(s, "checked by camera only") })
	}
	f := newCarFixture(t)
	f.parsed(t, true, nil)
	genuine := mustVerify(t, f.write(t, f.gather(t), false, f.rec.ID, f.later.ID, f.other.ID))
	if !genuine.OK() || genuine.Facts != 3 || notice(genuine) {
		t.Fatalf("the genuine package without footage: %d facts, problems %v, notices %v", genuine.Facts, genuine.Problems, genuine.Notices)
	}
	r, n := relinked(t, f, f.later, false)
	want := fmt.Sprintf("line %d: links the plate_read at 2026-12-03T19:07:09.12Z of %s to recording %s, which spans 2026-12-03T20:00:00Z to 2026-12-03T20:15:00Z (as its PARSED record (seq ", n, f.csv.ID, f.later.ID)
	if r.OK() || !problemOn(r, factsName, want) {
		t.Errorf("re-linked to a later recording, no footage: problems %v, want one saying %q", r.Problems, want)
	}

	old := newCarFixture(t)
	old.parsed(t, false, nil)
	if r, _ := relinked(t, old, old.later, false); !r.OK() || !notice(r) {
		t.Errorf("PARSED records without a span: problems %v notices %v, want no problem and the notice that the time was not checked", r.Problems, r.Notices)
	}

	lying := newCarFixture(t)
	lying.parsed(t, true, map[string][2]time.Time{lying.rec.ID: {lying.from.Add(-time.Hour), lying.to}})
	r = mustVerify(t, lying.write(t, lying.gather(t), true, lying.rec.ID, lying.later.ID, lying.other.ID))
	head, body := "recording "+lying.rec.ID+": its PARSED record (seq ",
		fmt.Sprintf(") gives the span 2026-12-03T18:00:00Z to 2026-12-03T19:15:00Z, its header in %s gives 2026-12-03T19:00:00Z to 2026-12-03T19:15:00Z", footagePath(lying.rec))
	if r.OK() || !slices.ContainsFunc(r.Problems, func(p Problem) bool {
		return p.File == factsName && strings.HasPrefix(p.Msg, head) && strings.Contains(p.Msg, body)
	}) {
		t.Errorf("a PARSED span the header contradicts: problems %v, want one saying %q…%q", r.Problems, head, body)
	}
}

// addFact appends a copy of the plate read's line with old replaced by
// new and the offset moved: a read the file does not hold.
func addFact(old, new, offsetKey string) func([]byte) []byte {
	return func(b []byte) []byte {
		for _, l := range bytes.SplitAfter(b, []byte("\n")) {
			if bytes.Contains(l, []byte(`"kind":"plate_read"`)) {
				l = bytes.Replace(l, []byte(old), []byte(new), 1)
				l = bytes.Replace(l, []byte(offsetKey), []byte(offsetKey+"9"), 1)
				return append(b, l...)
			}
		}
		return b
	}
}

// onLine replaces old with new in the first line that contains marker.
func onLine(marker, old, new string) func([]byte) []byte {
	return func(b []byte) []byte {
		lines := bytes.SplitAfter(b, []byte("\n"))
		for i, l := range lines {
			if bytes.Contains(l, []byte(marker)) {
				lines[i] = bytes.Replace(l, []byte(old), []byte(new), 1)
				break
			}
		}
		return bytes.Join(lines, nil)
	}
}

// Step 7 of VERIFY.md, followed as written (package verifymd): the fact it
// shows is the first plate read of facts.jsonl, as it says (not the first
// line, a GPS fix here), its line of the ANPR log in the package holds the
// plate as read, that log and the crop hash to their recorded SHA-256, and
// the log and the recording it is linked to came off the same camera;
// every other step holds on the package too. The read re-linked to a
// recording of another camera fails the step. The package carries no
// footage and the ledger no span in its PARSED records (an older one): the
// step's span check says each fact's time is not checked.
func TestVerifyMarkdownFactStep(t *testing.T) {
	needVerifyTools(t)
	f := newCarFixture(t)
	dir, _ := f.build(t)
	genuine := mustVerify(t, dir)
	r := follow(t, dir, signing.Fingerprint(packageKey(t, dir, genuine, 0)))
	if !r.OK() || r.Ran["7"] != 4 || len(r.Unspanned) != genuine.Facts || len(r.InSpan) != 0 {
		t.Fatalf("step 7 ran %d blocks, %d facts in a signed span, %d not checked (package: %d facts); failures:\n%s",
			r.Ran["7"], len(r.InSpan), len(r.Unspanned), genuine.Facts, strings.Join(r.Failures, "\n"))
	}
	// The log's line changed (and the manifest recomputed): the hash of the
	// log no longer matches its COPIED record, nor the line the plate.
	d := copyDir(t, dir)
	editFile(t, filepath.Join(d, filepath.FromSlash(footagePath(f.csv))), replace("CA 123-456", "CA 123-457"))
	rehash(t, d)
	if r := follow(t, d, signing.Fingerprint(packageKey(t, dir, genuine, 0))); r.OK() ||
		!slices.ContainsFunc(r.Failures, func(s string) bool { return strings.HasPrefix(s, "step 7: line 2 of "+footagePath(f.csv)) }) {
		t.Errorf("an edited plate read: failures %v", r.Failures)
	}
	plan := f.gather(t)
	i := slices.IndexFunc(plan.Facts, func(x Fact) bool { return x.Kind == FactPlateRead })
	plan.Facts[i].Recording = f.other.ID
	d = f.write(t, plan, false, f.rec.ID, f.other.ID)
	if r := follow(t, d, signing.Fingerprint(packageKey(t, dir, genuine, 0))); r.OK() ||
		!slices.ContainsFunc(r.Failures, func(s string) bool {
			return strings.HasPrefix(s, fmt.Sprintf("step 7: line %d of facts.jsonl links a fact of %s to %s of another camera", i+1, f.csv.ID, f.other.ID))
		}) {
		t.Errorf("a plate read re-linked to another camera's recording: failures %v", r.Failures)
	}
}

// Step 7 of VERIFY.md on a package without the recordings (as every
// console package is), from a ledger whose PARSED records sign each
// recording's span, followed as written: the example fact's recording's
// PARSED record says the span the file states and the fact lies within
// it, and every fact lies within its recording's signed span. A plate read
// re-linked to a later recording of the same camera (the manifest and
// documents consistent with it, as Build writes them) is within no span
// of it, and following the file catches it on its line of facts.jsonl.
func TestVerifyMarkdownSpanStep(t *testing.T) {
	needVerifyTools(t)
	f := newCarFixture(t)
	f.parsed(t, true, nil)
	dir := f.write(t, f.gather(t), false, f.rec.ID, f.later.ID)
	genuine := mustVerify(t, dir)
	if !genuine.OK() || genuine.Facts != 3 || len(genuine.Notices) != 0 {
		t.Fatalf("genuine package: %d facts, problems %v, notices %v", genuine.Facts, genuine.Problems, genuine.Notices)
	}
	fp := signing.Fingerprint(packageKey(t, dir, genuine, 0))
	r := follow(t, dir, fp)
	if !r.OK() || r.Ran["7"] != 5 || !slices.Equal(r.InSpan, []int{1, 2, 3}) || len(r.Unspanned) != 0 {
		t.Fatalf("step 7 ran %d blocks, facts in a signed span %v, not checked %v; failures:\n%s",
			r.Ran["7"], r.InSpan, r.Unspanned, strings.Join(r.Failures, "\n"))
	}
	plan := f.gather(t)
	i := slices.IndexFunc(plan.Facts, func(x Fact) bool { return x.Kind == FactPlateRead })
	plan.Facts[i].Recording = f.later.ID
	d := f.write(t, plan, false, f.rec.ID, f.later.ID)
	if r := mustVerify(t, d); r.OK() {
		t.Fatal("verify-export accepts the re-linked read")
	}
	r = follow(t, d, fp)
	want := fmt.Sprintf("step 7: facts.jsonl line %d (%s): NOT within the span of records/", i+1, f.later.ID)
	if r.OK() || !slices.ContainsFunc(r.Failures, func(s string) bool { return strings.HasPrefix(s, want) }) {
		t.Errorf("a plate read re-linked outside its recording's span: failures %v, want one starting %q", r.Failures, want)
	}
}
