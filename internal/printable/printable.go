// Package printable makes text from outside the host safe to put on a
// terminal or in a log line: a camera's file names, a USB device's serial
// and product strings, an actor or a reason a user typed.
//
// Why: such text reaches `evidenced status`, `custody`, `find` and the logs
// unchanged, and a folder named "X\x1b[2J\x1b[HSAFE TO UNDOCK" clears the
// screen and prints a false all-clear; a right-to-left override makes a
// name read as another. Escape shows every character that is not plainly
// printable as an escape, so what the operator sees is what the camera
// said.
//
// The output is for display, not a reversible encoding: a backslash is
// left as it is. (camfs.DisplayPath is the reversible form of a path, and
// its output passes through Escape unchanged unless it holds control or
// format characters.)
package printable

import (
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// Escape returns s with every byte that is not valid UTF-8 and every rune
// that is not a graphic character or the ASCII space (C0 and C1 controls
// such as ESC and CSI, DEL, format characters such as the bidirectional
// overrides and zero-width spaces, line and paragraph separators, other
// spaces) written as \xNN (a byte, or a rune below U+0080) or \uNNNN. It
// returns s itself when nothing needs escaping.
func Escape(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			writeByte(&b, s[i])
		case keep(r):
			b.WriteString(s[i : i+n])
		case r < utf8.RuneSelf:
			writeByte(&b, byte(r))
		default:
			b.WriteString(`\u`)
			if r > 0xffff {
				b.WriteString(strings.TrimLeft(hex32(uint32(r)), "0"))
			} else {
				b.WriteString(hex32(uint32(r))[4:])
			}
		}
		i += n
	}
	return b.String()
}

func keep(r rune) bool { return r == ' ' || (unicode.IsPrint(r) && r != utf8.RuneError) }

// clean reports that s needs no escaping: plain printable ASCII (the
// common case, checked bytewise), or valid UTF-8 of kept runes only.
func clean(s string) bool {
	ascii := true
	for i := 0; i < len(s) && ascii; i++ {
		ascii = s[i] >= 0x20 && s[i] < 0x7f
	}
	if ascii {
		return true
	}
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !keep(r) {
			return false
		}
	}
	return true
}

func writeByte(b *strings.Builder, c byte) {
	b.WriteString(`\x`)
	b.WriteByte(hexDigits[c>>4])
	b.WriteByte(hexDigits[c&0xf])
}

func hex32(v uint32) string {
	var out [8]byte
	for i := 7; i >= 0; i-- {
		out[i] = hexDigits[v&0xf]
		v >>= 4
	}
	return string(out[:])
}

// ReplaceAttr is a slog.HandlerOptions.ReplaceAttr that escapes every
// string and error value (and the message), so no log line carries a
// camera's or a user's control characters to a terminal or the journal,
// whichever call site logged it.
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	switch v := a.Value; v.Kind() {
	case slog.KindString:
		if s := v.String(); !clean(s) {
			a.Value = slog.StringValue(Escape(s))
		}
	case slog.KindAny:
		if err, ok := v.Any().(error); ok && err != nil {
			if s := err.Error(); !clean(s) {
				a.Value = slog.StringValue(Escape(s))
			}
		}
	}
	return a
}
