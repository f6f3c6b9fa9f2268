package sidecar

import (
	"context"
	"errors"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/testutil/sidecarfile"
)

// The NMEA reference sentences (with checksums computed by others, so this
// also checks our XOR against an outside source). Their date is 1994: the
// plausibility floor is lowered for them.
const (
	refRMC = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"
	refGGA = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"
)

func near(a, b, eps float64) bool { return math.Abs(a-b) <= eps }

func TestNMEAReferenceSentences(t *testing.T) {
	data := []byte(refRMC + "\r\n" + refGGA + "\r\n$GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00*74\r\n")
	p := &NMEA{Options: NMEAOptions{NotBefore: time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)}}
	facts, sum := parseAll(t, p, data)
	fx := fixes(t, facts)
	if len(fx) != 2 {
		t.Fatalf("got %d fixes, want 2 (%s)", len(fx), sum)
	}
	when := time.Date(1994, 3, 23, 12, 35, 19, 0, time.UTC)
	for _, f := range fx {
		if !f.Time.Equal(when) || !near(f.Lat, 48+7.038/60, 1e-9) || !near(f.Lon, 11+31.0/60, 1e-9) {
			t.Errorf("%s: %v %v,%v; want %v 48.1173,11.5167", f.Sentence, f.Time, f.Lat, f.Lon, when)
		}
	}
	rmc, gga := fx[0], fx[1]
	if rmc.Sentence != "GPRMC" || !rmc.HasSpeed || !near(rmc.SpeedMS, 22.4*1852/3600, 1e-9) || !rmc.HasCourse || rmc.Course != 84.4 {
		t.Errorf("RMC speed/course: %+v", rmc)
	}
	if gga.Sentence != "GPGGA" || !gga.HasEle || gga.Ele != 545.4 {
		t.Errorf("GGA altitude: %+v", gga)
	}
	wantProv := []Provenance{{digest.Bytes(data), 0, 1}, {digest.Bytes(data), int64(len(refRMC) + 2), 2}}
	for i, f := range fx {
		if f.At != wantProv[i] {
			t.Errorf("fix %d provenance %+v, want %+v", i, f.At, wantProv[i])
		}
	}
	if sum.Ignored != 1 || sum.Parser != "nmea0183" || sum.Version != "1" || sum.Source != digest.Bytes(data) || sum.Bytes != int64(len(data)) {
		t.Errorf("summary %+v", sum)
	}
	checkAccounting(t, sum, len(facts))
}

const goodRMC = "GPRMC,213000.00,A,3355.2300,S,01825.4200,E,12.5,270.0,031226,,,A"

func TestNMEABadInputCountedNotTrusted(t *testing.T) {
	good := nmea(goodRMC)
	flip := strings.Replace(good, "3355.2300", "3355.2301", 1) // body changed, checksum kept
	cases := []struct {
		name, line string
		want       Reason
	}{
		{"wrong checksum", flip, ReasonBadChecksum},
		{"malformed checksum", good[:len(good)-2] + "G0", ReasonBadChecksum},
		{"no checksum", "$" + goodRMC, ReasonNoChecksum},
		{"truncated", good[:40], ReasonNoChecksum},
		{"garbage", "\x00\xff\x13garbage\xfe", ReasonNoSentence},
		{"control byte in body", nmea("GPRMC,213000,A,3355.23\x01,S,01825.42,E,,,031226,,"), ReasonBadChar},
		{"status V", nmea("GPRMC,213000.00,V,3355.2300,S,01825.4200,E,,,031226,,,N"), ReasonNoFix},
		{"status V, NMEA 2.0 (no mode)", nmea("GPRMC,213000.00,V,3355.2300,S,01825.4200,E,,,031226,,"), ReasonNoFix},
		{"mode N", nmea("GPRMC,213000.00,A,3355.2300,S,01825.4200,E,,,031226,,,N"), ReasonNoFix},
		{"simulator", nmea("GPRMC,213000.00,A,3355.2300,S,01825.4200,E,,,031226,,,S"), ReasonNotMeasured},
		{"gga no fix", nmea("GPGGA,213000.00,3355.2300,S,01825.4200,E,0,00,,,M,,M,,"), ReasonNoFix},
		{"gga before any rmc", nmea("GNGGA,213000.00,3355.2300,S,01825.4200,E,1,08,0.9,20.1,M,31.0,M,,"), ReasonNoDate},
		{"minutes 60", nmea("GPRMC,213000.00,A,3360.0000,S,01825.4200,E,,,031226,,"), ReasonBadPosition},
		{"latitude 91", nmea("GPRMC,213000.00,A,9100.0000,S,01825.4200,E,,,031226,,"), ReasonBadPosition},
		{"hemisphere X", nmea("GPRMC,213000.00,A,3355.2300,X,01825.4200,E,,,031226,,"), ReasonBadPosition},
		{"exponent", nmea("GPRMC,213000.00,A,3355e1,S,01825.4200,E,,,031226,,"), ReasonBadPosition},
		{"null island", nmea("GPRMC,213000.00,A,0000.0000,N,00000.0000,E,,,031226,,"), ReasonNullIsland},
		{"31 February", nmea("GPRMC,213000.00,A,3355.2300,S,01825.4200,E,,,310226,,"), ReasonBadTime},
		{"hour 24", nmea("GPRMC,240000.00,A,3355.2300,S,01825.4200,E,,,031226,,"), ReasonBadTime},
		{"speed nan", nmea("GPRMC,213000.00,A,3355.2300,S,01825.4200,E,NaN,,031226,,"), ReasonBadField},
		{"too few fields", nmea("GPRMC,213000.00,A,3355.2300,S"), ReasonBadField},
		{"too long", "$GPRMC," + strings.Repeat("9", 1000), ReasonLineTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			facts, sum := parseAll(t, &NMEA{}, []byte(tc.line+"\n"))
			if len(facts) != 0 {
				t.Errorf("emitted %+v from %q", facts[0], tc.line)
			}
			wantRejects(t, sum, map[Reason]int64{tc.want: 1})
			checkAccounting(t, sum, len(facts))
		})
	}
	// The good sentence itself passes: the cases above fail for their reason only.
	facts, sum := parseAll(t, &NMEA{}, []byte(good))
	if len(facts) != 1 {
		t.Fatalf("good sentence: %s", sum)
	}
	f := facts[0].(*Fix)
	if !near(f.Lat, -(33+55.23/60), 1e-9) || !near(f.Lon, 18+25.42/60, 1e-9) {
		t.Errorf("good sentence: %v,%v", f.Lat, f.Lon)
	}
}

