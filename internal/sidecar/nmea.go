package sidecar

import (
	"bytes"
	"context"
	"time"
)

// NMEA reasons.
const (
	ReasonNoSentence      Reason = "no_sentence"      // a line with no '$'
	ReasonNoChecksum      Reason = "no_checksum"      // RMC/GGA must carry *hh
	ReasonBadChecksum     Reason = "bad_checksum"     // *hh malformed or not the XOR of the body
	ReasonBadChar         Reason = "bad_char"         // a byte outside printable ASCII in the body
	ReasonNotMeasured     Reason = "not_measured"     // estimated, manual or simulated position
	ReasonNoDate          Reason = "no_date"          // GGA before any RMC gave the date
	ReasonImplausibleDate Reason = "implausible_date" // before NotBefore (GPS week rollover)
	ReasonNullIsland      Reason = "null_island"      // 0°, 0°: a receiver's placeholder, not a place
	FlagRolloverCorrected Reason = "week_rollover_corrected"
)

// NMEAOptions tune date handling; the zero value is the documented default.
type NMEAOptions struct {
	// NotBefore is the earliest plausible date (default 2010-01-01 UTC). A
	// receiver hit by the GPS week-number rollover (its 10-bit week counter
	// wrapped, every 1024 weeks ≈ 19.6 years) reports dates 1024 weeks early;
	// those land before NotBefore.
	NotBefore time.Time
	// CorrectWeekRollover moves such dates forward by whole 1024-week epochs
	// until they reach NotBefore and flags the fixes (Fix.RolloverCorrected,
	// Summary.Flags). Off by default: the sentences are rejected instead,
	// because a corrected date is an inference, not a reading.
	CorrectWeekRollover bool
}

// NMEA parses NMEA 0183 logs: RMC and GGA sentences from the GPS (GP),
// multi-constellation (GN) and other satellite talkers. Other sentences are
// counted as ignored. Every RMC and GGA must carry a valid checksum.
//
// Dates: RMC carries the date (ddmmyy; yy < 80 is 20yy, else 19yy — GPS began
// in 1980); GGA carries only the time of day and takes the date of the last
// accepted RMC. When a GGA's time of day is more than 12 hours earlier than
// the last one seen, midnight has passed since that RMC and the date rolls
// forward one day; more than 12 hours later than the last one, it is a late
// sentence from before midnight and takes the day before; a smaller step
// back (sentences out of order) keeps the date.
// A GGA before any RMC is rejected (no_date): its day is unknown.
//
// RMC and GGA of the same second each yield a Fix (each with its own
// provenance); deduplication is the consumer's choice.
type NMEA struct {
	Options NMEAOptions
}

// nmeaMaxLine caps a line: NMEA allows 82 bytes, loggers add prefixes; 512 is generous.
const nmeaMaxLine = 512

// Name implements Parser.
func (*NMEA) Name() string { return "nmea0183" }

// Version implements Parser.
func (*NMEA) Version() string { return "1" }

var gpsEpochWeeks = 1024 * 7 * 24 * time.Hour

// nmeaState is the date carried from RMC to the following GGAs.
type nmeaState struct {
	haveDate  bool
	date      time.Time     // midnight UTC of the current day
	tod       time.Duration // last time of day seen on that date
	corrected bool          // date came from a rollover correction
}

// Parse implements Parser.
func (p *NMEA) Parse(ctx context.Context, in Input, emit Emit) (sum Summary, err error) {
	sum = newSummary(p, in)
	notBefore := p.Options.NotBefore
	if notBefore.IsZero() {
		notBefore = plausibleSince
	}
	var st nmeaState
	err = eachLine(ctx, in.R, nmeaMaxLine, &sum, func(ln textLine) error {
		fix, reason, ignore := p.sentence(ln, &st, notBefore)
		switch {
		case ignore:
			sum.Ignored++
		case reason != "":
			sum.reject(reason)
		default:
			fix.At = Provenance{Source: in.SHA256, Offset: fix.At.Offset, Line: ln.Line}
			if fix.RolloverCorrected {
				sum.flag(FlagRolloverCorrected)
			}
			return emitFact(&sum, emit, fix)
		}
		return nil
	})
	return sum, err
}

