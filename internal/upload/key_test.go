package upload

import (
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
)

func TestObjectKeyLayout(t *testing.T) {
	it := custody.Item{ID: "abc123", Camera: "BWC-0001", SourcePath: "DCIM/100MEDIA/VID 0001.Mp4",
		RecordedAt: time.Date(2026, 11, 23, 22, 0, 0, 0, time.FixedZone("SAST", 2*3600))}
	if got, want := ObjectKey(it), "BWC-0001/2026/11/23/abc123.mp4"; got != want {
		t.Errorf("ObjectKey = %q, want %q", got, want)
	}
	it.SourcePath = "weird/name.\xff\\x;rm"
	if got := ObjectKey(it); got != "BWC-0001/2026/11/23/abc123.xrm" {
		t.Errorf("hostile extension leaked into the key: %q", got)
	}
}
