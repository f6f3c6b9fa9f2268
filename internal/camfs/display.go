package camfs

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrDisplayPath: a string is not something DisplayPath produces.
var ErrDisplayPath = errors.New("not a display path")

const hexDigits = "0123456789abcdef"

// DisplayPath turns a raw path (as Walk gives it) into valid UTF-8 for the
// ledger, reports and people, losslessly and reversibly.
//
// The rule: a raw path that is valid UTF-8 and contains no backslash is
// returned unchanged, which is the case for every name a camera writes in
// practice. Otherwise each byte that is not part of a valid UTF-8 sequence
// becomes \xNN (two lower-case hex digits) and each literal backslash
// becomes \\; valid characters are kept as they are. So a display path
// contains a backslash exactly when it was escaped, and ParseDisplayPath
// can always undo it. Control characters (a newline in a name) are valid
// UTF-8 and stay: JSON and CSV encoders quote them.
func DisplayPath(rel string) string {
	if utf8.ValidString(rel) && strings.IndexByte(rel, '\\') < 0 {
		return rel
	}
	var b strings.Builder
	b.Grow(len(rel) + 8)
	for i := 0; i < len(rel); {
		c := rel[i]
		if c == '\\' {
			b.WriteString(`\\`)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(rel[i:])
		if r == utf8.RuneError && n <= 1 {
			b.WriteString(`\x`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
			i++
			continue
		}
		b.WriteString(rel[i : i+n])
		i += n
	}
	return b.String()
}

// ParseDisplayPath reverses DisplayPath. It accepts exactly the strings
// DisplayPath produces (valid UTF-8, escapes only \\ and \xNN with lower-case
// hex, and \xNN only for bytes that do not form valid UTF-8 where they
// stand), so each raw path has one display form and each display form one
// raw path; anything else is ErrDisplayPath.
func ParseDisplayPath(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: %q is not valid UTF-8", ErrDisplayPath, s)
	}
	if strings.IndexByte(s, '\\') < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == '\\':
			b.WriteByte('\\')
			i++
		case i+3 < len(s) && s[i+1] == 'x' && unhex(s[i+2]) >= 0 && unhex(s[i+3]) >= 0:
			b.WriteByte(byte(unhex(s[i+2])<<4 | unhex(s[i+3])))
			i += 3
		default:
			return "", fmt.Errorf("%w: bad escape at byte %d of %q", ErrDisplayPath, i, s)
		}
	}
	raw := b.String()
	if DisplayPath(raw) != s {
		// E.g. \x41 for "A", or \xc3\xa9 for "é": DisplayPath would not
		// write that, and accepting it would give one path two forms.
		return "", fmt.Errorf("%w: %q is not in canonical form", ErrDisplayPath, s)
	}
	return raw, nil
}

// unhex is the value of a lower-case hex digit, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}
