package sidecar

import "time"

// plausibleSince is the earliest date a sidecar fact may carry by default.
// No camera in service logged before it; clocks that were never set (1970,
// 2000-01-01) and GPS week rollovers (dates 1024 weeks early) land before it.
var plausibleSince = time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)

// parseTimestamp parses an RFC 3339 timestamp strictly: the exact shape
// YYYY-MM-DDTHH:MM:SS[.fraction] followed by Z or ±HH:MM — time.Parse alone
// also takes one-digit hours and other near-misses. With zoneOptional (GPX,
// whose schema says UTC) a missing zone is UTC. The result is in UTC.
func parseTimestamp(s string, zoneOptional bool) (time.Time, bool) {
	if len(s) < 19 || len(s) > 40 {
		return time.Time{}, false
	}
	for i := 0; i < 19; i++ {
		c := s[i]
		switch i {
		case 4, 7:
			if c != '-' {
				return time.Time{}, false
			}
		case 10:
			if c != 'T' {
				return time.Time{}, false
			}
		case 13, 16:
			if c != ':' {
				return time.Time{}, false
			}
		default:
			if c < '0' || c > '9' {
				return time.Time{}, false
			}
		}
	}
	rest := s[19:]
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 {
			return time.Time{}, false
		}
		rest = rest[n:]
	}
	layout := time.RFC3339Nano
	switch {
	case rest == "" && zoneOptional:
		layout = "2006-01-02T15:04:05.999999999"
	case rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
		isDigits(rest[1:3]) && isDigits(rest[4:6]):
	default:
		return time.Time{}, false
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