// A power cut leaves half a sentence; the logger carries on on the same line.
func TestNMEAHalfSentenceThenWhole(t *testing.T) {
	good := nmea(goodRMC)
	data := []byte("$GPRMC,2130" + good + "\n")
	facts, sum := parseAll(t, &NMEA{}, data)
	if len(facts) != 1 {
		t.Fatalf("got %d facts: %s", len(facts), sum)
	}
	if off := facts[0].Prov().Offset; off != 11 || !strings.HasPrefix(string(data[off:]), good) {
		t.Errorf("offset %d does not point at the whole sentence", off)
	}
}

func TestNMEAMidnight(t *testing.T) {
	lines := []string{
		nmea("GPRMC,235959.00,A,3355.2300,S,01825.4200,E,,,311226,,,A"),
		nmea("GPGGA,235959.50,3355.2300,S,01825.4200,E,1,08,0.9,20.1,M,31.0,M,,"),
		nmea("GPGGA,000000.00,3355.2300,S,01825.4200,E,1,08,0.9,20.1,M,31.0,M,,"),
		nmea("GPGGA,235959.90,3355.2300,S,01825.4200,E,1,08,0.9,20.1,M,31.0,M,,"), // late, from before midnight
		nmea("GPGGA,000001.00,3355.2300,S,01825.4200,E,1,08,0.9,20.1,M,31.0,M,,"),
		nmea("GPRMC,000002.00,A,3355.2300,S,01825.4200,E,,,010127,,,A"),
		nmea("GPGGA,000002.00,3355.2300,S,01825.4200,E,1,08,0.9,20.1,M,31.0,M,,"),
	}
	facts, sum := parseAll(t, &NMEA{}, []byte(strings.Join(lines, "\n")))
	fx := fixes(t, facts)
	want := []string{
		"2026-12-31T23:59:59Z", "2026-12-31T23:59:59.5Z", "2027-01-01T00:00:00Z",
		"2026-12-31T23:59:59.9Z", "2027-01-01T00:00:01Z", "2027-01-01T00:00:02Z", "2027-01-01T00:00:02Z",
	}
	if len(fx) != len(want) {
		t.Fatalf("got %d fixes, want %d: %s", len(fx), len(want), sum)
	}
	for i, f := range fx {
		if got := f.Time.Format(time.RFC3339Nano); got != want[i] {
			t.Errorf("fix %d (%s): %s, want %s", i, f.Sentence, got, want[i])
		}
	}
}

