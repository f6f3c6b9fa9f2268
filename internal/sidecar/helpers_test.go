package sidecar

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"testing"

	"github.com/evidenced/evidenced/internal/digest"
)

// parseAll runs p over data and returns what it emitted and its summary.
func parseAll(t testing.TB, p Parser, data []byte) ([]Fact, Summary) {
	t.Helper()
	facts, sum, err := parseReader(p, bytes.NewReader(data), digest.Bytes(data))
	if err != nil {
		t.Fatalf("%s: Parse: %v", p.Name(), err)
	}
	return facts, sum
}

func parseReader(p Parser, r io.Reader, sha digest.Sum) ([]Fact, Summary, error) {
	var facts []Fact
	sum, err := p.Parse(context.Background(), Input{SHA256: sha, R: r}, func(f Fact) error {
		facts = append(facts, f)
		return nil
	})
	return facts, sum, err
}

// nmea builds a sentence with its correct checksum.
func nmea(body string) string {
	return fmt.Sprintf("$%s*%02X", body, xorSum([]byte(body)))
}

// factsAs asserts every fact is a T and returns them as such.
func factsAs[T Fact](t testing.TB, facts []Fact) []T {
	t.Helper()
	out := make([]T, 0, len(facts))
	for _, f := range facts {
		v, ok := f.(T)
		if !ok {
			t.Fatalf("fact %T, want %T", f, v)
		}
		out = append(out, v)
	}
	return out
}

func fixes(t testing.TB, facts []Fact) []*Fix { t.Helper(); return factsAs[*Fix](t, facts) }

func reads(t testing.TB, facts []Fact) []*PlateRead { t.Helper(); return factsAs[*PlateRead](t, facts) }

// wantRejects asserts the summary's rejects are exactly want.
func wantRejects(t testing.TB, sum Summary, want map[Reason]int64) {
	t.Helper()
	got := sum.Rejects
	if got == nil {
		got = map[Reason]int64{}
	}
	if !maps.Equal(got, want) {
		t.Errorf("rejects = %v, want %v (%s)", got, want, sum)
	}
}

// checkAccounting asserts that every record of a line format was counted
// exactly once: emitted, ignored or rejected.
func checkAccounting(t testing.TB, sum Summary, emitted int) {
	t.Helper()
	if sum.Facts != int64(emitted) {
		t.Fatalf("summary says %d facts, %d were emitted", sum.Facts, emitted)
	}
	if sum.Records != sum.Facts+sum.Ignored+sum.Rejected() {
		t.Fatalf("records %d != facts %d + ignored %d + rejected %d", sum.Records, sum.Facts, sum.Ignored, sum.Rejected())
	}
}
