package sidecar

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"
)

func TestNormalizePlate(t *testing.T) {
	ok := []struct{ in, want string }{
		{"CA 123-456", "CA123456"},
		{"CA123456", "CA123456"},
		{"ca.123.456", "CA123456"},
		{" CA  123 - 456 ", "CA123456"},
		{"ND 123-456", "ND123456"},
		{"CAW 12345", "CAW12345"},
		{"JOHN-GP", "JOHNGP"},       // Gauteng personalised
		{"BX 12 CD GP", "BX12CDGP"}, // Gauteng standard
		{"abcdefg gp", "ABCDEFGGP"},
	}
	for _, tc := range ok {
		got, err := NormalizePlate(tc.in)
		if err != nil || got != Plate(tc.want) {
			t.Errorf("NormalizePlate(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if again, err := NormalizePlate(string(got)); err != nil || again != got {
			t.Errorf("not idempotent on %q: %q, %v", got, again, err)
		}
	}
	bad := []struct {
		in   string
		want Reason
	}{
		{"СА 123-456", ReasonNonASCII}, // Cyrillic
		{"CA 123-45Ø", ReasonNonASCII},
		{"CA\u00a0123", ReasonNonASCII}, // no-break space is not a space here
		{"CA\x00123", ReasonPlateChar},
		{"CA\t123", ReasonPlateChar},
		{"CA_123", ReasonPlateChar},
		{"CA/123", ReasonPlateChar},
		{"", ReasonPlateEmpty},
		{" - . ", ReasonPlateEmpty},
		{"ABCDEFGHIJKLM", ReasonPlateTooLong},
	}
	for _, tc := range bad {
		got, err := NormalizePlate(tc.in)
		var pe *PlateError
		if !errors.As(err, &pe) || pe.Reason != tc.want || got != "" {
			t.Errorf("NormalizePlate(%q) = %q, %v; want reason %s", tc.in, got, err, tc.want)
		}
	}
}

func TestPlateDistance(t *testing.T) {
	cases := []struct {
		a, b string
		want float64
	}{
		{"CA123456", "CA123456", 0},
		{"CA123456", "CA1234S6", 0.25}, // 5/S
		{"CA123456", "CAI23456", 0.25}, // 1/I
		{"CA100000", "CAIOOOOO", 1.5},  // 1/I and five 0/O
		{"ND123456", "N0123456", 0.25}, // D/0
		{"ND123456", "NO123456", 0.25}, // D/O
		{"GP8Z", "GPB2", 0.5},          // 8/B, Z/2
		{"CA123456", "CA123457", 1},    // arbitrary substitution
		{"CA123456", "CA12345", 1},     // deletion
		{"CA123456", "CA1234567", 1},   // insertion
		{"CA123456", "ND654321", 8},    // nothing alike
		{"CA123456", "", 8},            // all deleted
		{"CA123456", "AC123456", 2},    // a swap is two edits
		{"CA123456", "CA123456GP", 2},  // a province suffix
	}
	for _, tc := range cases {
		if got := PlateDistance(Plate(tc.a), Plate(tc.b)); got != tc.want {
			t.Errorf("PlateDistance(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if back := PlateDistance(Plate(tc.b), Plate(tc.a)); back != tc.want {
			t.Errorf("not symmetric: PlateDistance(%s, %s) = %v", tc.b, tc.a, back)
		}
	}
}

func TestMatchPlatesRanking(t *testing.T) {
	cands := []PlateCandidate{
		{"CA123457", 0.99}, // one real edit
		{"CA1Z3456", 0.70}, // one confusion, low confidence
		{"CA123456", 0.40}, // exact, low confidence
		{"CAI23456", 0.95}, // one confusion, high confidence
		{"ND123456", 0.99}, // two edits
		{"CA123456", 0.90}, // exact, high confidence
	}
	got := MatchPlates("CA123456", cands, 1)
	var order []int
	for _, m := range got {
		order = append(order, m.Index)
	}
	if want := []int{5, 2, 3, 1, 0}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v (%+v)", order, want, got)
	}
	if got[0].Distance != 0 || got[2].Distance != 0.25 || got[4].Distance != 1 {
		t.Errorf("distances %+v", got)
	}
	if exact := MatchPlates("CA123456", cands, 0); len(exact) != 2 {
		t.Errorf("exact: %+v", exact)
	}
	if none := MatchPlates("CA123456", cands, -1); none != nil {
		t.Errorf("negative distance: %+v", none)
	}
	if all := MatchPlates("CA123456", cands, math.Inf(1)); len(all) != len(cands) {
		t.Errorf("infinite distance: %d of %d", len(all), len(cands))
	}
}

func TestHaversineAndNear(t *testing.T) {
	// One degree of latitude on the mean sphere: R·π/180.
	if d := Haversine(0, 0, 1, 0); math.Abs(d-111195.08) > 0.01 {
		t.Errorf("one degree = %v m", d)
	}
	// Cape Town city hall to Johannesburg city hall, ≈ 1262 km great circle.
	if d := Haversine(-33.9249, 18.4241, -26.2041, 28.0473); math.Abs(d-1262e3) > 3e3 {
		t.Errorf("Cape Town–Johannesburg = %.0f m", d)
	}
	if d := Haversine(-33.9, 179.9999, -33.9, -179.9999); d > 30 {
		t.Errorf("across the antimeridian: %v m", d)
	}
	t0 := time.Date(2026, 12, 3, 21, 0, 0, 0, time.UTC)
	corner := struct{ lat, lon float64 }{-33.9249, 18.4241}
	// 0.001° of latitude ≈ 111 m.
	track := []*Fix{
		{Time: t0.Add(-time.Minute), Lat: corner.lat, Lon: corner.lon},              // at the corner, before the window
		{Time: t0, Lat: corner.lat + 0.002, Lon: corner.lon},                        // 222 m, at the start: in
		{Time: t0.Add(30 * time.Minute), Lat: corner.lat + 0.0028, Lon: corner.lon}, // 311 m: out
		{Time: t0.Add(time.Hour), Lat: corner.lat, Lon: corner.lon + 0.001},         // ≈ 92 m, at the end: in
		{Time: t0.Add(time.Hour + time.Nanosecond), Lat: corner.lat, Lon: corner.lon},
	}
	q := Near{Lat: corner.lat, Lon: corner.lon, Radius: 300, Since: t0, Until: t0.Add(time.Hour)}
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := q.Within(track); !slices.Equal(got, []int{1, 3}) {
		t.Errorf("within = %v, want [1 3]", got)
	}
	for _, bad := range []Near{
		{Lat: 91, Radius: 1}, {Lon: math.NaN(), Radius: 1}, {Radius: 0}, {Radius: math.Inf(1)},
		{Radius: 1, Since: t0, Until: t0.Add(-time.Second)},
	} {
		if bad.Validate() == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

// Plates that differ only by OCR confusions fold to one key; a plate with
// another character does not.
func TestFoldConfusions(t *testing.T) {
	for _, p := range []Plate{"CA123456", "CAI23456", "CA1Z3456", "CAI2345G", "CA12345S"} {
		want := "CA123456"
		if p == "CAI2345G" {
			want = "CA12345G"
		}
		if p == "CA12345S" {
			want = "CA123455"
		}
		if got := FoldConfusions(p); got != want {
			t.Errorf("FoldConfusions(%s) = %s, want %s", p, got, want)
		}
	}
	if FoldConfusions("OD0B8") != FoldConfusions("00088") {
		t.Errorf("0/O/D and 8/B do not fold together")
	}
}