func TestNMEAWeekRollover(t *testing.T) {
	// A receiver with the 1024-week bug on 2019-04-07 reports 1999-08-22.
	data := []byte(nmea("GPRMC,120000.00,A,3355.2300,S,01825.4200,E,,,220899,,,A") + "\n" +
		nmea("GPGGA,120001.00,3355.2300,S,01825.4200,E,1,08,0.9,20.1,M,31.0,M,,") + "\n")

	facts, sum := parseAll(t, &NMEA{}, data)
	if len(facts) != 0 {
		t.Fatalf("rolled-over date trusted by default: %+v", facts[0])
	}
	wantRejects(t, sum, map[Reason]int64{ReasonImplausibleDate: 1, ReasonNoDate: 1})

	facts, sum = parseAll(t, &NMEA{Options: NMEAOptions{CorrectWeekRollover: true}}, data)
	fx := fixes(t, facts)
	if len(fx) != 2 {
		t.Fatalf("corrected: %s", sum)
	}
	want := time.Date(2019, 4, 7, 12, 0, 0, 0, time.UTC)
	if !fx[0].Time.Equal(want) || !fx[1].Time.Equal(want.Add(time.Second)) {
		t.Errorf("corrected times %v, %v; want %v and a second later", fx[0].Time, fx[1].Time, want)
	}
	if !fx[0].RolloverCorrected || !fx[1].RolloverCorrected || sum.Flags[FlagRolloverCorrected] != 2 {
		t.Errorf("correction not flagged: %+v %+v %s", fx[0], fx[1], sum)
	}
}

// endless yields n bytes of one value without holding them.
type endless struct {
	n int64
	b byte
}

func (e *endless) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.n {
		p = p[:e.n]
	}
	for i := range p {
		p[i] = e.b
	}
	e.n -= int64(len(p))
	return len(p), nil
}

// A log with no newline at all must cost a buffer, not its size.
func TestNMEAHugeLineBoundedMemory(t *testing.T) {
	const size = 64 << 20
	r := io.MultiReader(&endless{n: size, b: 'A'}, strings.NewReader("\n"+nmea(goodRMC)+"\n"))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	facts, sum, err := parseReader(&NMEA{}, r, digest.Sum{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(facts) != 1 || sum.Rejects[ReasonLineTooLong] != 1 || sum.Bytes != size+1+int64(len(nmea(goodRMC)))+1 {
		t.Errorf("%d facts, %s", len(facts), sum)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("parsing a %d MiB line allocated %d KiB", size>>20, grew>>10)
	}
	if facts[0].Prov().Line != 2 {
		t.Errorf("line %d, want 2", facts[0].Prov().Line)
	}
}

func TestNMEAStopsOnEmitErrorAndCancel(t *testing.T) {
	data := strings.Repeat(nmea(goodRMC)+"\n", 3)
	boom := errors.New("index full")
	n := 0
	_, err := (&NMEA{}).Parse(context.Background(), Input{R: strings.NewReader(data)}, func(Fact) error {
		n++
		return boom
	})
	if !errors.Is(err, boom) || n != 1 {
		t.Errorf("emit error: err %v after %d facts", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&NMEA{}).Parse(ctx, Input{R: strings.NewReader(data)}, func(Fact) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// The test generator's fixes are valid NMEA on a degree's boundary too: a
// coordinate whose minutes round up to 60 at four decimals is written as
// the next degree's 00.0000 (33.99999999° S is 3400.0000,S), which the
// parser accepts, where 3360.0000 (minutes 60) is a bad position
// (TestNMEABadInputCountedNotTrusted). The benchmarks' random tracks hit
// this about three times in 216,000 fixes.
func TestGeneratedRMCOnDegreeBoundary(t *testing.T) {
	at := time.Date(2026, 12, 3, 21, 30, 0, 0, time.UTC)
	var lines []string
	var want [][2]float64
	for i := range 2001 {
		// Latitudes from 33.99999° S to 34.00001° S in steps of 1e-8°,
		// longitudes across 18° E the same way.
		d := float64(i-1000) * 1e-8
		lat, lon := -34+d, 19+d
		lines = append(lines, sidecarfile.RMC(at.Add(time.Duration(i)*time.Second), lat, lon))
		want = append(want, [2]float64{lat, lon})
	}
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, ",3400.0000,S,01900.0000,E,") }) {
		t.Fatalf("no fix on the boundary written as 3400.0000,S / 01900.0000,E: %q…", lines[995:1005])
	}
	facts, sum := parseAll(t, &NMEA{}, []byte(strings.Join(lines, "\r\n")+"\r\n"))
	fx := fixes(t, facts)
	if sum.Rejected() != 0 || len(fx) != len(lines) {
		t.Fatalf("%d of %d generated fixes parsed, rejects %v", len(fx), len(lines), sum.Rejects)
	}
	for i, f := range fx {
		// Four decimals of a minute: within 1e-4/60/2 of a degree.
		if !near(f.Lat, want[i][0], 1e-6) || !near(f.Lon, want[i][1], 1e-6) {
			t.Errorf("line %d (%s): %v,%v; want %v,%v", i+1, lines[i], f.Lat, f.Lon, want[i][0], want[i][1])
		}
	}
}
