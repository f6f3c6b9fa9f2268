package camfs

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDisplayPath(t *testing.T) {
	tests := []struct{ raw, display string }{
		{"", ""},
		{"DCIM/100MEDIA/VID_0001.MP4", "DCIM/100MEDIA/VID_0001.MP4"},
		{"ünïcødé/日本.mp4", "ünïcødé/日本.mp4"},
		{"new\nline", "new\nline"},
		{"\uFFFD.mp4", "\uFFFD.mp4"}, // a real replacement character is valid UTF-8
		{`back\slash`, `back\\slash`},
		{"bad\xffname", `bad\xffname`},
		{"\xc3", `\xc3`},                 // truncated é
		{"\xc3\xa9\xc3", `é\xc3`},        // valid then truncated
		{"\xed\xa0\x80", `\xed\xa0\x80`}, // UTF-16 surrogate, not valid UTF-8
		{"\\xff", `\\xff`},               // looks like an escape, is not one
		{"a\\\xff", `a\\\xff`},
	}
	for _, tt := range tests {
		got := DisplayPath(tt.raw)
		if got != tt.display {
			t.Errorf("DisplayPath(%q) = %q, want %q", tt.raw, got, tt.display)
		}
		back, err := ParseDisplayPath(got)
		if err != nil || back != tt.raw {
			t.Errorf("ParseDisplayPath(%q) = %q, %v; want %q", got, back, err, tt.raw)
		}
	}
}

func TestParseDisplayPathRejects(t *testing.T) {
	for _, s := range []string{
		`\`, `a\`, `\q`, `\x`, `\x4`, `\xzz`,
		`\xFF`,     // upper case: DisplayPath writes lower case
		`\x41`,     // "A" needs no escape
		`\xc3\xa9`, // "é" needs no escape
		"\xff",     // not valid UTF-8: never a display path
	} {
		if raw, err := ParseDisplayPath(s); !errors.Is(err, ErrDisplayPath) {
			t.Errorf("ParseDisplayPath(%q) = %q, %v; want ErrDisplayPath", s, raw, err)
		}
	}
}

func FuzzDisplayPath(f *testing.F) {
	for _, s := range []string{"", "DCIM/VID.MP4", "\xff\xfe", `a\b`, `\x41`, "é\xc3", strings.Repeat("a", 255)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := DisplayPath(s)
		if !utf8.ValidString(d) {
			t.Fatalf("DisplayPath(%q) = %q is not valid UTF-8", s, d)
		}
		raw, err := ParseDisplayPath(d)
		if err != nil || raw != s {
			t.Fatalf("ParseDisplayPath(DisplayPath(%q)) = %q, %v", s, raw, err)
		}
		// Any string parse accepts is the display form of what it returns.
		if raw, err := ParseDisplayPath(s); err == nil && DisplayPath(raw) != s {
			t.Fatalf("ParseDisplayPath(%q) = %q, whose display form is %q", s, raw, DisplayPath(raw))
		}
	})
}
