package sidecar

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/digest"
)

// The fuzz targets check what must hold for any input: no panic, every
// record accounted for, and no fact that the bytes at its provenance do not
// support (a position out of range, an offset that does not point at the
// sentence, element, line or box it names).

func checkPosition(t *testing.T, lat, lon float64) {
	t.Helper()
	if !(math.Abs(lat) <= 90) || !(math.Abs(lon) <= 180) || (lat == 0 && lon == 0) {
		t.Fatalf("position %v,%v emitted", lat, lon)
	}
}

func checkLine(t *testing.T, data []byte, at Provenance) {
	t.Helper()
	if at.Offset < 0 || at.Offset >= int64(len(data)) {
		t.Fatalf("offset %d outside %d bytes", at.Offset, len(data))
	}
	if want := int64(bytes.Count(data[:at.Offset], []byte{'\n'}) + 1); at.Line != want {
		t.Fatalf("offset %d says line %d, it is on line %d", at.Offset, at.Line, want)
	}
}

func FuzzNMEA(f *testing.F) {
	f.Add([]byte(refRMC + "\r\n" + refGGA + "\r\n"))
	f.Add([]byte(nmea(goodRMC) + "\n" + nmea("GNGGA,213001.00,3355.2300,S,01825.4200,E,1,08,0.9,20.1,M,31.0,M,,") + "\n"))
	f.Add([]byte(nmea("GPRMC,235959.00,A,3355.2300,S,01825.4200,E,,,311226,,,A") + "\n" +
		nmea("GPGGA,000000.00,3355.2300,S,01825.4200,E,1,08,0.9,20.1,M,31.0,M,,") + "\n"))
	f.Add([]byte(nmea("GPRMC,120000.00,A,3355.2300,S,01825.4200,E,,,220899,,,A")))
	f.Add([]byte("$GPRMC,2130" + nmea(goodRMC)))
	f.Add([]byte("\x00\xff$GP*00\n$*\n$GPGGA,*"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range []*NMEA{{}, {Options: NMEAOptions{CorrectWeekRollover: true}}} {
			facts, sum := parseAll(t, p, data)
			checkAccounting(t, sum, len(facts))
			if sum.Bytes != int64(len(data)) {
				t.Fatalf("consumed %d of %d bytes", sum.Bytes, len(data))
			}
			for _, fx := range fixes(t, facts) {
				checkPosition(t, fx.Lat, fx.Lon)
				checkLine(t, data, fx.At)
				// A late GGA may take the day before a plausible RMC date.
				if fx.Time.Before(plausibleSince.AddDate(0, 0, -1)) || fx.Time.Location() != time.UTC {
					t.Fatalf("time %v emitted", fx.Time)
				}
				// The offset names a sentence whose checksum holds.
				s := data[fx.At.Offset:]
				star := bytes.IndexByte(s, '*')
				if s[0] != '$' || star < 0 || star+3 > len(s) {
					t.Fatalf("offset %d: %.40q is not a checksummed sentence", fx.At.Offset, s)
				}
				if want, ok := hexByte(s[star+1 : star+3]); !ok || xorSum(s[1:star]) != want {
					t.Fatalf("offset %d: checksum of %.80q does not hold", fx.At.Offset, s)
				}
				if !strings.HasPrefix(string(s[1:]), fx.Sentence+",") {
					t.Fatalf("fix says %s, the bytes say %.10q", fx.Sentence, s)
				}
			}
		}
	})
}

func FuzzGPX(f *testing.F) {
	f.Add([]byte(sampleGPX))
	f.Add([]byte(`<gpx xmlns="http://www.topografix.com/GPX/1/0"><trk><trkseg><trkpt lat="-26.2" lon="28.0"><time>2026-12-03T19:07:09Z</time></trkpt></trkseg></trk></gpx>`))
	f.Add([]byte(`<gpx><trkpt lat="1" lon="1"><time>2026-12-03T19:07:09Z<!---->1</time><ele>1</ele></trkpt></gpx>`))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "b">]><gpx>&a;</gpx>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		facts, sum := parseAll(t, &GPX{}, data)
		checkAccounting(t, sum, len(facts))
		if sum.Bytes > int64(len(data)) {
			t.Fatalf("consumed %d of %d bytes", sum.Bytes, len(data))
		}
		for _, fx := range fixes(t, facts) {
			checkPosition(t, fx.Lat, fx.Lon)
			checkLine(t, data, fx.At)
			if fx.Time.Before(plausibleSince) || fx.Time.Location() != time.UTC || (fx.HasEle && (math.IsNaN(fx.Ele) || math.IsInf(fx.Ele, 0))) {
				t.Fatalf("fix %+v", fx)
			}
			if data[fx.At.Offset] != '<' {
				t.Fatalf("offset %d points at %.20q, not an element", fx.At.Offset, data[fx.At.Offset:])
			}
		}
	})
}

