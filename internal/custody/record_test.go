package custody

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// docExample is the record shown in the package documentation; the test
// keeps the documentation honest.
const (
	docExample     = `{"actor":"evidenced","at":"2025-03-14T06:02:11.25Z","camera":"BWC-000123","details":{"bay":"3","usb":"1-1.3"},"host":"depot-north-01","item":"","item_hash":"","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","seq":1,"sha256":"","type":"DOCKED"}`
	docExampleHash = "0d473a7b38150e33dd02db2bb2114d9badcf3f4407d8e724a59765d41ad74d4d"
)

func docEvent() Event {
	return Event{
		Seq: 1, Type: Docked, At: time.Date(2025, 3, 14, 6, 2, 11, 250_000_000, time.UTC),
		Host: "depot-north-01", Actor: "evidenced", Camera: "BWC-000123",
		Details: map[string]string{"usb": "1-1.3", "bay": "3"}, PrevHash: GenesisHash,
	}
}

func TestEncodeRecordGolden(t *testing.T) {
	rec, err := EncodeRecord(docEvent())
	if err != nil {
		t.Fatal(err)
	}
	if string(rec) != docExample {
		t.Fatalf("record:\n got %s\nwant %s", rec, docExample)
	}
	if h := RecordHash(rec); h != docExampleHash {
		t.Fatalf("hash %s, want %s", h, docExampleHash)
	}
	ev, err := DecodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Hash != docExampleHash || ev.Camera != "BWC-000123" || ev.Details["usb"] != "1-1.3" {
		t.Fatalf("decoded %+v", ev)
	}
}

func TestEncodeRecordCanonicalForms(t *testing.T) {
	cest := time.FixedZone("CEST", 2*3600)
	tests := []struct {
		name string
		edit func(*Event)
		want string // substring of the record
	}{
		{"escapes only quote backslash and controls",
			func(e *Event) { e.Details = map[string]string{"k": "\"\\\b\t\n\f\r\x01\x1f\x7f/\u2028é<>&"} },
			`"details":{"k":"\"\\\b\t\n\f\r\u0001\u001f` + "\x7f/\u2028é<>&" + `"}`},
		{"details sorted by UTF-16 code units",
			func(e *Event) { e.Details = map[string]string{"\uFFFD": "a", "\U0001F600": "b", "b": "c", "a": "d"} },
			`"details":{"a":"d","b":"c","` + "\U0001F600" + `":"b","` + "\uFFFD" + `":"a"}`},
		{"whole seconds have no fraction", func(e *Event) { e.At = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) },
			`"at":"2025-01-02T03:04:05Z"`},
		{"fraction keeps significant digits", func(e *Event) { e.At = time.Date(2025, 1, 2, 3, 4, 5, 100, time.UTC) },
			`"at":"2025-01-02T03:04:05.0000001Z"`},
		{"other zones become UTC", func(e *Event) { e.At = time.Date(2025, 1, 2, 3, 4, 5, 0, cest) },
			`"at":"2025-01-02T01:04:05Z"`},
		{"empty details are an empty object", func(e *Event) { e.Details = map[string]string{} },
			`"details":{}`},
		{"large seq", func(e *Event) { e.Seq = maxSeq }, `"seq":9007199254740991,`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := docEvent()
			tc.edit(&ev)
			rec, err := EncodeRecord(ev)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(rec), tc.want) {
				t.Fatalf("record %s\ndoes not contain %s", rec, tc.want)
			}
			if bytes.ContainsAny(rec, "\n\r") {
				t.Fatalf("record contains a raw newline: %q", rec)
			}
			back, err := DecodeRecord(rec)
			if err != nil {
				t.Fatalf("decode own encoding: %v", err)
			}
			again, err := EncodeRecord(back)
			if err != nil || !bytes.Equal(again, rec) {
				t.Fatalf("round trip changed the record: %s (%v)", again, err)
			}
		})
	}
}

func TestEncodeRecordRefuses(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Event)
	}{
		{"zero time", func(e *Event) { e.At = time.Time{} }},
		{"year 10000", func(e *Event) { e.At = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"seq 0", func(e *Event) { e.Seq = 0 }},
		{"seq 2^53", func(e *Event) { e.Seq = maxSeq + 1 }},
		{"short prev_hash", func(e *Event) { e.PrevHash = "00" }},
		{"upper-case prev_hash", func(e *Event) { e.PrevHash = strings.Repeat("A", 64) }},
		{"upper-case sha256", func(e *Event) { e.SHA256 = strings.Repeat("A", 64) }},
		{"lower-case type", func(e *Event) { e.Type = "docked" }},
		{"empty type", func(e *Event) { e.Type = "" }},
		{"empty actor", func(e *Event) { e.Actor = "" }},
		{"empty host", func(e *Event) { e.Host = "" }},
		{"invalid UTF-8 actor", func(e *Event) { e.Actor = "officer\xff" }},
		{"invalid UTF-8 detail key", func(e *Event) { e.Details = map[string]string{"\xc3": "v"} }},
		{"invalid UTF-8 detail value", func(e *Event) { e.Details = map[string]string{"path": "DCIM/\xe9.MP4"} }},
		{"noncharacter", func(e *Event) { e.Camera = "BWC\uFFFE" }},
		{"oversized", func(e *Event) { e.Details = map[string]string{"k": strings.Repeat("x", maxRecordSize)} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := docEvent()
			tc.edit(&ev)
			if rec, err := EncodeRecord(ev); !errors.Is(err, ErrInvalid) {
				t.Fatalf("EncodeRecord = %q, %v; want ErrInvalid", rec, err)
			}
		})
	}
}

