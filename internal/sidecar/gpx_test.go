package sidecar

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/digest"
)

const sampleGPX = `<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="cam" xmlns="http://www.topografix.com/GPX/1/1" xmlns:x="urn:x">
  <wpt lat="-33.9" lon="18.4"><time>2026-12-03T19:00:00Z</time></wpt>
  <trk><name>VEH-017</name><trkseg>
    <trkpt lat="-33.920500" lon="18.423700"><ele>12.5</ele><time>2026-12-03T19:07:09Z</time><x:trkpt lat="1" lon="1"/></trkpt>
    <trkpt lat="-33.920600" lon="18.423900"><time>2026-12-03T19:07:10.500+02:00</time></trkpt>
    <trkpt lat="-33.920700" lon="18.424100"><ele>13</ele></trkpt>
    <trkpt lat="-95" lon="18.4"><time>2026-12-03T19:07:12Z</time></trkpt>
    <trkpt lat="0" lon="0"><time>2026-12-03T19:07:13Z</time></trkpt>
    <trkpt lat="-33.9208" lon="18.4243"><time>2026-12-03 19:07:14</time></trkpt>
    <trkpt lat="-33.9209" lon="18.4244"><ele>high</ele><time>2026-12-03T19:07:15Z</time></trkpt>
    <trkpt lat="-33.9210" lon="18.4245"><time>2026-12-03T19:07:16</time></trkpt>
    <trkpt lat="-33.9211" lon="18.4246"><time>2000-01-01T00:00:00Z</time></trkpt>
  </trkseg></trk>
</gpx>
`

func TestGPXTrackPoints(t *testing.T) {
	data := []byte(sampleGPX)
	facts, sum := parseAll(t, &GPX{}, data)
	fx := fixes(t, facts)
	if len(fx) != 3 {
		t.Fatalf("got %d fixes, want 3: %s", len(fx), sum)
	}
	want := []struct {
		lat, lon float64
		ele      float64
		hasEle   bool
		when     time.Time
	}{
		{-33.9205, 18.4237, 12.5, true, time.Date(2026, 12, 3, 19, 7, 9, 0, time.UTC)},
		{-33.9206, 18.4239, 0, false, time.Date(2026, 12, 3, 17, 7, 10, 5e8, time.UTC)},
		{-33.9210, 18.4245, 0, false, time.Date(2026, 12, 3, 19, 7, 16, 0, time.UTC)}, // no zone: UTC
	}
	for i, w := range want {
		f := fx[i]
		if f.Lat != w.lat || f.Lon != w.lon || f.Ele != w.ele || f.HasEle != w.hasEle || !f.Time.Equal(w.when) || f.Time.Location() != time.UTC {
			t.Errorf("fix %d: %+v, want %+v", i, f, w)
		}
		if !strings.HasPrefix(string(data[f.At.Offset:]), "<trkpt") {
			t.Errorf("fix %d: offset %d points at %.20q", i, f.At.Offset, data[f.At.Offset:])
		}
		if line := int64(strings.Count(string(data[:f.At.Offset]), "\n") + 1); f.At.Line != line || f.At.Source != digest.Bytes(data) {
			t.Errorf("fix %d: line %d, want %d", i, f.At.Line, line)
		}
	}
	wantRejects(t, sum, map[Reason]int64{
		ReasonNoTime: 1, ReasonBadPosition: 1, ReasonNullIsland: 1, ReasonBadTime: 1, ReasonBadField: 1,
		ReasonImplausibleDate: 1,
	})
	checkAccounting(t, sum, len(facts))
	if sum.Bytes != int64(len(data)) {
		t.Errorf("bytes %d, want %d", sum.Bytes, len(data))
	}
}

