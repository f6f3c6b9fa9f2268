package sidecar

import (
	"fmt"
	"sort"
)

// Plate is a normalised number plate: upper-case ASCII letters and digits
// only, e.g. "CA123456" for "CA 123-456", "ca.123.456" and "CA123456".
type Plate string

// Plate reasons.
const (
	ReasonPlateEmpty   Reason = "plate_empty"
	ReasonPlateChar    Reason = "plate_bad_char"
	ReasonPlateTooLong Reason = "plate_too_long"
)

// MaxPlateLen bounds a normalised plate. South African plates are at most
// 7 characters plus a province suffix (e.g. "ABCDEFG GP" personalised,
// "CA 123-456"); 12 leaves room for foreign plates without letting a stray
// column through as a plate.
const MaxPlateLen = 12

// PlateError says why a plate could not be normalised.
type PlateError struct {
	Input  string
	Reason Reason
}

func (e *PlateError) Error() string {
	return fmt.Sprintf("plate %q: %s", e.Input, e.Reason)
}

// NormalizePlate folds the ways one plate is written into one key: spaces,
// dashes and dots are dropped and letters upper-cased ("CA 123-456",
// "ca123456" and "CA.123.456" are all "CA123456"; "ND 123-456" is
// "ND123456"; a Gauteng personalised "JOHN-GP" is "JOHNGP").
//
// Anything else is refused with a *PlateError, never dropped or transliterated:
// a non-ASCII character (an OCR engine's "С" may be Cyrillic, a "Ø" is not
// "0") is ReasonNonASCII, other punctuation or control bytes ReasonPlateChar.
// Normalising twice gives the same plate.
func NormalizePlate(s string) (Plate, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x80:
			return "", &PlateError{Input: s, Reason: ReasonNonASCII}
		case c == ' ' || c == '-' || c == '.':
		case c >= 'a' && c <= 'z':
			out = append(out, c-'a'+'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			out = append(out, c)
		default:
			return "", &PlateError{Input: s, Reason: ReasonPlateChar}
		}
	}
	switch {
	case len(out) == 0:
		return "", &PlateError{Input: s, Reason: ReasonPlateEmpty}
	case len(out) > MaxPlateLen:
		return "", &PlateError{Input: s, Reason: ReasonPlateTooLong}
	}
	return Plate(out), nil
}

// Edit costs of the plate distance, in quarters: an OCR confusion (0/O/D,
// 1/I, 8/B, 5/S, 2/Z) costs a quarter of any other substitution, insertion
// or deletion.
const (
	costConfusable = 1
	costEdit       = 4
)

// confusionGroup maps a character to its OCR confusion class (0 = none).
var confusionGroup = func() [256]byte {
	var g [256]byte
	for i, set := range []string{"0OD", "1I", "8B", "5S", "2Z"} {
		for j := 0; j < len(set); j++ {
			g[set[j]] = byte(i + 1)
		}
	}
	return g
}()

func subCost(a, b byte) int {
	switch {
	case a == b:
		return 0
	case confusionGroup[a] != 0 && confusionGroup[a] == confusionGroup[b]:
		return costConfusable
	}
	return costEdit
}

// PlateDistance is a weighted edit distance between two plates, in edits: an
// insertion, deletion or arbitrary substitution counts 1, an OCR-confusable
// substitution 0.25. It is a metric (symmetric, zero only for equal plates,
// triangle inequality), so ranking by it is consistent.
func PlateDistance(a, b Plate) float64 {
	return float64(plateCost(a, b, -1)) / costEdit
}

// plateCost is the distance in quarters; with limit ≥ 0 it stops early and
// returns limit+1 once every path exceeds limit.
func plateCost(a, b Plate, limit int) int {
	if len(a) < len(b) {
		a, b = b, a
	}
	var rows [2][2*MaxPlateLen + 1]int // no allocation for plates of any sane length
	prev, cur := rows[0][:], rows[1][:]
	if len(b)+1 > len(prev) {
		prev, cur = make([]int, len(b)+1), make([]int, len(b)+1)
	}
	prev, cur = prev[:len(b)+1], cur[:len(b)+1]
	for j := range prev {
		prev[j] = j * costEdit
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i * costEdit
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			c := prev[j-1] + subCost(a[i-1], b[j-1])
			c = min(c, prev[j]+costEdit, cur[j-1]+costEdit)
			cur[j] = c
			rowMin = min(rowMin, c)
		}
		if limit >= 0 && rowMin > limit {
			return limit + 1
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// PlateCandidate is one plate to match against, with the read's confidence.
type PlateCandidate struct {
	Plate      Plate
	Confidence float64
}

// PlateMatch is one candidate within reach of the query.
type PlateMatch struct {
	Index    int     // into the candidates given
	Distance float64 // PlateDistance(query, candidate)
}

// MatchPlates returns the candidates within maxDistance of query, nearest
// first; equal distances go to the more confident read first, then to the
// earlier candidate. maxDistance 0 is an exact match.
func MatchPlates(query Plate, cands []PlateCandidate, maxDistance float64) []PlateMatch {
	if !(maxDistance >= 0) { // negative or NaN
		return nil
	}
	// Plates are at most MaxPlateLen long, so no distance exceeds this cap;
	// it keeps a huge maxDistance from overflowing the conversion.
	limit := 2 * MaxPlateLen * costEdit
	if maxDistance*costEdit < float64(limit) {
		limit = int(maxDistance * costEdit)
	}
	var out []PlateMatch
	for i, c := range cands {
		if d := plateCost(query, c.Plate, limit); d <= limit {
			out = append(out, PlateMatch{Index: i, Distance: float64(d) / costEdit})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Distance != b.Distance {
			return a.Distance < b.Distance
		}
		return cands[a.Index].Confidence > cands[b.Index].Confidence
	})
	return out
}

// FoldConfusions maps every OCR-confusable character of p to one member of
// its class (0/O/D → 0, 1/I → 1, 8/B → 8, 5/S → 5, 2/Z → 2): plates that
// differ only by confusions fold to the same key, which is what a fuzzy
// index looks candidates up by before PlateDistance ranks them.
func FoldConfusions(p Plate) string {
	b := []byte(p)
	for i, c := range b {
		switch confusionGroup[c] {
		case 1:
			b[i] = '0'
		case 2:
			b[i] = '1'
		case 3:
			b[i] = '8'
		case 4:
			b[i] = '5'
		case 5:
			b[i] = '2'
		}
	}
	return string(b)
}
