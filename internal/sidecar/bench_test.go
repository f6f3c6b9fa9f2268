package sidecar

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/digest"
)

// Benchmarks report bytes/s of each parser on generated logs of a realistic
// shape (one fix a second, one plate read every few seconds).
//
//	go test -run XXX -bench . -benchtime 2s ./internal/sidecar

var benchStart = time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)

func benchNMEA(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		t := benchStart.Add(time.Duration(i) * time.Second)
		lat := 3355.2300 + float64(i%600)/1000
		b.WriteString(nmea(fmt.Sprintf("GPRMC,%s.00,A,%.4f,S,01825.4200,E,12.5,270.0,%s,,,A", t.Format("150405"), lat, t.Format("020106"))))
		b.WriteString("\r\n")
		b.WriteString(nmea(fmt.Sprintf("GPGGA,%s.00,%.4f,S,01825.4200,E,1,08,0.9,20.1,M,31.0,M,,", t.Format("150405"), lat)))
		b.WriteString("\r\n")
		b.WriteString(nmea("GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00"))
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

func benchGPX(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<gpx version="1.1" creator="bench" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>` + "\n")
	for i := range n {
		fmt.Fprintf(&b, "<trkpt lat=\"%.6f\" lon=\"18.423700\"><ele>%d.5</ele><time>%s</time></trkpt>\n",
			-33.9205+float64(i%600)/1e5, i%50, benchStart.Add(time.Duration(i)*time.Second).Format(time.RFC3339))
	}
	b.WriteString("</trkseg></trk></gpx>\n")
	return b.Bytes()
}

func benchCSV(n int) []byte {
	var b bytes.Buffer
	b.WriteString("time,plate,confidence,region,lat,lon,heading,camera,crop\n")
	for i := range n {
		fmt.Fprintf(&b, "%s,CA %03d-%03d,0.%02d,ZA-WC,-33.920500,18.423700,270,VEH-017,crops/%06d.jpg\n",
			benchStart.Add(time.Duration(i)*3*time.Second).Format(time.RFC3339Nano), i%1000, i/1000%1000, 50+i%50, i)
	}
	return b.Bytes()
}

func benchParse(b *testing.B, p Parser, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var facts int64
	for b.Loop() {
		sum, err := p.Parse(context.Background(), Input{R: bytes.NewReader(data)}, func(Fact) error { return nil })
		if err != nil || sum.Facts == 0 || sum.Rejected() != 0 {
			b.Fatalf("%v %s", err, sum)
		}
		facts = sum.Facts
	}
	b.ReportMetric(float64(facts)*float64(b.N)/b.Elapsed().Seconds(), "facts/s")
}

// BenchmarkSHA256Baseline hashes the NMEA log: the cost the file already
// paid once when it was vaulted, so the parse can be read as a ratio to it.
func BenchmarkSHA256Baseline(b *testing.B) {
	data := benchNMEA(20000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		digest.Bytes(data)
	}
}

func BenchmarkNMEA(b *testing.B)    { benchParse(b, &NMEA{}, benchNMEA(20000)) }
func BenchmarkGPX(b *testing.B)     { benchParse(b, &GPX{}, benchGPX(20000)) }
func BenchmarkANPRCSV(b *testing.B) { benchParse(b, &ANPR{Format: ANPRCSV}, benchCSV(20000)) }
func BenchmarkMP4Header(b *testing.B) {
	benchParse(b, &MP4{}, bytes.Join([][]byte{box("ftyp", []byte("isom")), box("mdat", make([]byte, 1<<20)),
		box("moov", mvhd(0, 1, 1, 1000, 1000), box("trak", make([]byte, 4096)))}, nil))
}

// BenchmarkMatchPlates is a linear fuzzy scan: the cost per candidate that an
// index must keep small by narrowing candidates first.
func BenchmarkMatchPlates(b *testing.B) {
	cands := make([]PlateCandidate, 100000)
	for i := range cands {
		cands[i] = PlateCandidate{Plate: Plate(fmt.Sprintf("CA%06d", i*7919%1000000)), Confidence: float64(i%100) / 100}
	}
	b.ReportAllocs()
	for b.Loop() {
		if m := MatchPlates("CA123456", cands, 1); len(m) == 0 {
			b.Fatal("no match")
		}
	}
	b.ReportMetric(float64(len(cands))*float64(b.N)/b.Elapsed().Seconds(), "candidates/s")
}