func FuzzANPR(f *testing.F) {
	f.Add([]byte(sampleCSV), false)
	f.Add([]byte(`{"time":"2026-12-03T21:07:09.120+02:00","plate":"CA 123-456","confidence":0.93,"lat":-33.9205,"lon":18.4237,"camera":"VEH-017","crop":"crops/0001.jpg"}`+"\n"+
		`{"time":"2026-12-03T19:07:10Z","plate":"\u0421A 1","confidence":"0.61","camera":"VEH-017"}`), true)
	f.Add([]byte("time,plate,confidence,camera\n2026-12-03T19:07:10Z,\"CA \"\"1\"\"\",1,c\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, jsonl bool) {
		p := &ANPR{Format: ANPRCSV}
		if jsonl {
			p.Format = ANPRJSONL
		}
		facts, sum := parseAll(t, p, data)
		checkAccounting(t, sum, len(facts))
		if sum.Bytes != int64(len(data)) {
			t.Fatalf("consumed %d of %d bytes", sum.Bytes, len(data))
		}
		for _, r := range reads(t, facts) {
			checkLine(t, data, r.At)
			if r.At.Offset > 0 && data[r.At.Offset-1] != '\n' {
				t.Fatalf("offset %d is not the start of a line", r.At.Offset)
			}
			if r.HasPos {
				checkPosition(t, r.Lat, r.Lon)
			}
			if !(r.Confidence >= 0 && r.Confidence <= 1) || r.Time.Before(plausibleSince) || r.Time.Location() != time.UTC || r.Camera == "" ||
				(r.HasHeading && !(r.Heading >= 0 && r.Heading <= 360)) || (r.Crop != "" && !validCrop(r.Crop)) {
				t.Fatalf("read %+v", r)
			}
			norm, err := NormalizePlate(r.AsRead)
			switch {
			case r.PlateIssue == "" && (err != nil || norm != r.Plate):
				t.Fatalf("plate %q normalised to %q, NormalizePlate says %q, %v", r.AsRead, r.Plate, norm, err)
			case r.PlateIssue != "" && (err == nil || r.Plate != ""):
				t.Fatalf("plate %q flagged %s but normalises to %q", r.AsRead, r.PlateIssue, norm)
			}
		}
	})
}

func FuzzMP4(f *testing.F) {
	f.Add(bytes.Join([][]byte{box("ftyp", []byte("isom")), box("mdat", make([]byte, 10)), box("moov", mvhd(0, 1, 2, 1000, 2500))}, nil))
	f.Add(append(box("moov", mvhd(1, 1<<40, 0, 90000, 1<<40)), largeBox("mdat", []byte{1, 2, 3})...))
	f.Add(append(box("moov", box("mvhd", []byte{0, 0, 0, 0, 1})), 0, 0, 0, 0, 'm', 'd', 'a', 't'))
	f.Fuzz(func(t *testing.T, data []byte) {
		seekFacts, seekSum, err1 := parseReader(&MP4{}, bytes.NewReader(data), digest.Sum{})
		pipeFacts, pipeSum, err2 := parseReader(&MP4{}, struct{ *bytes.Reader }{bytes.NewReader(data)}, digest.Sum{})
		if err1 != nil || err2 != nil {
			t.Fatalf("content problem returned as error: %v / %v", err1, err2)
		}
		if !reflect.DeepEqual(seekFacts, pipeFacts) {
			t.Fatalf("seeking and reading through disagree:\n%+v\n%+v", seekFacts, pipeFacts)
		}
		seekSum.Bytes, pipeSum.Bytes = 0, 0 // reading through stops where the data stops
		if !reflect.DeepEqual(seekSum, pipeSum) {
			t.Fatalf("summaries disagree:\n%s\n%s", seekSum, pipeSum)
		}
		if len(seekFacts) > 1 {
			t.Fatalf("%d movie headers emitted", len(seekFacts))
		}
		for _, m := range factsAs[*MediaInfo](t, seekFacts) {
			off := m.At.Offset
			if off < 0 || off+8 > int64(len(data)) || string(data[off+4:off+8]) != "mvhd" {
				t.Fatalf("offset %d does not point at an mvhd box", off)
			}
			if m.Timescale == 0 || m.Duration < 0 || (m.MvhdVersion != 0 && m.MvhdVersion != 1) {
				t.Fatalf("media info %+v", m)
			}
		}
	})
}

func FuzzPlate(f *testing.F) {
	f.Add("CA 123-456", "CA1234S6", "ND 123-456")
	f.Add("СА 123-456", "ca.123.456", "JOHN-GP")
	f.Add("", "\x00", "ABCDEFGHIJKL")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		var ps []Plate
		for _, s := range []string{a, b, c} {
			p, err := NormalizePlate(s)
			hasNonASCII := strings.ContainsFunc(s, func(r rune) bool { return r >= 0x80 })
			if hasNonASCII && err == nil {
				t.Fatalf("non-ASCII %q normalised to %q", s, p)
			}
			if err != nil {
				continue
			}
			if len(p) == 0 || len(p) > MaxPlateLen || strings.ContainsFunc(string(p), func(r rune) bool {
				return !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
			}) {
				t.Fatalf("%q normalised to %q", s, p)
			}
			if again, err := NormalizePlate(string(p)); err != nil || again != p {
				t.Fatalf("not idempotent: %q → %q → %q, %v", s, p, again, err)
			}
			ps = append(ps, p)
		}
		for _, x := range ps {
			for _, y := range ps {
				d := PlateDistance(x, y)
				if d != PlateDistance(y, x) || (d == 0) != (x == y) || d > float64(max(len(x), len(y))) {
					t.Fatalf("PlateDistance(%s, %s) = %v", x, y, d)
				}
				for _, z := range ps {
					if PlateDistance(x, z) > d+PlateDistance(y, z) {
						t.Fatalf("triangle: d(%s,%s) > d(%s,%s) + d(%s,%s)", x, z, x, y, y, z)
					}
				}
				if m := MatchPlates(x, []PlateCandidate{{Plate: y}}, d); len(m) != 1 || m[0].Distance != d {
					t.Fatalf("MatchPlates(%s, %s, %v) = %+v", x, y, d, m)
				}
				if d > 0 {
					if m := MatchPlates(x, []PlateCandidate{{Plate: y}}, d-0.25); len(m) != 0 {
						t.Fatalf("MatchPlates(%s, %s, %v) = %+v, beyond its distance", x, y, d-0.25, m)
					}
				}
			}
		}
	})
}
