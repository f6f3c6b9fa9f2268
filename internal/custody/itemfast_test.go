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

// TestParseFacts: the item walk's parseFacts accepts and rejects exactly
// what the full parse (parseRecordMode) does, and returns the same seq,
// type, item, item_hash, sha256, host and time, for every record of a
// ledger and every one-byte change of them.
func TestParseFacts(t *testing.T) {
	f := newSignedFixture(t, newKey(t))
	populate(f)
	f.append(Event{Type: Accessed, Actor: "a\"b\\c", Camera: "c\n", Details: map[string]string{"k\t": "v\"", "z": "\u00e9"}}, nil)
	for _, ev := range f.events() {
		rec := recordBytes(t, f, ev.Seq)
		for i := -1; i < len(rec); i++ {
			for _, c := range []byte{0, '"', '\\', '}', ',', 'a', '0', 0xC3} {
				b := bytes.Clone(rec)
				if i >= 0 {
					b[i] = c
				}
				want, _, werr := parseRecordMode(b, false)
				got, gerr := parseFacts(b)
				if (werr == nil) != (gerr == nil) {
					t.Fatalf("record %d byte %d = %q: parseRecordMode %v, parseFacts %v", ev.Seq, i, c, werr, gerr)
				}
				if got.Seq != want.Seq || got.Type != want.Type || got.Item != want.Item || got.ItemHash != want.ItemHash ||
					got.SHA256 != want.SHA256 || got.Host != want.Host || !got.At.Equal(want.At) {
					t.Fatalf("record %d byte %d = %q: facts %+v, want %+v", ev.Seq, i, c, got, want)
				}
				if i < 0 {
					break
				}
			}
		}
	}
}
