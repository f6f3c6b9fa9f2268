package facts

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"

	"github.com/evidenced/evidenced/internal/sidecar"
)

// A plate read's value in the plates bucket is a compact binary record
// (plateV1): at 440 M reads, the ≈ 190 bytes of JSON a read took before were
// most of the index. The plate itself is not repeated: it is the key's
// prefix. An index written before keeps its JSON values (they begin with
// '{'); decodePlate reads both, so such an index answers the same without a
// reindex, and a reindex writes the binary form.
//
//	0      plateV1
//	1      flags: 1 has position, 2 lat/lon stored, 4 heading stored,
//	       8 confidence stored
//	       line (uvarint)
//	       as read, region, ANPR camera, crop: each a uvarint length and
//	       its bytes
//	       confidence, lat, lon, heading (float64 bits, big-endian), each
//	       only when its flag is set (a zero is not stored)
const plateV1 = 0x01

const (
	flagHasPos   = 1
	flagLatLon   = 2
	flagHeading  = 4
	flagConfid   = 8
	plateV1Flags = flagHasPos | flagLatLon | flagHeading | flagConfid
)

// appendPlate appends pf's binary record to dst.
func appendPlate(dst []byte, pf *PlateFact) []byte {
	var flags byte
	if pf.HasPos {
		flags |= flagHasPos
	}
	if pf.Lat != 0 || pf.Lon != 0 {
		flags |= flagLatLon
	}
	if pf.Heading != 0 {
		flags |= flagHeading
	}
	if pf.Confidence != 0 {
		flags |= flagConfid
	}
	dst = append(dst, plateV1, flags)
	dst = binary.AppendUvarint(dst, uint64(pf.Line))
	for _, s := range []string{pf.AsRead, pf.Region, pf.ANPRCamera, pf.Crop} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	put := func(f float64) { dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(f)) }
	if flags&flagConfid != 0 {
		put(pf.Confidence)
	}
	if flags&flagLatLon != 0 {
		put(pf.Lat)
		put(pf.Lon)
	}
	if flags&flagHeading != 0 {
		put(pf.Heading)
	}
	return dst
}

var errPlateValue = errors.New("not a plate read record")

// decodePlate reads a plates value (binary, or the JSON of an index written
// before the binary form); plate is the key's plate.
func decodePlate(v []byte, plate sidecar.Plate) (PlateFact, error) {
	var pf PlateFact
	if len(v) > 0 && v[0] == '{' {
		err := json.Unmarshal(v, &pf)
		return pf, err
	}
	if len(v) < 2 || v[0] != plateV1 || v[1]&^plateV1Flags != 0 {
		return pf, errPlateValue
	}
	flags := v[1]
	v = v[2:]
	line, n := binary.Uvarint(v)
	if n <= 0 || line > math.MaxInt64 {
		return pf, errPlateValue
	}
	v = v[n:]
	pf.Line = int64(line)
	for _, s := range []*string{&pf.AsRead, &pf.Region, &pf.ANPRCamera, &pf.Crop} {
		l, n := binary.Uvarint(v)
		if n <= 0 || l > uint64(len(v)-n) {
			return pf, errPlateValue
		}
		*s = string(v[n : n+int(l)])
		v = v[n+int(l):]
	}
	get := func(f *float64) bool {
		if len(v) < 8 {
			return false
		}
		*f = math.Float64frombits(binary.BigEndian.Uint64(v))
		v = v[8:]
		return true
	}
	if flags&flagConfid != 0 && !get(&pf.Confidence) ||
		flags&flagLatLon != 0 && (!get(&pf.Lat) || !get(&pf.Lon)) ||
		flags&flagHeading != 0 && !get(&pf.Heading) || len(v) != 0 {
		return pf, errPlateValue
	}
	pf.HasPos = flags&flagHasPos != 0
	pf.Plate = string(plate)
	return pf, nil
}
