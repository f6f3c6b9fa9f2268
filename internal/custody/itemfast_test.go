package custody

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// jsonItem is decodeItem's encoding/json path alone.
func jsonItem(b []byte) (Item, error) {
	var it Item
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&it); err != nil {
		return Item{}, err
	}
	if dec.More() {
		return Item{}, errStop
	}
	return it, nil
}

// TestDecodeItemFast: the fast item decoder accepts what encodeItem writes
// for plain items, and whatever it accepts, including every one-byte
// change of those, decodes exactly as encoding/json does.
func TestDecodeItemFast(t *testing.T) {
	base := *newItem("item-1", "BWC-1", "officer-1", t0, 3)
	var items []Item
	for _, edit := range []func(*Item){
		func(*Item) {},
		func(it *Item) { it.RetainUntil = t0.Add(24 * time.Hour) },
		func(it *Item) { it.UploadAttempts, it.LastError = 3, "timeout <5s> & retry" },
		func(it *Item) { it.Size, it.DockSeq = 0, 0 },
		func(it *Item) { it.SourcePath = "DCIM/ü/VID.MP4" },      // non-ASCII: encoding/json
		func(it *Item) { it.LastError = "quote \" and \\ here" }, // escapes: encoding/json
		func(it *Item) { it.IngestedAt = time.Date(2025, 3, 14, 6, 2, 11, 250_000_000, time.UTC) },
	} {
		it := base
		edit(&it)
		normalizeItem(&it)
		items = append(items, it)
	}
	fast := 0
	for _, it := range items {
		enc, err := encodeItem(it)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := decodeItemFast(enc); ok {
			fast++
			if !reflect.DeepEqual(got, it) {
				t.Fatalf("fast decode of %s:\n%+v\nwant\n%+v", enc, got, it)
			}
		}
		for i := range enc {
			for _, c := range []byte{enc[i] ^ 1, '"', '\\', ' ', '-', '0', '9', 0x80} {
				b := bytes.Clone(enc)
				b[i] = c
				got, ok := decodeItemFast(b)
				if !ok {
					continue
				}
				want, err := jsonItem(b)
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("fast decode accepts %s as\n%+v\nencoding/json: %+v, %v", b, got, want, err)
				}
			}
		}
	}
	if fast != len(items)-2 {
		t.Fatalf("the fast path took %d of the %d plain items", fast, len(items)-2)
	}
}