func TestGPXBadFiles(t *testing.T) {
	cut := sampleGPX[:strings.Index(sampleGPX, `<trkpt lat="-33.920700"`)+10]
	cases := []struct {
		name      string
		r         io.Reader
		wantFacts int
		want      Reason
	}{
		{"truncated keeps the points before", strings.NewReader(cut), 2, ReasonBadXML},
		{"empty", strings.NewReader(""), 0, ReasonBadXML},
		{"garbage", strings.NewReader("\x00\x01<<>>\xff"), 0, ReasonBadXML},
		{"not gpx", strings.NewReader(`<kml><trkpt lat="1" lon="1"><time>2026-01-01T00:00:00Z</time></trkpt></kml>`), 0, ReasonNotGPX},
		{"foreign namespace", strings.NewReader(`<gpx xmlns="urn:other"/>`), 0, ReasonNotGPX},
		{"huge comment", io.MultiReader(strings.NewReader(`<gpx><!--`), &endless{n: 8 << 20, b: 'x'}), 0, ReasonTokenTooLong},
		{"deep nesting", strings.NewReader("<gpx>" + strings.Repeat("<a>", 100)), 0, ReasonTooDeep},
		{"an <ele> in a thousand pieces", strings.NewReader(`<gpx><trk><trkseg><trkpt lat="1" lon="1"><ele>` +
			strings.Repeat("0<!---->", 1000) + `1</ele><time>2026-12-03T19:07:09Z</time></trkpt></trkseg></trk></gpx>`), 0, ReasonBadField},
		{"latin-1", strings.NewReader(`<?xml version="1.0" encoding="ISO-8859-1"?><gpx/>`), 0, ReasonBadXML},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			facts, sum, err := parseReader(&GPX{}, tc.r, digest.Sum{})
			if err != nil {
				t.Fatalf("content problem returned as error: %v", err)
			}
			if len(facts) != tc.wantFacts || sum.Rejects[tc.want] != 1 {
				t.Errorf("%d facts, %s; want %d facts and one %s", len(facts), sum, tc.wantFacts, tc.want)
			}
			checkAccounting(t, sum, len(facts))
		})
	}
}

func TestGPX10AndNoNamespace(t *testing.T) {
	for _, ns := range []string{` xmlns="http://www.topografix.com/GPX/1/0"`, ""} {
		doc := `<gpx` + ns + `><trk><trkseg><trkpt lat="-26.2041" lon="28.0473"><time>2026-12-03T19:07:09Z</time></trkpt></trkseg></trk></gpx>`
		facts, sum := parseAll(t, &GPX{}, []byte(doc))
		if len(facts) != 1 || sum.Rejected() != 0 {
			t.Errorf("namespace %q: %s", ns, sum)
		}
	}
}

// failingReader serves data up to after bytes, then fails as a disk would.
type failingReader struct {
	data  []byte
	after int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.after <= 0 || len(f.data) == 0 {
		return 0, errDisk
	}
	n := copy(p[:min(len(p), f.after)], f.data)
	f.data, f.after = f.data[n:], f.after-n
	return n, nil
}

var errDisk = errors.New("read error: input/output error")

// A failing disk is an error, not a malformed file, for every parser.
func TestReadErrorsAreReturned(t *testing.T) {
	inputs := map[Kind][]byte{
		KindNMEA:      []byte(strings.Repeat(nmea(goodRMC)+"\n", 10)),
		KindGPX:       []byte(sampleGPX),
		KindANPRCSV:   []byte(sampleCSV),
		KindANPRJSONL: []byte(strings.Repeat(`{"time":"2026-12-03T19:07:10Z","plate":"GP JOHN","confidence":0.61,"camera":"VEH-017"}`+"\n", 10)),
		KindMP4:       box("mdat", make([]byte, 1000)),
	}
	for _, k := range Kinds() {
		p, _ := New(k)
		_, sum, err := parseReader(p, &failingReader{data: inputs[k], after: 100}, digest.Sum{})
		if !errors.Is(err, errDisk) || sum.Rejected() != 0 {
			t.Errorf("%s: err %v, %s; want the read error and no reject", k, err, sum)
		}
	}
}
