package service

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/export"
	"github.com/evidenced/evidenced/internal/sidecar"
	"github.com/evidenced/evidenced/internal/testutil/factsdb"
	"github.com/evidenced/evidenced/internal/testutil/sidecarfile"
)

const gpsRules = `sidecars:
  - {glob: "*.mp4", parser: mp4}
  - {glob: "*.nmea", parser: nmea}
`

// loggedCamera is a camera docked with one recording and a GPS log a day
// for days days (perDay fixes each), the recording on the middle day: a
// vehicle camera's years of daily logs, at a scale the caller picks.
type loggedCamera struct {
	s    *Service
	rec  custody.Item
	logs map[string]custody.Item // by day, "d001"…
	day  string                  // the recording's
}

func newLoggedCamera(tb testing.TB, days, perDay int) *loggedCamera {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	s, err := Open(ctx, testConfig(tb, dir, gpsRules), nil, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	cam := filepath.Join(dir, "cam")
	if err := os.MkdirAll(filepath.Join(cam, "GPS"), 0o755); err != nil {
		tb.Fatal(err)
	}
	day0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	mid := days / 2
	for d := range days {
		var b bytes.Buffer
		for i := range perDay {
			at := day0.AddDate(0, 0, d).Add(time.Duration(i) * 24 * time.Hour / time.Duration(perDay))
			b.WriteString(sidecarfile.RMC(at, -33.92+float64(i)*1e-5, 18.42) + "\r\n")
		}
		if err := os.WriteFile(filepath.Join(cam, "GPS", fmt.Sprintf("d%03d.nmea", d+1)), b.Bytes(), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	// Fifteen minutes from noon of the middle day.
	start := day0.AddDate(0, 0, mid).Add(12 * time.Hour)
	if err := os.WriteFile(filepath.Join(cam, "VID_0001.MP4"), sidecarfile.MP4(start, 15*time.Minute, []byte("footage")), 0o644); err != nil {
		tb.Fatal(err)
	}
	rep, err := s.Ingest(ctx, Caller{Actor: "dock"}, IngestOptions{Camera: "BWC-0001", From: cam})
	if err != nil || !rep.SafeToUndock {
		tb.Fatalf("ingest: %+v, %v", rep, err)
	}
	c := &loggedCamera{s: s, logs: map[string]custody.Item{}, day: fmt.Sprintf("d%03d", mid+1)}
	for _, it := range rep.Recorded {
		if it.SourcePath == "VID_0001.MP4" {
			c.rec = it
		} else {
			c.logs[it.SourcePath[len("GPS/"):len("GPS/")+4]] = it
		}
	}
	if c.rec.ID == "" || len(c.logs) != days {
		tb.Fatalf("ingest recorded %d item(s)", len(rep.Recorded))
	}
	return c
}

// gatherEvery is the facts of the recording as the export found them
// before the index kept each file's span: every sidecar file of the
// camera parsed from its held copy, the facts in the span kept.
func (c *loggedCamera) gatherEvery(tb testing.TB) *export.FactPlan {
	tb.Helper()
	ctx := context.Background()
	link, ok, err := c.s.facts.Linked(ctx, c.rec.ID)
	if err != nil || !ok {
		tb.Fatalf("Linked: %v %v", ok, err)
	}
	var sources []export.FactSource
	for _, fs := range link.Sources {
		kind, _ := sidecar.KindOf(fs.Parser)
		sources = append(sources, export.FactSource{Recording: c.rec.ID, Item: fs.Item, Kind: kind, From: link.Start, To: link.End})
	}
	plan, err := export.GatherFacts(ctx, c.s.ledger, footageFrom{c.s}, sources, c.s.cropItem(c.s.ledger), false)
	if err != nil {
		tb.Fatal(err)
	}
	return plan
}

// An export reads only the sidecar files whose facts the index says may
// lie in the recording's span, and gives the same facts as parsing every
// file of the camera: the other days' logs are not opened (their vault
// copies, spoiled here, would fail the export as not the recorded bytes
// if they were), and the file that holds the span's fixes is re-derived
// from its bytes as before.
func TestExportReadsOnlyTheSidecarsOfTheSpan(t *testing.T) {
	c := newLoggedCamera(t, 5, 48)
	c.exportReadsOnlyTheSpan(t)
}

// The same export from an index written before sources kept their span:
// the index's open fills the spans in (no reindex), and the other days'
// logs are not read.
func TestExportReadsOnlyTheSpanOfAnOlderIndex(t *testing.T) {
	c := newLoggedCamera(t, 5, 48)
	path := c.s.facts.Path()
	if err := c.s.facts.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := factsdb.ForgetSpans(path); err != nil || n != 5 {
		t.Fatalf("forget the spans of the five logs: %d, %v", n, err)
	}
	if err := c.s.openFacts(true); err != nil {
		t.Fatal(err)
	}
	c.exportReadsOnlyTheSpan(t)
}

func (c *loggedCamera) exportReadsOnlyTheSpan(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	want := c.gatherEvery(t)
	if len(want.Facts) == 0 {
		t.Fatal("no fix of the middle day lies in the recording's span")
	}
	for day, it := range c.logs {
		if day == c.day {
			continue
		}
		if err := os.Chmod(it.VaultPath, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(it.VaultPath, []byte("spoiled"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.s.exportFacts(ctx, []custody.Item{c.rec})
	if err != nil {
		t.Fatalf("export facts with the other days' copies spoiled: %v", err)
	}
	if got == nil {
		t.Fatalf("export facts: none, want %d from %s", len(want.Facts), c.logs[c.day].ID)
	}
	if fmt.Sprint(got.Facts) != fmt.Sprint(want.Facts) || fmt.Sprint(got.Items) != fmt.Sprint([]string{c.logs[c.day].ID}) {
		t.Errorf("export facts: %d fact(s) from %v, want %d from %s", len(got.Facts), got.Items, len(want.Facts), c.logs[c.day].ID)
	}
	// The span's own file is still read from its bytes: spoiled, the
	// export refuses.
	it := c.logs[c.day]
	if err := os.Chmod(it.VaultPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(it.VaultPath, []byte("spoiled"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.s.exportFacts(ctx, []custody.Item{c.rec}); err == nil {
		t.Error("export facts from a spoiled copy of the span's log: no error")
	}
}

// Facts of a recording on a camera with a year of daily GPS logs
// (EVIDENCED_BENCH_DAYS, EVIDENCED_BENCH_FIXES a day), the way the export
// found them before (every file parsed) and with the index's spans.
func BenchmarkExportFactsManySidecars(b *testing.B) {
	days, perDay := benchEnv("EVIDENCED_BENCH_DAYS", 365), benchEnv("EVIDENCED_BENCH_FIXES", 1440)
	c := newLoggedCamera(b, days, perDay)
	ctx := context.Background()
	want := len(c.gatherEvery(b).Facts)
	b.Run("parse-every-sidecar", func(b *testing.B) {
		for b.Loop() {
			if n := len(c.gatherEvery(b).Facts); n != want {
				b.Fatalf("%d facts, want %d", n, want)
			}
		}
		b.ReportMetric(float64(want), "facts")
	})
	b.Run("index-span", func(b *testing.B) {
		for b.Loop() {
			plan, err := c.s.exportFacts(ctx, []custody.Item{c.rec})
			if err != nil || len(plan.Facts) != want {
				b.Fatalf("%v facts, want %d: %v", plan, want, err)
			}
		}
		b.ReportMetric(float64(want), "facts")
	})
}

func benchEnv(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
