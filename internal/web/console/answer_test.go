package console

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/service"
)

// /api/items's answer written without reflection is what encoding/json
// writes for it, byte for byte: for an item with every field set (by
// reflection, so a field added to custody.Item is set here too, and
// itemFields must follow), with every field zero, with strings encoding/json
// escapes (quotes, HTML, control characters, invalid UTF-8, U+2028) and
// times in other zones and with nanoseconds; with and without a next page.
// An answer with a match, or a time encoding/json refuses, is left to it.
func TestItemsAnswerIsEncodingJSONs(t *testing.T) {
	if n := reflect.TypeFor[custody.Item]().NumField(); n != itemFields {
		t.Fatalf("custody.Item has %d fields, appendItem writes %d: write the new ones", n, itemFields)
	}
	full := func(s string, n int64, at time.Time) custody.Item {
		var it custody.Item
		v := reflect.ValueOf(&it).Elem()
		for i := range v.NumField() {
			switch f := v.Field(i); f.Kind() {
			case reflect.String:
				f.SetString(s + v.Type().Field(i).Name)
			case reflect.Int, reflect.Int64:
				f.SetInt(n + int64(i))
			case reflect.Uint64:
				f.SetUint(uint64(n) + uint64(i))
			case reflect.Struct:
				f.Set(reflect.ValueOf(at.Add(time.Duration(i) * time.Hour)))
			default:
				t.Fatalf("custody.Item.%s is a %s: teach the test and appendItem", v.Type().Field(i).Name, f.Kind())
			}
		}
		return it
	}
	cape := time.FixedZone("SAST", 2*3600)
	odd := "a\"b\\c<d>e&f\ng\x01h\u2028i\xffj é"
	answers := []itemsAnswer{
		{Items: []service.Found{}, Page: 1, PerPage: 50},
		{Items: []service.Found{{Item: full("x-", 7, time.Date(2026, 1, 5, 7, 0, 0, 0, time.UTC))}}, Page: 2, PerPage: 50, Total: 51, Next: "AbC-_9"},
		{Items: []service.Found{{Item: full(odd, -3, time.Date(2026, 3, 1, 7, 0, 0, 123456789, cape))}, {Item: custody.Item{}}}, Page: 1, PerPage: 50, Total: 2},
	}
	// Each character encoding/json escapes, alone in its strings.
	var one itemsAnswer
	for _, c := range []string{"<", ">", "&", `"`, `\`, "\n", "\x1f", "\x7f", "\xff", "\u2028", "\u2029", "é"} {
		one.Items = append(one.Items, service.Found{Item: full("a"+c, 1, time.Date(2026, 1, 5, 7, 0, 0, 0, time.UTC))})
	}
	answers = append(answers, one)
	for _, a := range answers {
		var want strings.Builder
		if err := json.NewEncoder(&want).Encode(a); err != nil {
			t.Fatal(err)
		}
		got, ok := appendItemsAnswer(nil, a)
		if !ok || string(got) != want.String() {
			t.Errorf("appendItemsAnswer (ok %v):\n%s\nencoding/json:\n%s", ok, got, want.String())
		}
	}
	for _, a := range []itemsAnswer{
		{Items: []service.Found{{Item: full("y", 1, time.Now()), Match: &service.Hit{Kind: service.HitPlateRead}}}},
		{Items: []service.Found{{Item: custody.Item{RecordedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}}},
	} {
		if _, ok := appendItemsAnswer(nil, a); ok {
			t.Errorf("%+v was written without encoding/json", a.Items[0])
		}
	}
}
