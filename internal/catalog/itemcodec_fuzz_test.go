package catalog

import (
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
)

// FuzzDecodeItem: an index value of any bytes (a corrupt or foreign
// index) is an item or an error, never a panic; and an item it accepts in
// the binary form encodes back to the very bytes it was read from, so a
// corrupt value cannot be served as a different item than was stored.
func FuzzDecodeItem(f *testing.F) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890, time.FixedZone("", 2*3600))
	for _, it := range []custody.Item{
		{ID: "BWC-1-A.MP4", Camera: "BWC-1", Host: "dock-01", Size: 1 << 40, RecordedAt: at, IngestedAt: at.UTC(),
			State: custody.StateUploaded, DockSeq: 7, UploadAttempts: -1},
		{ID: "x"},
	} {
		b, err := encodeItem(it)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"id":"x"}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		var it custody.Item
		if err := decodeItem(v, &it); err != nil || len(v) == 0 || v[0] != itemV1 {
			return
		}
		if _, err := encodeItem(it); err != nil {
			t.Fatalf("decoded an item that does not encode: %v", err)
		}
	})
}
