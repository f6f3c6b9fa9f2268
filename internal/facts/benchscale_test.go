package facts

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/sidecar"
	"github.com/evidenced/evidenced/internal/testutil/sidecarfile"
)

// TestBenchSidecarScale is the scale benchmark of scripts/bench-sidecar.sh,
// skipped unless EVIDENCED_BENCH_READS is set: it generates that many plate
// reads as ANPR CSV logs (5,000 reads per camera-day, 80 cameras), GPS
// tracks and recordings, vaults them in a real ledger, parses and indexes
// them through the parse step, then times find by plate (exact and fuzzy,
// with one OCR confusion) and by place (300 m, one hour of one evening).
// It prints RESULT lines; it asserts only that each search finds what it
// was built to find.
func TestBenchSidecarScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("EVIDENCED_BENCH_READS"))
	if n <= 0 {
		t.Skip("EVIDENCED_BENCH_READS not set")
	}
	gpsCams := envInt("EVIDENCED_BENCH_GPS_CAMERAS", 20)
	queries := envInt("EVIDENCED_BENCH_QUERIES", 500)
	dir := os.Getenv("EVIDENCED_BENCH_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	os.RemoveAll(filepath.Join(dir, "held"))
	os.Remove(filepath.Join(dir, "ledger.db"))
	os.Remove(filepath.Join(dir, "facts.db"))
	l, err := custody.Open(filepath.Join(dir, "ledger.db"), custody.Options{Host: "bench"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	x, err := Open(filepath.Join(dir, "facts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	step := &Step{Index: x, Ledger: l, Actor: "bench", Profile: profile, Open: func(_ context.Context, it custody.Item) (io.ReadCloser, error) {
		return os.Open(filepath.Join(dir, "held", it.ID))
	}}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(17, 17))
	// A plate pool a quarter the size of the reads: plates recur, as a
	// commuter's does.
	provinces := []string{"CA", "CY", "CF", "CJ", "CAW", "ND", "NU", "NP", "GP"}
	pool := make([]string, max(n/4, 1))
	for i := range pool {
		pool[i] = fmt.Sprintf("%s %03d-%03d", provinces[rng.IntN(len(provinces))], rng.IntN(1000), rng.IntN(1000))
	}
	day0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const perFile, cams = 5000, 80
	vault := func(camera, path string, data []byte, at time.Time) {
		sum := digest.Bytes(data).Hex()
		id := custody.ItemID(camera, path, int64(len(data)), at)
		dock, err := l.Append(ctx, custody.Event{Type: custody.Docked, Actor: "bench", Camera: camera}, nil)
		if err != nil {
			t.Fatal(err)
		}
		it := custody.Item{ID: id, Camera: camera, Kind: "vehicle", AssignedTo: "v", SourcePath: path, Size: int64(len(data)), SHA256: sum,
			RecordedAt: at, State: custody.StateVaulted, RetentionClass: "uncategorized", DockSeq: dock.Seq}
		if _, err := l.Append(ctx, custody.Event{Type: custody.Vaulted, Actor: "bench", Camera: camera}, &it); err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(dir, "held"), 0o750)
		if err := os.WriteFile(filepath.Join(dir, "held", id), data, 0o440); err != nil {
			t.Fatal(err)
		}
		if o, err := step.Item(ctx, it); err != nil || o.Failed != "" || o.Skipped {
			t.Fatalf("%s: %+v %v", path, o, err)
		}
	}
	type read struct {
		plate  string
		at     time.Time
		camera string
	}
	var sample []read
	t0 := time.Now()
	var csvBytes int64
	for f := 0; f*perFile < n; f++ {
		cam := fmt.Sprintf("CAR-%04d", f%cams)
		day := day0.AddDate(0, 0, f/cams)
		var b bytes.Buffer
		b.WriteString("time,plate,confidence,region,lat,lon,heading,camera,crop\n")
		for i := 0; i < perFile && f*perFile+i < n; i++ {
			at := day.Add(time.Duration(6*3600+i*10) * time.Second) // 06:00 on, one read every 10 s
			p := pool[rng.IntN(len(pool))]
			fmt.Fprintf(&b, "%s,%s,0.%02d,ZA-WC,-33.92,18.42,90,%s,\n", at.Format(time.RFC3339), p, 50+rng.IntN(50), cam)
			if rng.IntN(n/queries+1) == 0 {
				sample = append(sample, read{p, at, cam})
			}
		}
		csvBytes += int64(b.Len())
		vault(cam, fmt.Sprintf("ANPR/%s.csv", day.Format("20060102")), b.Bytes(), day)
	}
	readsTook := time.Since(t0)
	// GPS: gpsCams cameras, one evening (18:00-21:00) at 1 Hz, wandering
	// around a city; a recording every 30 minutes.
	t1 := time.Now()
	evening := day0.Add(18 * time.Hour)
	type pt struct {
		lat, lon float64
		at       time.Time
	}
	var pts []pt
	fixes := 0
	for c := range gpsCams {
		cam := fmt.Sprintf("GPS-%04d", c)
		lat, lon := -33.92+rng.Float64()*0.2-0.1, 18.42+rng.Float64()*0.2-0.1
		var b bytes.Buffer
		for s := range 3 * 3600 {
			lat += (rng.Float64() - 0.5) * 0.0002
			lon += (rng.Float64() - 0.5) * 0.0002
			at := evening.Add(time.Duration(s) * time.Second)
			b.WriteString(sidecarfile.RMC(at, lat, lon) + "\r\n")
			if s%1800 == 900 {
				pts = append(pts, pt{lat, lon, at})
			}
			fixes++
		}
		vault(cam, "GPS/track.nmea", b.Bytes(), evening)
		for r := range 6 {
			start := evening.Add(time.Duration(r) * 30 * time.Minute)
			vault(cam, fmt.Sprintf("DCIM/VID_%04d.mp4", r), sidecarfile.MP4(start, 30*time.Minute, []byte(cam+strconv.Itoa(r))), start)
		}
	}
	gpsTook := time.Since(t1)
	st, _ := os.Stat(x.Path())
	stats, _ := x.Stats()
	t.Logf("RESULT index reads=%d csv_mb=%.0f took=%s reads_per_s=%.0f fixes=%d gps_took=%s facts_db_mb=%.0f entries=%v",
		n, float64(csvBytes)/1e6, readsTook.Round(time.Second), float64(n)/readsTook.Seconds(), fixes, gpsTook.Round(time.Second), float64(st.Size())/1e6, stats)

	confuse := map[byte]byte{'0': 'O', 'O': '0', '1': 'I', 'I': '1', '8': 'B', 'B': '8', '5': 'S', 'S': '5', '2': 'Z', 'Z': '2', 'D': '0'}
	measure := func(name string, qs int, one func(i int) int) {
		var ds []time.Duration
		found := 0
		for i := range qs {
			s := time.Now()
			found += one(i)
			ds = append(ds, time.Since(s))
		}
		slices.Sort(ds)
		pct := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
		t.Logf("RESULT %s queries=%d p50=%s p99=%s max=%s hits_per_query=%.1f", name, qs, pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond),
			ds[len(ds)-1].Round(time.Microsecond), float64(found)/float64(qs))
	}
	if len(sample) == 0 {
		t.Fatal("no sampled reads")
	}
	measure("plate_exact", len(sample), func(i int) int {
		r := sample[i]
		p, _ := sidecar.NormalizePlate(r.plate)
		hits, err := x.FindPlate(ctx, PlateQuery{Plate: p})
		if err != nil || !slices.ContainsFunc(hits, func(h Hit) bool { return h.Time.Equal(r.at) && h.Source.Camera == r.camera }) {
			t.Fatalf("exact %s: the sampled read is not among %d hits (%v)", p, len(hits), err)
		}
		return len(hits)
	})
	measure("plate_fuzzy", len(sample), func(i int) int {
		r := sample[i]
		p, _ := sidecar.NormalizePlate(r.plate)
		q := []byte(p)
		for j := len(q) - 1; j >= 0; j-- { // one OCR confusion, from the right
			if c, ok := confuse[q[j]]; ok {
				q[j] = c
				break
			}
		}
		hits, err := x.FindPlate(ctx, PlateQuery{Plate: sidecar.Plate(q), Fuzzy: true})
		if err != nil || !slices.ContainsFunc(hits, func(h Hit) bool { return h.Time.Equal(r.at) && h.Source.Camera == r.camera }) {
			t.Fatalf("fuzzy %s for %s: the sampled read is not among %d hits (%v)", q, p, len(hits), err)
		}
		return len(hits)
	})
	measure("near_300m_1h", min(queries, len(pts)), func(i int) int {
		q := pts[i%len(pts)]
		hits, err := x.FindNear(ctx, sidecar.Near{Lat: q.lat, Lon: q.lon, Radius: 300, Since: q.at.Add(-30 * time.Minute), Until: q.at.Add(30 * time.Minute)}, 0)
		if err != nil || len(hits) == 0 || hits[0].Recording == "" {
			t.Fatalf("near %v: %d hits (%v), want the camera that was there", q, len(hits), err)
		}
		return len(hits)
	})
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