// sentence judges one line: a fix, a reject reason, or ignore.
func (p *NMEA) sentence(ln textLine, st *nmeaState, notBefore time.Time) (*Fix, Reason, bool) {
	if ln.TooLong {
		return nil, ReasonLineTooLong, false
	}
	if len(bytes.TrimSpace(ln.Text)) == 0 {
		return nil, "", true
	}
	// A sentence cut short by a power loss is often followed, on the same
	// line, by the next complete one: start at the last '$'. The checksum
	// decides whether what follows is whole.
	i := bytes.LastIndexByte(ln.Text, '$')
	if i < 0 {
		return nil, ReasonNoSentence, false
	}
	s := bytes.TrimRight(ln.Text[i:], " \t\r")
	offset := ln.Offset + int64(i)
	star := bytes.LastIndexByte(s, '*')
	if star < 0 {
		if isWanted(s[1:]) {
			return nil, ReasonNoChecksum, false
		}
		return nil, "", true
	}
	body := s[1:star]
	for _, c := range body {
		if c < 0x20 || c > 0x7e || c == '*' { // '*' is reserved for the checksum delimiter
			return nil, ReasonBadChar, false
		}
	}
	want, ok := hexByte(s[star+1:])
	if !ok || xorSum(body) != want {
		return nil, ReasonBadChecksum, false
	}
	if !isWanted(body) {
		return nil, "", true
	}
	var fs [24][]byte
	f := splitFields(body, fs[:0])
	var fix *Fix
	var reason Reason
	if bytes.Equal(f[0][2:], []byte("RMC")) {
		fix, reason = rmc(f, st, notBefore, p.Options.CorrectWeekRollover)
	} else {
		fix, reason = gga(f, st)
	}
	if reason != "" {
		return nil, reason, false
	}
	fix.Sentence = sentenceName(f[0])
	fix.At.Offset = offset
	return fix, "", false
}

// isWanted reports whether body (after '$') is an RMC or GGA from a satellite talker.
func isWanted(body []byte) bool {
	if len(body) < 6 || body[5] != ',' {
		return false
	}
	switch string(body[:2]) {
	case "GP", "GN", "GL", "GA", "GB", "BD", "GQ", "GI":
	default:
		return false
	}
	t := string(body[2:5])
	return t == "RMC" || t == "GGA"
}

// sentenceNames interns the names isWanted accepts, so a fix costs one
// allocation, not two.
var sentenceNames = func() map[string]string {
	m := map[string]string{}
	for _, talker := range []string{"GP", "GN", "GL", "GA", "GB", "BD", "GQ", "GI"} {
		for _, typ := range []string{"RMC", "GGA"} {
			m[talker+typ] = talker + typ
		}
	}
	return m
}()

func sentenceName(b []byte) string {
	if s, ok := sentenceNames[string(b)]; ok {
		return s
	}
	return string(b)
}

func xorSum(b []byte) byte {
	var x byte
	for _, c := range b {
		x ^= c
	}
	return x
}

