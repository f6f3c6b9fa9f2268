package sidecar

import (
	"strings"
	"testing"
	"time"
)

const sampleCSV = "\xef\xbb\xbftime,plate,confidence,region,lat,lon,heading,camera,crop,vendor_extra\r\n" +
	"2026-12-03T21:07:09.120+02:00,CA 123-456,0.93,ZA-WC,-33.920500,18.423700,270,VEH-017,crops/0001.jpg,x\r\n" +
	"# a comment line\r\n" +
	"\r\n" +
	"2026-12-03T19:07:10Z,\"ND 123-456\",0.5,ZA-KZN,,,,\"VEH, 17\",,\"say \"\"hi\"\"\"\r\n" +
	"2026-12-03T19:07:11Z,СА 123-456,0.8,ZA-WC,-33.9,18.4,,VEH-017,,\r\n" + // Cyrillic С and А
	"2026-12-03T19:07:12Z,CA 123/456,0.8,ZA-WC,0,0,,VEH-017,,\r\n" +
	"2026-12-03 19:07:13,CA 123-456,0.8,,,,,VEH-017,,\r\n" + // no zone
	"2026-12-03T19:07:14Z,CA 123-456,1.2,,,,,VEH-017,,\r\n" +
	"2026-12-03T19:07:15Z,CA 123-456,NaN,,,,,VEH-017,,\r\n" +
	"2026-12-03T19:07:16Z,CA 123-456,0.8,,,,,VEH-017,../../etc/passwd,\r\n" +
	"2026-12-03T19:07:17Z,CA 123-456,0.8,,-33.9,,,VEH-017,,\r\n" +
	"2026-12-03T19:07:18Z,CA 123-456,0.8,,,,,,,\r\n" +
	"2026-12-03T19:07:19Z, - ,0.8,,,,,VEH-017,,\r\n" +
	"2026-12-03T19:07:20Z,CA 123-456,0.8,ZA WC,,,,VEH-017,,\r\n" +
	"2026-12-03T19:07:21Z,CA 123-456,0.8,,,,400,VEH-017,,\r\n" +
	"2026-12-03T19:07:22Z,CA 123-456,0.8,,,,,VEH-017\r\n" +
	"2026-12-03T19:07:23Z,\"CA 123-456,0.8,,,,,VEH-017,,\r\n" +
	"2026-12-03T19:07:24Z,CA \xff,0.8,,,,,VEH-017,,\r\n" +
	"2026-12-03T19:07:25Z,CA 123-456,0.8,,-91,18,,VEH-017,,\r\n"

func TestANPRCSV(t *testing.T) {
	data := []byte(sampleCSV)
	facts, sum := parseAll(t, &ANPR{Format: ANPRCSV}, data)
	rs := reads(t, facts)
	if len(rs) != 4 {
		t.Fatalf("got %d reads, want 4: %s", len(rs), sum)
	}
	first := rs[0]
	if !first.Time.Equal(time.Date(2026, 12, 3, 19, 7, 9, 120e6, time.UTC)) || first.Time.Location() != time.UTC ||
		first.AsRead != "CA 123-456" || first.Plate != "CA123456" || first.PlateIssue != "" ||
		first.Confidence != 0.93 || first.Region != "ZA-WC" || !first.HasPos || first.Lat != -33.9205 || first.Lon != 18.4237 ||
		!first.HasHeading || first.Heading != 270 || first.Camera != "VEH-017" || first.Crop != "crops/0001.jpg" {
		t.Errorf("first read: %+v", first)
	}
	if first.At.Offset != int64(strings.Index(sampleCSV, "2026-12-03T21")) || first.At.Line != 2 {
		t.Errorf("first read provenance %+v", first.At)
	}
	quoted := rs[1]
	if quoted.Plate != "ND123456" || quoted.Camera != "VEH, 17" || quoted.HasPos || quoted.HasHeading || quoted.Crop != "" || quoted.At.Line != 5 {
		t.Errorf("quoted read: %+v", quoted)
	}
	// Non-ASCII: kept as read, not normalised, flagged.
	cyr := rs[2]
	if cyr.AsRead != "СА 123-456" || cyr.Plate != "" || cyr.PlateIssue != ReasonNonASCII || !cyr.HasPos {
		t.Errorf("non-ASCII read: %+v", cyr)
	}
	// A slash: kept, flagged; a 0,0 position dropped and flagged.
	slash := rs[3]
	if slash.Plate != "" || slash.PlateIssue != ReasonPlateChar || slash.HasPos {
		t.Errorf("odd read: %+v", slash)
	}
	wantFlags := map[Reason]int64{ReasonNonASCII: 1, ReasonPlateChar: 1, ReasonNullIsland: 1}
	for r, n := range wantFlags {
		if sum.Flags[r] != n {
			t.Errorf("flags %v, want %v", sum.Flags, wantFlags)
		}
	}
	wantRejects(t, sum, map[Reason]int64{
		ReasonBadTime: 1, ReasonBadConf: 2, ReasonBadCrop: 1, ReasonBadPosition: 2, ReasonBadCamera: 1,
		ReasonPlateEmpty: 1, ReasonBadRegion: 1, ReasonBadHeading: 1, ReasonBadCSV: 2, ReasonBadUTF8: 1,
	})
	checkAccounting(t, sum, len(facts))
}

