package printable

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// Finding 7: a folder named "X\e[2J\e[HSAFE TO UNDOCK" cleared the screen
// in `status`, an --actor with \e[31m coloured `custody`, a USB serial
// with \e[2J was printed raw. Every such value shows as escapes.
func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"BWC-0001":                       "BWC-0001",
		"Sgt. Nomsa Dlamini-Müller":      "Sgt. Nomsa Dlamini-Müller",
		"DCIM/100MEDIA/VID 0001.MP4":     "DCIM/100MEDIA/VID 0001.MP4",
		"X\x1b[2J\x1b[HSAFE TO UNDOCK":   `X\x1b[2J\x1b[HSAFE TO UNDOCK`,
		"a\x1b[31mred":                   `a\x1b[31mred`,
		"BWC\x1b[2J0009":                 `BWC\x1b[2J0009`,
		"new\nline\ttab\rcr\x7fdel\x00":  `new\x0aline\x09tab\x0dcr\x7fdel\x00`,
		"csi\u009b31m":                   `csi\u009b31m`,
		"bad\xff\xfename":                `bad\xff\xfename`,
		"evil\u202egnp.exe":              `evil\u202egnp.exe`,
		"zero\u200bwidth\u2028sep\ufeff": `zero\u200bwidth\u2028sep\ufeff`,
		"tag\U000e0041":                  `tag\ue0041`,
		`back\slash`:                     `back\slash`,
		"":                               "",
	} {
		got := Escape(in)
		if got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
		for _, c := range []byte(got) {
			if c < 0x20 || c == 0x7f {
				t.Errorf("Escape(%q) still holds control byte %#x", in, c)
			}
		}
	}
}

func TestReplaceAttrEscapesLogValues(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: ReplaceAttr}))
	log.Info("docked", "serial", "BWC\u009b2J0009", "err", errors.New("mount X\u202e failed"), "n", 3)
	out := buf.String()
	if strings.ContainsRune(out, '\u009b') || strings.ContainsRune(out, '\u202e') || !strings.Contains(out, `serial=BWC\u009b2J0009`) || !strings.Contains(out, "n=3") {
		t.Errorf("log line %q", out)
	}
}