func hexByte(b []byte) (byte, bool) {
	if len(b) != 2 {
		return 0, false
	}
	hi, ok1 := hexDigit(b[0])
	lo, ok2 := hexDigit(b[1])
	return hi<<4 | lo, ok1 && ok2
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func splitFields(b []byte, dst [][]byte) [][]byte {
	for {
		i := bytes.IndexByte(b, ',')
		if i < 0 {
			return append(dst, b)
		}
		dst = append(dst, b[:i])
		b = b[i+1:]
	}
}

// rmc: time, status, lat, N/S, lon, E/W, speed (kn), course, date, magvar, E/W, [mode], [nav status].
func rmc(f [][]byte, st *nmeaState, notBefore time.Time, correct bool) (*Fix, Reason) {
	if len(f) < 10 {
		return nil, ReasonBadField
	}
	switch string(f[2]) {
	case "A":
	case "V":
		return nil, ReasonNoFix
	default:
		return nil, ReasonBadField
	}
	if len(f) > 12 {
		if r := modeReason(f[12]); r != "" {
			return nil, r
		}
	}
	tod, ok := parseTOD(f[1])
	if !ok {
		return nil, ReasonBadTime
	}
	date, ok := parseDDMMYY(f[9])
	if !ok {
		return nil, ReasonBadTime
	}
	corrected := false
	if date.Before(notBefore) {
		if !correct {
			return nil, ReasonImplausibleDate
		}
		for i := 0; i < 8 && date.Before(notBefore); i++ {
			date = date.Add(gpsEpochWeeks)
		}
		if date.Before(notBefore) {
			return nil, ReasonImplausibleDate
		}
		corrected = true
	}
	fix := &Fix{}
	if r := latLon(fix, f[3], f[4], f[5], f[6]); r != "" {
		return nil, r
	}
	if v, ok, bad := optDecimal(f[7]); bad {
		return nil, ReasonBadField
	} else if ok {
		fix.SpeedMS, fix.HasSpeed = v*1852.0/3600.0, true
	}
	if v, ok, bad := optDecimal(f[8]); bad || v >= 360 {
		return nil, ReasonBadField
	} else if ok {
		fix.Course, fix.HasCourse = v, true
	}
	*st = nmeaState{haveDate: true, date: date, tod: tod, corrected: corrected}
	fix.Time = date.Add(tod)
	fix.RolloverCorrected = corrected
	return fix, ""
}

// gga: time, lat, N/S, lon, E/W, quality, satellites, HDOP, altitude, M, separation, M, age, station.
func gga(f [][]byte, st *nmeaState) (*Fix, Reason) {
	if len(f) < 11 {
		return nil, ReasonBadField
	}
	switch string(f[6]) {
	case "1", "2", "3", "4", "5":
	case "0":
		return nil, ReasonNoFix
	case "6", "7", "8":
		return nil, ReasonNotMeasured
	default:
		return nil, ReasonBadField
	}
	tod, ok := parseTOD(f[1])
	if !ok {
		return nil, ReasonBadTime
	}
	fix := &Fix{}
	if r := latLon(fix, f[2], f[3], f[4], f[5]); r != "" {
		return nil, r
	}
	if v, ok, bad := optSignedDecimal(f[9]); bad || (ok && len(f[10]) > 0 && string(f[10]) != "M") {
		return nil, ReasonBadField
	} else if ok {
		fix.Ele, fix.HasEle = v, true
	}
	if !st.haveDate {
		return nil, ReasonNoDate
	}
	date := st.date
	switch {
	case tod+12*time.Hour < st.tod: // midnight passed since the date was learnt
		st.date = st.date.AddDate(0, 0, 1)
		st.tod = tod
		date = st.date
	case tod > st.tod+12*time.Hour: // a late sentence from before the last midnight
		date = st.date.AddDate(0, 0, -1)
	case tod > st.tod:
		st.tod = tod
	}
	fix.Time = date.Add(tod)
	fix.RolloverCorrected = st.corrected
	return fix, ""
}

// modeReason judges the NMEA 2.3 mode indicator: A autonomous, D differential,
// P precise, R/F RTK are measurements; N is no fix; E (dead reckoning), M
// (manual) and S (simulator) are not measurements of where the camera was.
func modeReason(m []byte) Reason {
	switch string(m) {
	case "", "A", "D", "P", "R", "F":
		return ""
	case "N":
		return ReasonNoFix
	case "E", "M", "S":
		return ReasonNotMeasured
	}
	return ReasonBadField
}

func latLon(fix *Fix, lat, ns, lon, ew []byte) Reason {
	if len(lat) == 0 || len(lon) == 0 {
		return ReasonNoFix
	}
	la, ok1 := parseDM(lat, 2, 90)
	lo, ok2 := parseDM(lon, 3, 180)
	if !ok1 || !ok2 {
		return ReasonBadPosition
	}
	switch string(ns) {
	case "N":
	case "S":
		la = -la
	default:
		return ReasonBadPosition
	}
	switch string(ew) {
	case "E":
	case "W":
		lo = -lo
	default:
		return ReasonBadPosition
	}
	if la == 0 && lo == 0 {
		return ReasonNullIsland
	}
	fix.Lat, fix.Lon = la, lo
	return ""
}

// parseDM parses NMEA's degrees-and-minutes (ddmm.mmmm, dddmm.mmmm): up to
// degDigits degree digits, exactly two minute digits before the point, minutes < 60.
func parseDM(b []byte, degDigits int, maxDeg float64) (float64, bool) {
	dot := bytes.IndexByte(b, '.')
	whole := b
	if dot >= 0 {
		whole = b[:dot]
	}
	if len(whole) < 3 || len(whole) > degDigits+2 {
		return 0, false
	}
	v, ok := decimal(b)
	if !ok {
		return 0, false
	}
	deg := float64(int(v / 100))
	min := v - deg*100
	if min >= 60 {
		return 0, false
	}
	d := deg + min/60
	if d > maxDeg {
		return 0, false
	}
	return d, true
}

// decimal parses an unsigned decimal: digits, at most one '.', at least one
// digit. Stricter than strconv.ParseFloat on purpose: no exponents, no "inf",
// no hex, no underscores.
func decimal(b []byte) (float64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v, scale float64 = 0, 1
	seenDot, digits := false, 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			digits++
			v = v*10 + float64(c-'0')
			if seenDot {
				scale *= 10
			}
		case c == '.' && !seenDot:
			seenDot = true
		default:
			return 0, false
		}
	}
	if digits == 0 {
		return 0, false
	}
	return v / scale, true
}