func TestDecodeRecordRejectsNonCanonical(t *testing.T) {
	r := strings.NewReplacer
	tests := []struct {
		name string
		rec  string
	}{
		{"trailing newline", docExample + "\n"},
		{"leading space", " " + docExample},
		{"space after colon", r(`"seq":1`, `"seq": 1`).Replace(docExample)},
		{"members reordered", r(`"actor":"evidenced","at":"2025-03-14T06:02:11.25Z"`, `"at":"2025-03-14T06:02:11.25Z","actor":"evidenced"`).Replace(docExample)},
		{"member missing", r(`"item":"",`, ``).Replace(docExample)},
		{"extra member", r(`{"actor"`, `{"x":"y","actor"`).Replace(docExample)},
		{"duplicate member", r(`"type":"DOCKED"}`, `"type":"DOCKED","type":"DOCKED"}`).Replace(docExample)},
		{"upper-case name", r(`"actor"`, `"Actor"`).Replace(docExample)},
		{"seq as float", r(`"seq":1,`, `"seq":1.0,`).Replace(docExample)},
		{"seq as string", r(`"seq":1,`, `"seq":"1",`).Replace(docExample)},
		{"seq leading zero", r(`"seq":1,`, `"seq":01,`).Replace(docExample)},
		{"seq zero", r(`"seq":1,`, `"seq":0,`).Replace(docExample)},
		{"needless escape", r(`"evidenced"`, `"\u0065videnced"`).Replace(docExample)},
		{"escaped slash", r(`"1-1.3"`, `"1\/1.3"`).Replace(docExample)},
		{"upper-case unicode escape", r(`"1-1.3"`, `"1\u001F"`).Replace(docExample)},
		{"short escape spelled \\u00xx", r(`"1-1.3"`, `"1\u000a"`).Replace(docExample)},
		{"offset time", r(`.25Z`, `.25+00:00`).Replace(docExample)},
		{"trailing zero in fraction", r(`.25Z`, `.250Z`).Replace(docExample)},
		{"details null", r(`"details":{"bay":"3","usb":"1-1.3"}`, `"details":null`).Replace(docExample)},
		{"details unsorted", r(`{"bay":"3","usb":"1-1.3"}`, `{"usb":"1-1.3","bay":"3"}`).Replace(docExample)},
		{"invalid UTF-8", r(`"evidenced"`, "\"evid\xffenced\"").Replace(docExample)},
		{"lone surrogate", r(`"evidenced"`, `"evid\ud800enced"`).Replace(docExample)},
		{"upper-case prev_hash", r(`"prev_hash":"0000`, `"prev_hash":"AAAA`).Replace(docExample)},
		{"empty prev_hash", r(`"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000"`, `"prev_hash":""`).Replace(docExample)},
		{"not an object", `[1,2,3]`},
		{"empty", ``},
		{"two objects", docExample + docExample},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.rec == docExample {
				t.Fatal("replacement did not apply; the case tests nothing")
			}
			if ev, err := DecodeRecord([]byte(tc.rec)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeRecord = %+v, %v; want ErrCorrupt", ev, err)
			}
		})
	}
}

func TestCompareUTF16(t *testing.T) {
	tests := []struct {
		a, b string
		want int // sign
	}{
		{"a", "b", -1}, {"b", "a", 1}, {"a", "a", 0}, {"a", "ab", -1}, {"", "a", -1},
		{"\U0001F600", "\uFFFD", -1}, // surrogate D83D sorts before FFFD
		{"\uE000", "\U00010000", 1},
		{"\U0001F600", "\U0001F601", -1},
		{"é", "z", 1},
	}
	for _, tc := range tests {
		got := compareUTF16(tc.a, tc.b)
		if (got < 0) != (tc.want < 0) || (got > 0) != (tc.want > 0) {
			t.Errorf("compareUTF16(%q, %q) = %d, want sign %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// FuzzDecodeRecord: the decoder never panics, and whatever it accepts is
// canonical: re-encoding gives the same bytes, and the hash is of them.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(docExample))
	ev := docEvent()
	ev.Seq, ev.PrevHash, ev.Type = 2, docExampleHash, Vaulted
	ev.Item, ev.SHA256, ev.ItemHash = "item-1", docExampleHash, docExampleHash
	ev.Details = map[string]string{"path": "DCIM/100MEDIA/\"A\\B\"\n\x01.MP4", "\U0001F600": "é"}
	rec, err := EncodeRecord(ev)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"seq":18446744073709551615}`))
	f.Add([]byte(`{"details":{"a":1}}`))
	f.Add([]byte("\x00\xff{"))
	f.Add([]byte(strings.Replace(docExample, `"seq":1`, `"seq":1e0`, 1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not ErrCorrupt: %v", err)
			}
			return
		}
		again, err := EncodeRecord(ev)
		if err != nil {
			t.Fatalf("accepted record does not re-encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("accepted non-canonical record:\n in %q\nout %q", b, again)
		}
		if ev.Hash != RecordHash(b) {
			t.Fatalf("hash %s is not of the input", ev.Hash)
		}
	})
}
