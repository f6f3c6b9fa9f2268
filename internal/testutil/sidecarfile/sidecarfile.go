// Package sidecarfile builds small, valid sidecar files for tests: an MP4
// that says when it was recorded and for how long, NMEA sentences with
// their checksums, and GPS fixes in NMEA's degree-minute form.
package sidecarfile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// mp4Epoch is 1904-01-01 UTC, where MP4 times count from.
var mp4Epoch = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)

func box(typ string, payload ...[]byte) []byte {
	body := bytes.Join(payload, nil)
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	return append(append(b, typ...), body...)
}

// MP4 is a minimal ISO-BMFF file: ftyp, an mdat of payload bytes (so that
// two recordings differ in content), and a moov whose version-0 mvhd says
// created and dur (timescale 1000).
func MP4(created time.Time, dur time.Duration, payload []byte) []byte {
	secs := uint32(created.Sub(mp4Epoch) / time.Second)
	h := []byte{0, 0, 0, 0}
	h = binary.BigEndian.AppendUint32(h, secs)
	h = binary.BigEndian.AppendUint32(h, secs)
	h = binary.BigEndian.AppendUint32(h, 1000)
	h = binary.BigEndian.AppendUint32(h, uint32(dur/time.Millisecond))
	return bytes.Join([][]byte{
		box("ftyp", []byte("isom"), []byte{0, 0, 2, 0}, []byte("isomiso2mp41")),
		box("mdat", payload),
		box("moov", box("mvhd", h, make([]byte, 80))),
	}, nil)
}

// Sentence is "$body*CS" with body's NMEA checksum.
func Sentence(body string) string {
	var x byte
	for i := 0; i < len(body); i++ {
		x ^= body[i]
	}
	return fmt.Sprintf("$%s*%02X", body, x)
}

// RMC is a valid $GPRMC sentence for a fix at t, lat, lon (decimal degrees).
func RMC(t time.Time, lat, lon float64) string {
	t = t.UTC()
	return Sentence(fmt.Sprintf("GPRMC,%s.00,A,%s,%s,10.0,90.0,%s,,,A", t.Format("150405"),
		dm(lat, 2, "N", "S"), dm(lon, 3, "E", "W"), t.Format("020106")))
}

// dm writes decimal degrees as NMEA's dddmm.mmmm and a hemisphere. The
// minutes are rounded to the four decimals written before they are
// written, carrying into the degrees: NMEA 0183's minutes are 00 to
// 59.9999, so 33.99999999° is 3400.0000, never 3360.0000 (which a
// receiver does not write, and the parser rightly rejects as a bad
// position).
func dm(v float64, width int, pos, neg string) string {
	h := pos
	if v < 0 {
		h, v = neg, -v
	}
	deg := math.Floor(v)
	min := math.Round((v-deg)*60*1e4) / 1e4
	if min >= 60 {
		deg, min = deg+1, 0
	}
	return fmt.Sprintf("%0*d%07.4f,%s", width, int(deg), min, h)
}
