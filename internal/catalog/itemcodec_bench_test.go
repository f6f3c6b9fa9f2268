package catalog

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
)

// BenchmarkPageDecode measures what decoding a search's page of 50 items
// costs a console (the largest part of a search's CPU: docs/BENCHMARKS.md),
// as an index written before the binary item form holds them (JSON) and in
// that form (encodeItem), for an item of the fleet generator's shape.
//
//	go test -run '^$' -bench BenchmarkPageDecode -benchmem ./internal/catalog/
func BenchmarkPageDecode(b *testing.B) {
	at := time.Date(2026, 1, 5, 7, 0, 0, 0, time.UTC)
	it := custody.Item{
		ID: "dock-01-00012345", Camera: "BWC-01007", Kind: "body", AssignedTo: "officer-01007",
		SourcePath: "DCIM/dock-01-00012345.MP4", Size: 1 << 20,
		SHA256:     "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		RecordedAt: at, IngestedAt: at.Add(time.Hour), State: custody.StateVerified,
		VaultPath: "/var/lib/evidenced/vault/dock-01-00012345", ObjectKey: "footage/dock-01/2026/01/05/dock-01-00012345.MP4",
		VersionID: "01JH7Q8ZK3M4N5P6Q7R8S9T0VW", RetentionClass: "uncategorized", RetainUntil: at.AddDate(0, 0, 1),
		Host: "dock-01", DockSeq: 12345,
	}
	js, err := json.Marshal(it)
	if err != nil {
		b.Fatal(err)
	}
	bin, err := encodeItem(it)
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range [][]byte{js, bin} {
		var got custody.Item
		if err := decodeItem(v, &got); err != nil || !got.RecordedAt.Equal(it.RecordedAt) || got.DockSeq != it.DockSeq || got.SHA256 != it.SHA256 {
			b.Fatalf("%q does not decode to the item: %+v %v", v[:1], got, err)
		}
	}
	b.Logf("one item: JSON %d bytes, binary %d bytes", len(js), len(bin))
	for _, c := range []struct {
		name string
		v    []byte
	}{{"json", js}, {"binary", bin}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				for range 50 {
					var out custody.Item
					if err := decodeItem(c.v, &out); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
