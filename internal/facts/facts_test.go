package facts

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/sidecar"
	"github.com/evidenced/evidenced/internal/testutil/factsdb"
	"github.com/evidenced/evidenced/internal/testutil/sidecarfile"
)

// A corner of Cape Town, and one 5 km away.
const lat, lon = -33.9249, 18.4241

var recStart = time.Date(2026, 12, 3, 19, 0, 0, 0, time.UTC)

// fixture is a real custody ledger and real held copies on disk; open reads
// the files, never a map in memory.
type fixture struct {
	dir   string
	l     *custody.Ledger
	x     *Index
	step  *Step
	ids   map[string]string // source path (camera/path) → item id
	items map[string]custody.Item
}

func profile(kind string) sidecar.Profile {
	p := sidecar.Profile{Name: kind, Rules: []sidecar.Rule{{Glob: "*.mp4", Kind: sidecar.KindMP4}, {Glob: "*.nmea", Kind: sidecar.KindNMEA}}}
	if kind == "vehicle" {
		p.Rules = append(p.Rules, sidecar.Rule{Glob: "ANPR/*.csv", Kind: sidecar.KindANPRCSV})
	}
	return p
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	l, err := custody.Open(filepath.Join(dir, "ledger.db"), custody.Options{Host: "dock-01"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	x, err := Open(filepath.Join(dir, "facts.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	f := &fixture{dir: dir, l: l, x: x, ids: map[string]string{}, items: map[string]custody.Item{}}
	f.step = &Step{Index: x, Ledger: l, Profile: profile, Actor: "evidenced@dock-01", Open: func(_ context.Context, it custody.Item) (io.ReadCloser, error) {
		return os.Open(filepath.Join(dir, "held", it.ID))
	}}
	return f
}

// vault records a DOCKED (once per call) and a VAULTED item per file and
// writes each file as its held copy.
func (f *fixture) vault(t *testing.T, camera, kind string, files map[string][]byte) []string {
	t.Helper()
	ctx := context.Background()
	dock, err := f.l.Append(ctx, custody.Event{Type: custody.Docked, Actor: "t", Camera: camera}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for path, data := range files {
		sum := digest.Bytes(data).Hex()
		id := custody.ItemID(camera, path, int64(len(data)), recStart)
		it := custody.Item{ID: id, Camera: camera, Kind: kind, AssignedTo: "x", SourcePath: path, Size: int64(len(data)), SHA256: sum,
			RecordedAt: recStart, State: custody.StateVaulted, RetentionClass: "uncategorized", DockSeq: dock.Seq}
		if _, err := f.l.Append(ctx, custody.Event{Type: custody.Vaulted, Actor: "t", Camera: camera}, &it); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(f.dir, "held"), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(f.dir, "held", id), data, 0o440); err != nil {
			t.Fatal(err)
		}
		f.ids[camera+"/"+path] = id
		f.items[id] = it
		ids = append(ids, id)
	}
	return ids
}

func nmeaLog() []byte {
	var b bytes.Buffer
	for i := range 5 {
		b.WriteString(sidecarfile.RMC(recStart.Add(time.Duration(60+i*60)*time.Second), lat+float64(i)*0.0001, lon) + "\r\n")
	}
	bad := sidecarfile.RMC(recStart.Add(7*time.Minute), lat, lon)
	b.WriteString(bad[:len(bad)-2] + "00\r\n")                    // wrong checksum
	b.WriteString("$GPRMC," + strings.Repeat("9", 5000) + "\r\n") // a huge line
	b.WriteString("$GPRMC,\xff\xfe\x1b[31m*00\r\n")               // invalid UTF-8 and a terminal escape
	return b.Bytes()
}

const anprCSV = "time,plate,confidence,region,lat,lon,heading,camera,crop\n" +
	"2026-12-03T21:03:00+02:00,CA 123-456,0.91,ZA-WC,-33.9249,18.4241,90,VEH-017,crops/a.jpg\n" +
	"2026-12-03T19:30:00Z,CA 999-111,0.80,ZA-WC,,,,VEH-017,\n" +
	"2026-12-03T19:04:00Z,\"\x1b]0;pwned\x07CA1\",0.70,ZA-WC,,,,VEH-017,\n" +
	"2026-12-03T19:05:00Z,CA 1\xff3,0.70,ZA-WC,,,,VEH-017,\n" +
	"not a time,CA 123-456,0.5,,,,,VEH-017,\n"

func (f *fixture) car(t *testing.T) {
	t.Helper()
	f.vault(t, "CAR-0001", "vehicle", map[string][]byte{
		"DCIM/100MEDIA/VID_0001.mp4": sidecarfile.MP4(recStart, 10*time.Minute, []byte("car footage")),
		"GPS/track.nmea":             nmeaLog(),
		"ANPR/reads.csv":             []byte(anprCSV),
	})
	// Another camera recording at the same time elsewhere: never linked to
	// the car's reads or fixes.
	f.vault(t, "BWC-0001", "body", map[string][]byte{
		"DCIM/100MEDIA/VID_0009.mp4": sidecarfile.MP4(recStart, 10*time.Minute, []byte("body footage")),
	})
}

func (f *fixture) parseAll(t *testing.T) []Outcome {
	t.Helper()
	outs, err := f.step.CatchUp(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return outs
}

func (f *fixture) custodyOf(t *testing.T, id string, typ custody.EventType) []custody.Event {
	t.Helper()
	evs, err := f.l.Custody(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []custody.Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// Each sidecar is parsed from its held copy and recorded with its parser,
// version, source hash and counts; hostile lines are counted as rejects.
func TestParsedIsCustody(t *testing.T) {
	f := newFixture(t)
	f.car(t)
	if outs := f.parseAll(t); len(outs) != 4 {
		t.Fatalf("parsed %d files, want 4: %+v", len(outs), outs)
	}
	nm := f.ids["CAR-0001/GPS/track.nmea"]
	evs := f.custodyOf(t, nm, custody.Parsed)
	if len(evs) != 1 {
		t.Fatalf("track.nmea has %d PARSED records, want 1", len(evs))
	}
	d := evs[0].Details
	if evs[0].SHA256 != f.items[nm].SHA256 || d["parser"] != "nmea0183" || d["parser_version"] != "1" || d["facts"] != "5" || d["rejected"] != "3" {
		t.Errorf("PARSED = %+v", evs[0])
	}
	for _, r := range []string{"bad_checksum=", "line_too_long=1"} {
		if !strings.Contains(d["rejects"], r) {
			t.Errorf("rejects %q lack %s", d["rejects"], r)
		}
	}
	csv := f.custodyOf(t, f.ids["CAR-0001/ANPR/reads.csv"], custody.Parsed)
	if len(csv) != 1 || csv[0].Details["facts"] != "3" || csv[0].Details["rejects"] != "bad_time=1 bad_utf8=1" || csv[0].Details["flags"] != "plate_bad_char=1" {
		t.Errorf("reads.csv PARSED = %+v", csv)
	}
	// A recording's PARSED record gives its span, as its header does: the
	// signed span verify-export checks a fact's link by when the footage
	// is not in the package. A log's gives none.
	mp4 := f.custodyOf(t, f.ids["CAR-0001/DCIM/100MEDIA/VID_0001.mp4"], custody.Parsed)
	if len(mp4) != 1 || mp4[0].Details[sidecar.SpanFrom] != "2026-12-03T19:00:00Z" || mp4[0].Details[sidecar.SpanTo] != "2026-12-03T19:10:00Z" {
		t.Errorf("VID_0001.mp4 PARSED = %+v, want span_from 2026-12-03T19:00:00Z, span_to 2026-12-03T19:10:00Z", mp4)
	}
	if _, ok := d[sidecar.SpanFrom]; ok {
		t.Errorf("track.nmea PARSED gives a span: %v", d)
	}
	// A second pass finds everything indexed and records nothing more.
	if outs := f.parseAll(t); len(outs) != 0 {
		t.Errorf("second catch-up parsed again: %+v", outs)
	}
	if n := len(f.custodyOf(t, nm, custody.Parsed)); n != 1 {
		t.Errorf("%d PARSED records after a second pass, want 1", n)
	}
}

// A plate read is found exactly, in its other spellings and with one OCR
// error, and leads to the recording of the same camera covering its time.
func TestFindPlateLinksRecording(t *testing.T) {
	f := newFixture(t)
	f.car(t)
	f.parseAll(t)
	rec := f.ids["CAR-0001/DCIM/100MEDIA/VID_0001.mp4"]
	csv := f.ids["CAR-0001/ANPR/reads.csv"]
	ctx := context.Background()
	for _, q := range []struct {
		asked string
		fuzzy bool
		dist  float64
	}{{"CA123456", false, 0}, {"CA 123-456", false, 0}, {"ca.123.456", false, 0}, {"CA 12E-456", true, 1}, {"CA I23-456", true, 0.25}, {"CA 1234567", true, 1}} {
		p, err := sidecar.NormalizePlate(q.asked)
		if err != nil {
			t.Fatal(err)
		}
		hits, err := f.x.FindPlate(ctx, PlateQuery{Plate: p, Fuzzy: q.fuzzy})
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) != 1 {
			t.Errorf("%q: %d hits, want 1: %+v", q.asked, len(hits), hits)
			continue
		}
		h := hits[0]
		if h.Recording != rec || h.Source.Item != csv || h.Source.SHA256 != f.items[csv].SHA256 || h.Plate.AsRead != "CA 123-456" ||
			h.Distance != q.dist || h.Line != 2 || !h.Time.Equal(recStart.Add(3*time.Minute)) {
			t.Errorf("%q: hit %+v (plate %+v), want recording %s from %s at distance %v", q.asked, h, h.Plate, rec, csv, q.dist)
		}
	}
	// Without --fuzzy an OCR error finds nothing; two edits are out of reach.
	for _, q := range []PlateQuery{{Plate: "CA12E456"}, {Plate: "CA12E45G", Fuzzy: true}} {
		if hits, _ := f.x.FindPlate(ctx, q); len(hits) != 0 {
			t.Errorf("%+v: %d hits, want none", q, len(hits))
		}
	}
	// A read outside every recording is still found, with no recording.
	hits, err := f.x.FindPlate(ctx, PlateQuery{Plate: "CA999111"})
	if err != nil || len(hits) != 1 || hits[0].Recording != "" {
		t.Errorf("CA999111: %+v %v, want one hit without a recording", hits, err)
	}
	// The time window bounds the reads.
	if hits, _ := f.x.FindPlate(ctx, PlateQuery{Plate: "CA123456", Since: recStart.Add(4 * time.Minute)}); len(hits) != 0 {
		t.Errorf("since after the read: %d hits", len(hits))
	}
}

// The camera's GPS track puts the recording near the corner in its window;
// a far point, another evening or a small radius elsewhere do not.
func TestFindNearLinksRecording(t *testing.T) {
	f := newFixture(t)
	f.car(t)
	f.parseAll(t)
	rec := f.ids["CAR-0001/DCIM/100MEDIA/VID_0001.mp4"]
	ctx := context.Background()
	n := sidecar.Near{Lat: lat, Lon: lon, Radius: 300, Since: recStart, Until: recStart.Add(time.Hour)}
	hits, err := f.x.FindNear(ctx, n, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 1 || hits[0].Recording != rec || hits[0].Fixes != 5 || hits[0].Metres > 1 || hits[0].Source.Item != f.ids["CAR-0001/GPS/track.nmea"] {
		t.Fatalf("near: %+v, want the car's recording with its 5 fixes", hits)
	}
	for name, q := range map[string]sidecar.Near{
		"5 km away":     {Lat: lat + 0.045, Lon: lon, Radius: 300, Since: n.Since, Until: n.Until},
		"next evening":  {Lat: lat, Lon: lon, Radius: 300, Since: n.Since.Add(24 * time.Hour), Until: n.Until.Add(24 * time.Hour)},
		"just too far":  {Lat: lat + 0.0035, Lon: lon, Radius: 300, Since: n.Since, Until: n.Until},
		"before it all": {Lat: lat, Lon: lon, Radius: 300, Until: recStart},
	} {
		if hits, err := f.x.FindNear(ctx, q, 0); err != nil || len(hits) != 0 {
			t.Errorf("%s: %+v %v, want none", name, hits, err)
		}
	}
}

// A rebuild from the held copies gives the same index, byte for byte, and
// records no parse twice.
func TestRebuildGivesSameIndex(t *testing.T) {
	f := newFixture(t)
	f.car(t)
	f.parseAll(t)
	before := dump(t, f.x)
	if len(before) < 10 {
		t.Fatalf("index has only %d entries", len(before))
	}
	rep, err := f.step.Rebuild(context.Background(), "custodian", nil)
	if err != nil {
		t.Fatal(err)
	}
	if after := dump(t, f.x); after != before {
		t.Errorf("rebuilt index differs:\nbefore %d bytes\nafter  %d bytes", len(before), len(after))
	}
	if rep.Files != 4 || rep.Recorded != 0 {
		t.Errorf("rebuild report %+v, want 4 files, nothing recorded again", rep)
	}
	if n := len(f.custodyOf(t, f.ids["CAR-0001/ANPR/reads.csv"], custody.Parsed)); n != 1 {
		t.Errorf("%d PARSED records after the rebuild, want 1", n)
	}
}

// A file whose facts outgrow one transaction (flushAt) is written in
// several, and the index is the same as from one: nothing of a part-way
// write is lost or written twice. (Not parallel: it lowers flushAt.)
func TestPartWayFlushesGiveTheSameIndex(t *testing.T) {
	f := newFixture(t)
	f.car(t)
	f.parseAll(t)
	want := dump(t, f.x)
	defer func(n int) { flushAt = n }(flushAt)
	flushAt = 2
	if _, err := f.step.Rebuild(context.Background(), "custodian", nil); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, f.x); got != want {
		t.Errorf("written two entries at a time, the index differs:\n%s\nwant\n%s", got, want)
	}
}

func dump(t *testing.T, x *Index) string {
	t.Helper()
	var b strings.Builder
	if err := x.Dump(func(bkt string, k, v []byte) error {
		b.WriteString(bkt + " " + string(k) + " " + string(v) + "\n")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// A held copy that is not the recorded bytes yields no facts; the failure
// is recorded with its reason and nothing else stops.
func TestTamperedCopyParseFailed(t *testing.T) {
	f := newFixture(t)
	f.car(t)
	csv := f.ids["CAR-0001/ANPR/reads.csv"]
	p := filepath.Join(f.dir, "held", csv)
	os.Chmod(p, 0o640)
	if err := os.WriteFile(p, []byte(strings.Replace(anprCSV, "CA 999-111", "CA 999-112", 1)), 0o440); err != nil {
		t.Fatal(err)
	}
	outs := f.parseAll(t)
	if len(outs) != 4 {
		t.Fatalf("outcomes %+v", outs)
	}
	evs := f.custodyOf(t, csv, custody.ParseFailed)
	if len(evs) != 1 || !strings.Contains(evs[0].Details["reason"], "not the recorded") || len(f.custodyOf(t, csv, custody.Parsed)) != 0 {
		t.Fatalf("custody of the tampered file: %+v", evs)
	}
	for _, pl := range []sidecar.Plate{"CA999112", "CA999111", "CA123456"} {
		if hits, _ := f.x.FindPlate(context.Background(), PlateQuery{Plate: pl}); len(hits) != 0 {
			t.Errorf("%s found from a tampered copy: %+v", pl, hits)
		}
	}
	// The other files of the dock were parsed all the same.
	if len(f.custodyOf(t, f.ids["CAR-0001/GPS/track.nmea"], custody.Parsed)) != 1 {
		t.Errorf("track.nmea not parsed after the csv failed")
	}
	// A copy the vault released is left alone by the daemon's catch-up
	// (nothing recorded) and is a failure on record in a rebuild that
	// finds it nowhere.
	body := f.ids["BWC-0001/DCIM/100MEDIA/VID_0009.mp4"]
	os.Remove(filepath.Join(f.dir, "held", body))
	f.x.clear()
	if outs := f.parseAll(t); len(outs) != 3 || len(f.custodyOf(t, body, custody.ParseFailed)) != 0 {
		t.Errorf("catch-up over a released copy: %+v", outs)
	}
	if _, err := f.step.Rebuild(context.Background(), "custodian", nil); err != nil {
		t.Fatal(err)
	}
	if evs := f.custodyOf(t, f.ids["BWC-0001/DCIM/100MEDIA/VID_0009.mp4"], custody.ParseFailed); len(evs) != 1 || !strings.Contains(evs[0].Details["reason"], "open the held copy") {
		t.Errorf("missing copy: %+v", evs)
	}
}

// A rebuild parses a file the vault released from the object store's copy
// (still checked against the recorded hash); the daemon's catch-up never
// downloads it.
func TestRebuildReadsReleasedFromStore(t *testing.T) {
	f := newFixture(t)
	f.car(t)
	rec := f.ids["CAR-0001/DCIM/100MEDIA/VID_0001.mp4"]
	stored := filepath.Join(f.dir, "stored")
	os.MkdirAll(stored, 0o750)
	if err := os.Rename(filepath.Join(f.dir, "held", rec), filepath.Join(stored, rec)); err != nil {
		t.Fatal(err)
	}
	remote := 0
	f.step.Remote = func(_ context.Context, it custody.Item) (io.ReadCloser, error) {
		remote++
		return os.Open(filepath.Join(stored, it.ID))
	}
	f.parseAll(t)
	if remote != 0 || len(f.custodyOf(t, rec, custody.Parsed)) != 0 {
		t.Fatalf("catch-up read the store %d times", remote)
	}
	if _, err := f.step.Rebuild(context.Background(), "custodian", nil); err != nil {
		t.Fatal(err)
	}
	if remote != 1 || len(f.custodyOf(t, rec, custody.Parsed)) != 1 {
		t.Fatalf("rebuild: %d store reads, custody %v", remote, f.custodyOf(t, rec, custody.Parsed))
	}
	hits, err := f.x.FindPlate(context.Background(), PlateQuery{Plate: "CA123456"})
	if err != nil || len(hits) != 1 || hits[0].Recording != rec {
		t.Errorf("after the rebuild the read links to %+v (%v), want %s", hits, err, rec)
	}
}

// A held copy that cannot be read now (at a console: an item whose upload
// is not recorded yet) is no finding about the file: nothing is recorded,
// nothing indexed, not even in a rebuild, and the next catch-up parses it.
func TestUnavailableCopyIsParsedLater(t *testing.T) {
	f := newFixture(t)
	f.car(t)
	csv := f.ids["CAR-0001/ANPR/reads.csv"]
	open := f.step.Open
	f.step.Open = func(ctx context.Context, it custody.Item) (io.ReadCloser, error) {
		if it.ID == csv {
			return nil, fmt.Errorf("item %s: no upload recorded yet: %w", it.ID, ErrUnavailable)
		}
		return open(ctx, it)
	}
	for _, pass := range []string{"catch-up", "rebuild"} {
		var err error
		if pass == "rebuild" {
			var rep RebuildReport
			rep, err = f.step.Rebuild(context.Background(), "custodian", nil)
			if rep.Files != 3 || rep.Failed != 0 {
				t.Errorf("rebuild without the unavailable copy: %+v, want the 3 others parsed", rep)
			}
		} else {
			_, err = f.step.CatchUp(context.Background())
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, have, _ := f.x.Source(csv); have || len(f.custodyOf(t, csv, custody.ParseFailed))+len(f.custodyOf(t, csv, custody.Parsed)) != 0 {
			t.Fatalf("%s: an unavailable copy was indexed or recorded (indexed %v)", pass, have)
		}
	}
	f.step.Open = open
	if outs, err := f.step.Items(context.Background(), []string{csv, "0123456789abcdef01234567"}); err != nil || len(outs) != 1 || outs[0].Failed != "" || outs[0].Skipped {
		t.Fatalf("queued again once available (and an item the ledger does not serve passed over): %+v, %v", outs, err)
	}
	if hits, _ := f.x.FindPlate(context.Background(), PlateQuery{Plate: "CA123456"}); len(hits) != 1 {
		t.Errorf("after the later parse: %+v", hits)
	}
}

// cutReader returns the first n bytes of r, then err.
type cutReader struct {
	r   io.ReadCloser
	n   int
	err error
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, c.err
	}
	if len(p) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

func (c *cutReader) Close() error { return c.r.Close() }

// A held copy whose reading stops part-way because its source stopped
// answering (ErrUnavailable from the reader, however the parser reports
// it) is skipped like one that could not be opened; any other read error
// is a failed parse on record.
func TestCopyCutShortIsParsedLater(t *testing.T) {
	f := newFixture(t)
	f.car(t)
	open := f.step.Open
	cut := func(why error) {
		f.step.Open = func(ctx context.Context, it custody.Item) (io.ReadCloser, error) {
			rc, err := open(ctx, it)
			if err != nil {
				return nil, err
			}
			return &cutReader{r: rc, n: 40, err: why}, nil
		}
	}
	cut(fmt.Errorf("connection reset: %w", ErrUnavailable))
	outs, err := f.step.CatchUp(context.Background())
	if err != nil || len(outs) != 4 {
		t.Fatalf("catch-up over copies cut short: %+v, %v", outs, err)
	}
	for _, o := range outs {
		if !o.Skipped || !o.Unavailable || o.Recorded {
			t.Errorf("%s: a copy cut short is not left for later: %+v", o.Item, o)
		}
	}
	for id := range f.items {
		if _, have, _ := f.x.Source(id); have || len(f.custodyOf(t, id, custody.ParseFailed))+len(f.custodyOf(t, id, custody.Parsed)) != 0 {
			t.Fatalf("%s: a copy cut short was indexed or recorded", f.items[id].SourcePath)
		}
	}
	cut(io.ErrUnexpectedEOF)
	outs, err = f.step.CatchUp(context.Background())
	if err != nil || len(outs) != 4 {
		t.Fatalf("catch-up over broken copies: %+v, %v", outs, err)
	}
	for _, o := range outs {
		if o.Failed == "" {
			t.Errorf("%s: a broken read was not a failed parse: %+v", o.Item, o)
		}
	}
}

// The parse loop tries a copy that was not available again at its next
// wake, without the item being queued again.
func TestRunRetriesUnavailable(t *testing.T) {
	f := newFixture(t)
	f.car(t)
	csv := f.ids["CAR-0001/ANPR/reads.csv"]
	open := f.step.Open
	var mu sync.Mutex
	down := true
	f.step.Open = func(ctx context.Context, it custody.Item) (io.ReadCloser, error) {
		mu.Lock()
		defer mu.Unlock()
		if down && it.ID == csv {
			return nil, fmt.Errorf("503: %w", ErrUnavailable)
		}
		return open(ctx, it)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.step.Run(ctx) }()
	defer func() { cancel(); <-done }()
	indexed := func(id string) bool {
		_, have, err := f.x.Source(id)
		return err == nil && have
	}
	deadline := time.Now().Add(10 * time.Second)
	for !indexed(f.ids["CAR-0001/GPS/track.nmea"]) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if indexed(csv) || !indexed(f.ids["CAR-0001/GPS/track.nmea"]) {
		t.Fatalf("catch-up: csv indexed %v while unavailable", indexed(csv))
	}
	mu.Lock()
	down = false
	mu.Unlock()
	f.step.Queue(nil) // a wake with nothing new (a console's sync)
	for !indexed(csv) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !indexed(csv) || len(f.custodyOf(t, csv, custody.Parsed)) != 1 {
		t.Fatalf("the csv was not parsed at the next wake once available")
	}
}

// Linked gives a recording's span and its camera's parsed sidecar files
// (the export re-derives the facts in the span from them), never another
// camera's files or the recordings themselves; a sidecar file or an
// unknown id is no recording.
func TestLinkedNamesTheCamerasSidecars(t *testing.T) {
	f := newFixture(t)
	f.car(t)
	f.vault(t, "BWC-0002", "body", map[string][]byte{"GPS/track.nmea": nmeaLog()})
	f.parseAll(t)
	ctx := context.Background()
	rec := f.ids["CAR-0001/DCIM/100MEDIA/VID_0001.mp4"]
	l, ok, err := f.x.Linked(ctx, rec)
	if err != nil || !ok {
		t.Fatalf("Linked(%s): %v %v", rec, ok, err)
	}
	var got []string
	for _, s := range l.Sources {
		got = append(got, s.SourcePath)
		if k, ok := sidecar.KindOf(s.Parser); !ok || (k != sidecar.KindNMEA && k != sidecar.KindANPRCSV) {
			t.Errorf("%s: parser %q is kind %q", s.SourcePath, s.Parser, k)
		}
	}
	// Each source carries the span of its indexed facts: a file whose
	// facts all lie outside a window need not be read for it.
	spans := map[string][2]time.Time{
		"GPS/track.nmea": {recStart.Add(time.Minute), recStart.Add(5 * time.Minute)},
		"ANPR/reads.csv": {recStart.Add(3 * time.Minute), recStart.Add(30 * time.Minute)},
	}
	for _, s := range l.Sources {
		w := spans[s.SourcePath]
		if !s.First.Equal(w[0]) || !s.Last.Equal(w[1]) {
			t.Errorf("%s: facts from %v to %v, want %v to %v", s.SourcePath, s.First, s.Last, w[0], w[1])
		}
		if !s.MayHold(w[1], w[1].Add(time.Hour)) || !s.MayHold(w[0].Add(-time.Hour), w[0]) || s.MayHold(w[1].Add(time.Nanosecond), w[1].Add(time.Hour)) {
			t.Errorf("%s: MayHold does not follow its span %v to %v", s.SourcePath, w[0], w[1])
		}
	}
	if !(Source{}).MayHold(recStart, recStart) {
		t.Error("a source indexed without a span is skipped")
	}
	slices.Sort(got)
	if l.Camera != "CAR-0001" || !l.Start.Equal(recStart) || !l.End.Equal(recStart.Add(10*time.Minute)) ||
		!slices.Equal(got, []string{"ANPR/reads.csv", "GPS/track.nmea"}) {
		t.Errorf("Linked: %+v (sources %v)", l, got)
	}
	for _, id := range []string{f.ids["CAR-0001/ANPR/reads.csv"], "0123456789abcdef01234567", "not an id"} {
		if _, ok, err := f.x.Linked(ctx, id); ok || err != nil {
			t.Errorf("Linked(%q): %v %v, want no recording", id, ok, err)
		}
	}
}

// An index written before sources kept their span of facts gets the spans
// at its next open, the same a parse gives, without a reindex: the export
// then skips the files outside a recording's span (Source.MayHold) as it
// does for files indexed since.
func TestOpenFillsSpansOfAnOlderIndex(t *testing.T) {
	f := newFixture(t)
	f.car(t)
	f.vault(t, "BWC-0002", "body", map[string][]byte{"GPS/track.nmea": nmeaLog()})
	f.parseAll(t)
	sources := func() map[string]Source {
		out := map[string]Source{}
		for _, id := range f.ids {
			s, ok, err := f.x.Source(id)
			if err != nil || !ok {
				t.Fatalf("source %s: %v %v", id, ok, err)
			}
			out[id] = s
		}
		return out
	}
	want := sources()
	path := f.x.Path()
	if err := f.x.Close(); err != nil {
		t.Fatal(err)
	}
	n, err := factsdb.ForgetSpans(path)
	if err != nil || n != 3 { // the CSV and the two NMEA logs; MP4s have none
		t.Fatalf("forget the spans: %d, %v; want 3", n, err)
	}
	x, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	f.x = x
	got := sources()
	for id, w := range want {
		if g := got[id]; fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("%s after the upgrade: %+v, want %+v", f.items[id].SourcePath, g, w)
		}
	}
	if rec := got[f.ids["CAR-0001/ANPR/reads.csv"]]; rec.MayHold(recStart.Add(31*time.Minute), recStart.Add(time.Hour)) {
		t.Errorf("the CSV (reads up to +30 min) may hold facts after them: span %v to %v", rec.First, rec.Last)
	}
}
