package catalog

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
)

// An item read back from the binary form is served exactly as the same
// item read back from JSON (the form an earlier index holds), every field
// set, a time with an offset and a zero time among them; and a value cut
// short anywhere is an error, never a panic or a shorter item.
func TestItemEncodingRoundTrips(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890, time.FixedZone("", 2*3600))
	for _, it := range []custody.Item{
		{ID: "BWC-1-A.MP4", Camera: "BWC-1", Kind: "body", AssignedTo: "officer-é", SourcePath: "DCIM/A.MP4", Size: 1 << 40,
			SHA256: "ab", RecordedAt: at, IngestedAt: at.UTC().Add(time.Hour), State: custody.StateUploaded, VaultPath: "/v/a",
			ObjectKey: "e/a", VersionID: "v1", RetentionClass: "homicide", RetainUntil: at.Add(24 * time.Hour), Host: "dock-01",
			DockSeq: 1 << 50, UploadAttempts: 3, LastError: "slow"},
		{ID: "x", State: custody.StateVaulted, IngestedAt: at.UTC()},
	} {
		js, err := json.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		var fromJSON, fromBinary custody.Item
		if err := decodeItem(js, &fromJSON); err != nil {
			t.Fatal(err)
		}
		b, err := encodeItem(it)
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != itemV1 {
			t.Fatalf("first byte %d, want the version %d", b[0], itemV1)
		}
		if err := decodeItem(b, &fromBinary); err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(fromJSON)
		c, _ := json.Marshal(fromBinary)
		if string(a) != string(c) || string(a) != string(js) {
			t.Errorf("served from binary:\n%s\nfrom JSON:\n%s\nwant:\n%s", c, a, js)
		}
		for n := range len(b) {
			var short custody.Item
			if err := decodeItem(b[:n], &short); err == nil {
				t.Errorf("%d of %d bytes decoded without an error: %+v", n, len(b), short)
			}
		}
		if err := decodeItem(append(b, 0), new(custody.Item)); err == nil {
			t.Error("a byte after the item was not an error")
		}
	}
	if err := decodeItem([]byte{2, 0}, new(custody.Item)); err == nil {
		t.Error("an unknown version decoded")
	}
}
