package catalog_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
)

// BenchmarkPageDecode measures what decoding a search's page of 50 items
// costs a console (the largest part of a search's CPU: docs/BENCHMARKS.md)
// as the catalog stores items today (JSON), against a sketch of a binary
// encoding of the same fields (length-prefixed strings, varints, times
// in their binary form). The sketch is only a measure of what such an
// encoding could give; the catalog's encoding is not changed by it.
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
	bin := appendItem(nil, it)
	if got, err := decodeItem(bin); err != nil || !got.RecordedAt.Equal(it.RecordedAt) || got.DockSeq != it.DockSeq || got.SHA256 != it.SHA256 {
		b.Fatalf("the sketch does not round-trip: %+v %v", got, err)
	}
	b.Logf("one item: JSON %d bytes, binary sketch %d bytes", len(js), len(bin))
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			for range 50 {
				var out custody.Item
				if err := json.Unmarshal(js, &out); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("binary-sketch", func(b *testing.B) {
		for b.Loop() {
			for range 50 {
				if _, err := decodeItem(bin); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

func appendItem(b []byte, it custody.Item) []byte {
	for _, s := range []string{it.ID, it.Camera, it.Kind, it.AssignedTo, it.SourcePath, it.SHA256, string(it.State),
		it.VaultPath, it.ObjectKey, it.VersionID, it.RetentionClass, it.Host, it.LastError} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendVarint(b, it.Size)
	b = binary.AppendUvarint(b, it.DockSeq)
	b = binary.AppendVarint(b, int64(it.UploadAttempts))
	for _, t := range []time.Time{it.RecordedAt, it.IngestedAt, it.RetainUntil} {
		tb, _ := t.MarshalBinary()
		b = append(append(b, byte(len(tb))), tb...)
	}
	return b
}

var errShort = errors.New("short")

func decodeItem(b []byte) (custody.Item, error) {
	var it custody.Item
	var state string
	for _, s := range []*string{&it.ID, &it.Camera, &it.Kind, &it.AssignedTo, &it.SourcePath, &it.SHA256, &state,
		&it.VaultPath, &it.ObjectKey, &it.VersionID, &it.RetentionClass, &it.Host, &it.LastError} {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return it, errShort
		}
		*s = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	it.State = custody.State(state)
	var k int
	if it.Size, k = binary.Varint(b); k <= 0 {
		return it, errShort
	}
	b = b[k:]
	if it.DockSeq, k = binary.Uvarint(b); k <= 0 {
		return it, errShort
	}
	b = b[k:]
	n, k := binary.Varint(b)
	if k <= 0 {
		return it, errShort
	}
	it.UploadAttempts, b = int(n), b[k:]
	for _, t := range []*time.Time{&it.RecordedAt, &it.IngestedAt, &it.RetainUntil} {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return it, errShort
		}
		if err := t.UnmarshalBinary(b[1 : 1+int(b[0])]); err != nil {
			return it, err
		}
		b = b[1+int(b[0]):]
	}
	return it, nil
}