func TestANPRCSVHeaderMissingColumn(t *testing.T) {
	data := "time,plate,camera\n2026-12-03T19:07:09Z,CA 123-456,VEH-017\n2026-12-03T19:07:10Z,CA 123-456,VEH-017\n"
	facts, sum := parseAll(t, &ANPR{Format: ANPRCSV}, []byte(data))
	if len(facts) != 0 {
		t.Fatalf("reads from a file without confidence: %+v", facts[0])
	}
	wantRejects(t, sum, map[Reason]int64{ReasonBadHeader: 1, ReasonNoHeader: 2})
	checkAccounting(t, sum, 0)
}

// The same reads in either encoding give the same facts.
func TestANPRJSONLMatchesCSV(t *testing.T) {
	csv := "camera,time,plate,confidence,lat,lon,crop\n" +
		"VEH-017,2026-12-03T21:07:09.120+02:00,CA 123-456,0.93,-33.9205,18.4237,crops/0001.jpg\n" +
		"VEH-017,2026-12-03T19:07:10Z,GP JOHN,0.61,,,\n"
	jsonl := `{"time":"2026-12-03T21:07:09.120+02:00","plate":"CA 123-456","confidence":0.93,"lat":-33.9205,"lon":18.4237,"camera":"VEH-017","crop":"crops/0001.jpg","vendor":{"x":1}}` + "\n" +
		`{"time":"2026-12-03T19:07:10Z","plate":"GP JOHN","confidence":0.61,"lat":null,"camera":"VEH-017"}` + "\n" +
		`{"time":"2026-12-03T19:07:10Z","plate":"GP JOHN","confidence":"0.61","camera":"VEH-017"}` + "\n" + // a quoted number is still a number
		`{"time":"2026-12-03T19:07:10Z","plate":"GP JOHN","confidence":"high","camera":"VEH-017"}` + "\n" +
		`{"time":"2026-12-03T19:07:10Z","plate":"GP JOHN","confidence":0.61,"camera":"VEH-017"} {}` + "\n" +
		`["not an object"]` + "\n" +
		`{"time":"2026-12-03T19:07:10Z","plate":"\u0421A 1","confidence":0.61,"camera":"VEH-017"}` + "\n"
	cf, _ := parseAll(t, &ANPR{Format: ANPRCSV}, []byte(csv))
	jf, jsum := parseAll(t, &ANPR{Format: ANPRJSONL}, []byte(jsonl))
	c, j := reads(t, cf), reads(t, jf)
	if len(c) != 2 || len(j) != 4 {
		t.Fatalf("csv %d reads, jsonl %d reads (%s)", len(c), len(j), jsum)
	}
	for i := range c {
		a, b := *c[i], *j[i]
		a.At, b.At = Provenance{}, Provenance{}
		if a != b {
			t.Errorf("read %d differs:\ncsv   %+v\njsonl %+v", i, a, b)
		}
	}
	if j[2].Confidence != 0.61 {
		t.Errorf("quoted confidence: %+v", j[2])
	}
	if j[3].PlateIssue != ReasonNonASCII || j[3].AsRead != "СA 1" {
		t.Errorf("escaped non-ASCII plate: %+v", j[3])
	}
	wantRejects(t, jsum, map[Reason]int64{ReasonBadJSON: 3})
	checkAccounting(t, jsum, len(jf))
}

func TestParseTimestampStrict(t *testing.T) {
	good := map[string]time.Time{
		"2026-12-03T21:07:09+02:00":      time.Date(2026, 12, 3, 19, 7, 9, 0, time.UTC),
		"2026-12-03T19:07:09.123456789Z": time.Date(2026, 12, 3, 19, 7, 9, 123456789, time.UTC),
		"2026-12-03T19:07:09.5-01:30":    time.Date(2026, 12, 3, 20, 37, 9, 5e8, time.UTC),
	}
	for s, want := range good {
		if got, ok := parseTimestamp(s, false); !ok || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("parseTimestamp(%q) = %v, %v; want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{
		"2026-12-03T9:07:09Z", "2026-12-03 19:07:09Z", "2026-12-03T19:07:09+0200", "2026-12-03T19:07:09",
		"2026-12-03T19:07:09.Z", "2026-12-03T19:07:09.1234567890Z", "2026-02-30T19:07:09Z", "2026-12-03T24:00:00Z",
		"+2026-12-03T19:07:09Z", "2026-12-03T19:07:09Z ", "",
	} {
		if got, ok := parseTimestamp(s, false); ok {
			t.Errorf("parseTimestamp(%q) accepted: %v", s, got)
		}
	}
	if got, ok := parseTimestamp("2026-12-03T19:07:09", true); !ok || !got.Equal(time.Date(2026, 12, 3, 19, 7, 9, 0, time.UTC)) {
		t.Errorf("zone optional: %v %v", got, ok)
	}
	// A camera whose clock was never set: counted, not trusted.
	data := "time,plate,confidence,camera\n1970-01-01T00:00:05Z,CA 123-456,0.9,VEH-017\n2000-01-01T00:00:00Z,CA 123-456,0.9,VEH-017\n"
	facts, sum := parseAll(t, &ANPR{}, []byte(data))
	if len(facts) != 0 {
		t.Errorf("unset-clock reads trusted: %+v", facts[0])
	}
	wantRejects(t, sum, map[Reason]int64{ReasonImplausibleDate: 2})
}