// optDecimal: empty is absent; otherwise it must be a decimal (bad = true if not).
func optDecimal(b []byte) (v float64, ok, bad bool) {
	if len(b) == 0 {
		return 0, false, false
	}
	v, ok = decimal(b)
	return v, ok, !ok
}

func optSignedDecimal(b []byte) (v float64, ok, bad bool) {
	if len(b) > 0 && b[0] == '-' {
		v, ok, bad = optDecimal(b[1:])
		return -v, ok, bad || !ok
	}
	return optDecimal(b)
}

// parseTOD parses hhmmss[.s…] into a time of day.
func parseTOD(b []byte) (time.Duration, bool) {
	if len(b) < 6 {
		return 0, false
	}
	h, ok1 := twoDigits(b[0:2])
	m, ok2 := twoDigits(b[2:4])
	s, ok3 := twoDigits(b[4:6])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || s > 59 {
		return 0, false
	}
	d := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second
	rest := b[6:]
	if len(rest) == 0 {
		return d, true
	}
	if rest[0] != '.' || len(rest) > 10 {
		return 0, false
	}
	frac := time.Duration(0)
	unit := time.Second
	for _, c := range rest[1:] {
		if c < '0' || c > '9' {
			return 0, false
		}
		unit /= 10
		frac += time.Duration(c-'0') * unit
	}
	return d + frac, true
}

// parseDDMMYY parses an RMC date into midnight UTC, refusing impossible days.
func parseDDMMYY(b []byte) (time.Time, bool) {
	if len(b) != 6 {
		return time.Time{}, false
	}
	d, ok1 := twoDigits(b[0:2])
	m, ok2 := twoDigits(b[2:4])
	y, ok3 := twoDigits(b[4:6])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, false
	}
	if y < 80 {
		y += 2000
	} else {
		y += 1900
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d || int(t.Month()) != m {
		return time.Time{}, false // 31 February, month 0 or 13
	}
	return t, true
}

func twoDigits(b []byte) (int, bool) {
	if b[0] < '0' || b[0] > '9' || b[1] < '0' || b[1] > '9' {
		return 0, false
	}
	return int(b[0]-'0')*10 + int(b[1]-'0'), true
}
